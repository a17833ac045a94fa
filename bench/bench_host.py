"""What the benchmark scripts say about the machine they ran on."""

import platform


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what Python knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
