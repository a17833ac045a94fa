# Third-party dependencies, found once for the whole tree.
#
# LibTorch: Debian's libtorch-dev, NVIDIA's JetPack wheel or a CUDA LibTorch 2.x.
# For a wheel, point CMAKE_PREFIX_PATH (or Torch_DIR) at
# `python3 -c "import torch; print(torch.utils.cmake_prefix_path)"`.
find_package(Torch 1.13 REQUIRED)
find_package(OpenCV 4 REQUIRED COMPONENTS core imgproc imgcodecs)
find_package(Protobuf 3 REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(Threads REQUIRED)

# CLI11 parses the command lines of the tools and samples, nothing else.
if(NASOA_BUILD_TOOLS OR NASOA_BUILD_SAMPLES)
  find_package(CLI11 CONFIG QUIET)
  if(NOT TARGET CLI11::CLI11)
    # Debian's libcli11-dev is header-only; fall back to its header.
    find_path(NASOA_CLI11_INCLUDE CLI/CLI.hpp REQUIRED)
    add_library(CLI11::CLI11 INTERFACE IMPORTED GLOBAL)
    target_include_directories(CLI11::CLI11 INTERFACE ${NASOA_CLI11_INCLUDE})
  endif()
endif()

# TorchConfig exposes a list rather than one target; wrap it so that targets can
# link `nasoa_torch` like any other dependency and pick up its compile flags.
if(NOT TARGET nasoa_torch)
  add_library(nasoa_torch INTERFACE)
  target_link_libraries(nasoa_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(nasoa_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  separate_arguments(_nasoa_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(nasoa_torch INTERFACE ${_nasoa_torch_flags})
endif()

# protobuf-lite only: the manifest schema is compiled with optimize_for = LITE_RUNTIME.
if(TARGET protobuf::libprotobuf-lite)
  set(NASOA_PROTOBUF_LITE protobuf::libprotobuf-lite)
else()
  set(NASOA_PROTOBUF_LITE ${Protobuf_LITE_LIBRARIES})
endif()

# Reuse nasoa_zoo's precompiled LibTorch header in another target. GCC only
# accepts a PCH built with the same -fpic/-fpie setting, and executables
# otherwise get -fPIE, so compile the target's sources as PIC like the library.
function(nasoa_reuse_torch_pch target)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
  target_compile_options(${target} PRIVATE -fPIC)
  target_precompile_headers(${target} REUSE_FROM nasoa_zoo)
endfunction()
