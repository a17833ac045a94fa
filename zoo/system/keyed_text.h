// zoo/system/keyed_text.h: one field of a kernel text file made of
// "key: value" lines, such as /proc/self/status, /proc/cpuinfo or an NVIDIA
// driver's per-GPU information file.
#pragma once

#include <optional>
#include <string>

namespace nasoa::zoo {

// The value, blanks trimmed, of the first line of `path` whose key (the text
// before the line's first ':', blanks trimmed) is exactly `key` and whose
// value is not empty. nullopt when there is no such line or the file cannot
// be read: callers treat what the kernel does not say as unknown.
std::optional<std::string> keyed_value(const std::string& path, const std::string& key);

}  // namespace nasoa::zoo
