# Third-party dependencies, found once for the whole tree.
#
# LibTorch: Debian's libtorch-dev, NVIDIA's JetPack wheel or a CUDA LibTorch 2.x.
# For a wheel, point CMAKE_PREFIX_PATH (or Torch_DIR) at
# `python3 -c "import torch; print(torch.utils.cmake_prefix_path)"`. When no
# LibTorch is found that way and this is a native build, ask the Python torch
# module for that path ourselves: on a Jetson, NVIDIA's wheel is usually the
# only LibTorch there is. (Cross-compiling, the host's Python is the wrong one.)
find_package(Torch 1.13 QUIET)
if(NOT Torch_FOUND AND NOT CMAKE_CROSSCOMPILING)
  find_program(NASOA_PYTHON3 python3)
  if(NASOA_PYTHON3)
    execute_process(
      COMMAND ${NASOA_PYTHON3} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _nasoa_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _nasoa_torch_rc ERROR_QUIET)
    if(_nasoa_torch_rc EQUAL 0 AND IS_DIRECTORY "${_nasoa_torch_prefix}")
      message(STATUS "LibTorch: using the Python torch module's ${_nasoa_torch_prefix}")
      list(APPEND CMAKE_PREFIX_PATH "${_nasoa_torch_prefix}")
    endif()
  endif()
endif()
find_package(Torch 1.13 REQUIRED)
# The rest of the tree (nasoa_core, the manifest code, Debian's protobuf,
# OpenCV and GoogleTest) uses the C++11 string ABI; a LibTorch built for the
# old one (pip wheels before 2.7) would configure and then fail to link with
# undefined references deep in the build.
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
  message(FATAL_ERROR "The LibTorch found (${Torch_DIR}) is built for the old C++ string ABI "
                      "(_GLIBCXX_USE_CXX11_ABI=0); nasoa needs a cxx11-ABI LibTorch: see docs/gpu.md")
endif()

# CUDA code paths are compiled in when this LibTorch is a CUDA build (NVIDIA's
# JetPack wheel, a CUDA LibTorch): TorchConfig then defines torch_cuda and
# finds CUDA and cuDNN itself. Debian's CPU LibTorch leaves them out.
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(NASOA_WITH_CUDA ON)
else()
  set(NASOA_WITH_CUDA OFF)
endif()
message(STATUS "LibTorch ${Torch_VERSION}: CUDA ${NASOA_WITH_CUDA}")
find_package(OpenCV 4 REQUIRED COMPONENTS core imgproc imgcodecs)
find_package(Protobuf 3 REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(Threads REQUIRED)

# CLI11 parses the command lines of the tools, samples and benchmarks, nothing else.
if(NASOA_BUILD_TOOLS OR NASOA_BUILD_SAMPLES OR NASOA_BUILD_BENCH)
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
  # PyTorch's x86-64 wheels export copies of libstdc++'s std::filesystem from
  # libtorch.so (pytorch/pytorch#133437). A program that names libtorch before
  # libstdc++ binds its own std::filesystem calls to those copies, and
  # remove_all() then jumps to a null pointer. Naming libstdc++ first makes the
  # real one win the symbol lookup; with Debian's or NVIDIA's LibTorch it changes
  # nothing.
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang"
     AND NOT CMAKE_CXX_FLAGS MATCHES "-stdlib=libc\\+\\+")
    target_link_libraries(nasoa_torch INTERFACE stdc++)
  endif()
  target_link_libraries(nasoa_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(nasoa_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  separate_arguments(_nasoa_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(nasoa_torch INTERFACE ${_nasoa_torch_flags})
  # 1 or 0, so that code can test it with #if.
  target_compile_definitions(nasoa_torch INTERFACE NASOA_WITH_CUDA=$<BOOL:${NASOA_WITH_CUDA}>)
endif()

# The manifest schema is compiled with optimize_for = LITE_RUNTIME and links
# protobuf-lite. (With Debian's LibTorch, whose link line names the full
# libprotobuf first, the linker takes the lite symbols from there, so
# libnasoa.so needs libprotobuf, which LibTorch loads anyway.)
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
