#!/usr/bin/env bash
# Builds an arm64 (aarch64) sysroot from Debian bookworm's arm64 packages, for
# cross-compiling nasoa with toolchains/jetson.toolchain.cmake and running the
# result under qemu. It stands in for a JetPack rootfs (same architecture and
# multiarch layout), with Debian's CPU LibTorch instead of NVIDIA's CUDA build.
#
# Usage: make_arm64_sysroot.sh [DIR]
#        make_arm64_sysroot.sh --relative-links ROOTFS   (fix a JetPack rootfs)
#   DIR defaults to a cache directory keyed by a hash of the package list and
#   of this script: $NASOA_CACHE_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/nasoa.
#   A complete sysroot there is reused (a second run takes about a second).
#   The last line printed is the sysroot's path.
# Environment:
#   NASOA_SYSROOT_MIRROR  any MIRROR argument mmdebstrap accepts (a URI, a
#                         "deb ..." line or a sources file); default: the
#                         host's apt sources for bookworm, read at run time.
# Needs mmdebstrap; runs as root (or through sudo) so that extraction keeps
# file ownership simple. Takes well under a minute on a fast link; 1.4 GB.
set -euo pipefail

# Internal mode, called by mmdebstrap's --extract-hook with the target root:
# extract-only sysroots run no maintainer scripts, so the symlinks that
# update-alternatives would create are missing. libtorch links libblas.so.3
# and liblapack.so.3, which exist only as such alternatives (the real files
# are in blas/ and lapack/). Read every downloaded package's postinst, and
# create each library alternative it registers (one candidate per link: the
# first seen, which for Debian's reference BLAS/LAPACK is the only one).
if [ "${1:-}" = "--link-alternatives" ]; then
  root=$2
  for deb in "$root"/var/cache/apt/archives/*.deb; do
    # postinst is optional; join "\"-continued lines so each command is one line.
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst 2> /dev/null \
      | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' \
      | grep -E '^[[:space:]]*update-alternatives[[:space:]]+--install' || true
  done | while read -r _ _ link _ path _; do
    case "$link" in
      /usr/lib/*) ;;     # only libraries matter to a sysroot
      *) continue ;;
    esac
    if [ -e "$root$path" ] && [ ! -e "$root$link" ] && [ ! -L "$root$link" ]; then
      # Relative, so that it resolves inside the sysroot, not on the host.
      ln -s "$(realpath --relative-to="$(dirname "$root$link")" -m "$root$path")" "$root$link"
      echo "make_arm64_sysroot: alternative ${link#/usr/lib/} -> $path"
    fi
  done
  exit 0
fi

# Internal (and for a JetPack rootfs, useful on its own) mode: --relative-links
# ROOT. Some development symlinks are absolute (usr/lib/.../libz.so ->
# /lib/.../libz.so.1): on the build host they point at the host's files, or
# nowhere. Make each one under lib/ and usr/lib/ that targets a file inside ROOT
# relative, so that the cross linker finds the target's file.
if [ "${1:-}" = "--relative-links" ]; then
  root=$2
  for d in "$root/lib" "$root/usr/lib"; do
    # On a merged-/usr rootfs lib is itself a link into usr/lib: skip it.
    if [ ! -d "$d" ] || [ -L "$d" ]; then continue; fi
    find "$d" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
      target=$(readlink "$link")
      if [ -e "$root$target" ]; then
        ln -sfn "$(realpath --relative-to="$(dirname "$link")" -m "$root$target")" "$link"
      fi
    done
  done
  exit 0
fi

script=$(realpath "$0")
suite=bookworm
# What the cross build needs on the target side (the host provides protoc,
# the compilers and CMake): the SDK's libraries, the tests' GoogleTest, the
# tools' CLI11 and JSON, zlib for IDX files and the C/C++ runtime files.
packages=(
  libtorch-dev libopencv-dev libprotobuf-dev libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev
  libstdc++-12-dev libc6-dev
)

key=$( (printf '%s\n' "$suite" "${packages[@]}"; cat "$script") | sha256sum | cut -c1-16)
cache=${NASOA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nasoa}
dir=${1:-$cache/sysroot-arm64-$suite-$key}
stamp=$dir/.nasoa-sysroot-complete

# The stamp is written last, so its presence means every step succeeded.
if [ -f "$stamp" ]; then
  echo "make_arm64_sysroot: reusing $dir"
  echo "$dir"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# Sysroots of older keys in the default cache are stale (1.4 GB each): drop them.
if [ $# -eq 0 ]; then
  for old in "$cache"/sysroot-arm64-"$suite"-*; do
    case "$old" in "$dir" | "$dir".tmp.*) continue ;; esac   # ours, or being built
    if [ -d "$old" ]; then
      echo "make_arm64_sysroot: removing stale $old"
      $sudo rm -rf "$old"
    fi
  done
fi

command -v mmdebstrap > /dev/null || { echo "make_arm64_sysroot: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 1; }

# Mirrors: the caller's choice, else the host's own apt sources that serve the
# suite (so the build uses whatever mirror or proxy this machine is set up for).
# If the host has none (another distribution), mmdebstrap picks its default.
mirrors=()
if [ -n "${NASOA_SYSROOT_MIRROR:-}" ]; then
  mirrors=("$NASOA_SYSROOT_MIRROR")
else
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    if [ -f "$f" ] && grep -v '^[[:space:]]*#' "$f" | grep -qw "$suite"; then
      mirrors+=("$f")
    fi
  done
fi

# Build next to the final place and move it there at the end, so that an
# interrupted run never leaves a directory that looks complete.
tmp="$dir.tmp.$$"
trap '$sudo rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$dir")"
$sudo rm -rf "$dir"
include=$(IFS=,; echo "${packages[*]}")
echo "make_arm64_sysroot: building $dir (${mirrors[*]:-the default mirror of mmdebstrap})"
$sudo mmdebstrap --quiet --variant=extract --architectures=arm64 \
  --include="$include" \
  --extract-hook="bash '$script' --link-alternatives \"\$1\"" \
  "$suite" "$tmp" "${mirrors[@]}"

# Some development symlinks are absolute (usr/lib/.../libz.so -> /lib/.../libz.so.1).
$sudo bash "$script" --relative-links "$tmp"

# Every library alternative libtorch needs must now resolve inside the sysroot.
for lib in libblas.so.3 liblapack.so.3; do
  if [ ! -e "$tmp/usr/lib/aarch64-linux-gnu/$lib" ]; then
    echo "make_arm64_sysroot: $lib is missing from the sysroot" >&2
    exit 1
  fi
done

# The stamp says what went in; writing it is the last step before the move.
{
  echo "suite=$suite key=$key built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "packages=${packages[*]}"
} | $sudo tee "$tmp/.nasoa-sysroot-complete" > /dev/null
$sudo mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
