# Decides whether the CUDA kernels are built (CUSTOM_OPS_WITH_CUDA = ON / OFF / AUTO) and enables CUDA.
# Sets CUSTOM_OPS_CUDA_ENABLED.
#
# The GPU architectures are given in TORCH_CUDA_ARCH_LIST's syntax (torch's CMake reads that environment
# variable and overrides CMAKE_CUDA_ARCHITECTURES): CUSTOM_OPS_CUDA_ARCH_LIST if set, else the environment's
# TORCH_CUDA_ARCH_LIST (as for any torch extension), else our default "8.0+PTX;9.0a":
#   sm_80 code, which also runs on sm_86 and sm_89 (A100, A10, L4, RTX 30xx/40xx);
#   sm_90a code, the Hopper kernels (wgmma/TMA need the arch-specific 90a target; on other targets the
#   Hopper-only sources compile to nothing);
#   compute_80 PTX, which the driver JIT-compiles on newer GPUs (sm_100, sm_120); 90a PTX could not serve
#   them, as arch-specific ("a") code runs on its own architecture only.
# Without a list torch would guess a long one on a machine with no GPU. For a fast local build narrow it,
# e.g. -DCUSTOM_OPS_CUDA_ARCH_LIST=9.0a.
set(CUSTOM_OPS_CUDA_ENABLED OFF)
if(NOT CUSTOM_OPS_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS "/usr/local/cuda/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc")
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    # torch's CMake warns about, and ignores, CMAKE_CUDA_ARCHITECTURES (which enable_language sets);
    # CMakeLists.txt sets it to OFF again once torch is found.
    unset(CMAKE_CUDA_ARCHITECTURES CACHE)
    unset(CMAKE_CUDA_ARCHITECTURES)
    set(CUSTOM_OPS_CUDA_ENABLED ON)
    if(NOT CUSTOM_OPS_CUDA_ARCH_LIST STREQUAL "")
      set(ENV{TORCH_CUDA_ARCH_LIST} "${CUSTOM_OPS_CUDA_ARCH_LIST}")
    elseif(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} OR "$ENV{TORCH_CUDA_ARCH_LIST}" STREQUAL "")
      set(ENV{TORCH_CUDA_ARCH_LIST} "8.0+PTX;9.0a")
    endif()
    message(STATUS "custom_ops: CUDA kernels ON, TORCH_CUDA_ARCH_LIST=$ENV{TORCH_CUDA_ARCH_LIST}")
  elseif(CUSTOM_OPS_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "custom_ops: CUSTOM_OPS_WITH_CUDA=ON but no CUDA compiler (nvcc) was found")
  else()
    message(STATUS "custom_ops: no CUDA compiler found, building the CPU-only plugin")
  endif()
endif()
