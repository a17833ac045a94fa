# Cross-compiling nasoa for NVIDIA Jetson (aarch64 Linux) from an x86-64 host.
#
#   cmake -S . -B build-aarch64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=toolchains/jetson.toolchain.cmake \
#     -DNASOA_SYSROOT=/path/to/rootfs -DNASOA_JETSON=orin
#
# NASOA_SYSROOT (cache variable, else the environment variable of that name) is
# the target's root filesystem: a JetPack rootfs (L4T's Linux_for_Tegra/rootfs)
# or the Debian arm64 sysroot from scripts/make_arm64_sysroot.sh. See
# docs/jetson.md.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

# The Debian/Ubuntu cross compilers (g++-aarch64-linux-gnu). They link their
# own libstdc++ and glibc (from the host's cross packages), not the sysroot's:
# for a JetPack board use the ones of the matching Ubuntu (20.04 for JetPack 5,
# 22.04 for JetPack 6) or NVIDIA's Jetson toolchain, via -DCMAKE_C_COMPILER /
# -DCMAKE_CXX_COMPILER; Debian 12's are newer than any JetPack's runtime.
if(NOT CMAKE_C_COMPILER)
  set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
endif()
if(NOT CMAKE_CXX_COMPILER)
  set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
endif()

# Which Jetson: sets the CPU and the CUDA architecture, never -march=native
# (that would describe the build host, not the board).
set(NASOA_JETSON "orin" CACHE STRING "Target Jetson: orin, xavier or nano")
set_property(CACHE NASOA_JETSON PROPERTY STRINGS orin xavier nano)
if(NASOA_JETSON STREQUAL "orin")
  # Orin (AGX, NX, Nano): Cortex-A78AE cores are ARMv8.2-A; Ampere GPU, sm_87.
  set(_nasoa_march armv8.2-a)
  set(_nasoa_cuda_arch 87)
elseif(NASOA_JETSON STREQUAL "xavier")
  # Xavier (AGX, NX): NVIDIA Carmel cores are ARMv8.2-A; Volta GPU, sm_72.
  set(_nasoa_march armv8.2-a)
  set(_nasoa_cuda_arch 72)
elseif(NASOA_JETSON STREQUAL "nano")
  # Jetson Nano (and TX1): Cortex-A57 cores are plain ARMv8-A; Maxwell GPU, sm_53.
  set(_nasoa_march armv8-a)
  set(_nasoa_cuda_arch 53)
else()
  message(FATAL_ERROR "NASOA_JETSON must be orin, xavier or nano, not '${NASOA_JETSON}'")
endif()
set(CMAKE_C_FLAGS_INIT "-march=${_nasoa_march}")
set(CMAKE_CXX_FLAGS_INIT "-march=${_nasoa_march}")
# *_FLAGS_INIT are read by a tree's first configure only: a tree configured
# for one board must not silently build another's code (armv8.2-a
# instructions stop a Nano's Cortex-A57 with SIGILL).
if(NOT DEFINED CACHE{NASOA_JETSON_CONFIGURED})  # (INTERNAL would overwrite it each time)
  set(NASOA_JETSON_CONFIGURED "${NASOA_JETSON}" CACHE INTERNAL "the board this tree's flags are for")
endif()
if(NOT NASOA_JETSON_CONFIGURED STREQUAL NASOA_JETSON)
  message(FATAL_ERROR "this build tree was configured for NASOA_JETSON=${NASOA_JETSON_CONFIGURED}; "
                      "use a new build folder for ${NASOA_JETSON}")
endif()
# Used by enable_language(CUDA) and by LibTorch's CUDA CMake files (which
# read TORCH_CUDA_ARCH_LIST) when the target's LibTorch is a CUDA build.
set(CMAKE_CUDA_ARCHITECTURES ${_nasoa_cuda_arch})
math(EXPR _nasoa_cuda_major "${_nasoa_cuda_arch} / 10")
math(EXPR _nasoa_cuda_minor "${_nasoa_cuda_arch} % 10")
set(ENV{TORCH_CUDA_ARCH_LIST} "${_nasoa_cuda_major}.${_nasoa_cuda_minor}")

# The target's root filesystem: headers, libraries and CMake packages.
if(NOT NASOA_SYSROOT AND DEFINED ENV{NASOA_SYSROOT})
  set(NASOA_SYSROOT "$ENV{NASOA_SYSROOT}")
endif()
set(NASOA_SYSROOT "${NASOA_SYSROOT}" CACHE PATH "Root filesystem of the target (a JetPack rootfs)")
if(NOT NASOA_SYSROOT OR NOT IS_DIRECTORY "${NASOA_SYSROOT}/usr/include")
  message(FATAL_ERROR "Set NASOA_SYSROOT to the target's root filesystem (got '${NASOA_SYSROOT}')")
endif()
set(CMAKE_SYSROOT "${NASOA_SYSROOT}")
# try_compile() re-reads this file in a fresh project: pass the choices on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES NASOA_SYSROOT NASOA_JETSON)

# Programs (protoc, ccache) run on the host: search the host only. Libraries,
# headers and CMake packages must be the target's: search the sysroot only.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Run target programs (tests, gtest discovery, ctest) under user-mode qemu;
# -L makes it load the dynamic linker and libraries from the sysroot. Without
# qemu the build still works and only running the tests does not.
find_program(NASOA_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(NASOA_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${NASOA_QEMU_AARCH64};-L;${NASOA_SYSROOT}")
endif()
