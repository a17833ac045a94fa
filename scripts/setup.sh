#!/usr/bin/env bash
# Installs, by Debian/Ubuntu package name, whatever nasoa needs that is missing.
# Idempotent: a second run installs nothing and finishes in about a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev              # LibTorch (on Jetson: NVIDIA's build instead, see docs/jetson.md)
  libopencv-dev             # image ingestion
  libprotobuf-dev protobuf-compiler   # the manifest schema (lite runtime)
  libssl-dev                # SHA-256
  libgtest-dev libgmock-dev # tests
  libcli11-dev              # command lines of the tools
  nlohmann-json3-dev        # JSON reports and device profiles
  python3                   # test scripts read JSON reports and write task folders
  zlib1g-dev                # gzipped IDX files
  dataset-fashion-mnist     # real images (Fashion-MNIST IDX files) for the ingestion tests
  openclipart-png           # real RGBA clip-art drawings: categories of the corpora (docs/corpora.md)
  fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf fonts-urw-base35
  libfreetype-dev           # glyph rendering for the synthetic classes of the corpora
  libopenmpi-dev openmpi-bin  # nasoa-search over several processes
)

# LibTorch is the one package whose version matters (1.13's C++ API or
# newer), and some releases lack it or ship an older one (Ubuntu 22.04's
# 1.8): say so before building, or installing, anything.
require_libtorch() {  # VERSION WHERE
  if [ -z "$1" ] || [ "$1" = "(none)" ] || ! dpkg --compare-versions "$1" ge 1.13; then
    echo "setup: $2 libtorch-dev is ${1:-not packaged}; nasoa needs LibTorch 1.13 or newer." >&2
    echo "setup: use Debian 12 or newer, or a LibTorch build of your own (docs/gpu.md: Torch_DIR)." >&2
    exit 1
  fi
}
if installed=$(dpkg-query -W -f='${Status} ${Version}' libtorch-dev 2>/dev/null) &&
   [[ $installed == "install ok installed "* ]]; then
  require_libtorch "${installed##* }" "the installed"
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -q
for p in "${missing[@]}"; do
  [ "$p" = libtorch-dev ] || continue
  require_libtorch "$(apt-cache policy libtorch-dev 2>/dev/null | awk '/Candidate:/ {print $2}')" "this release's"
done
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
