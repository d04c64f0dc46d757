# Decides whether the CUDA kernels are built (CUSTOM_OPS_WITH_CUDA = ON / OFF / AUTO) and enables CUDA.
# Sets CUSTOM_OPS_CUDA_ENABLED.
#
# The GPU architectures come from TORCH_CUDA_ARCH_LIST (torch's CMake overrides CMAKE_CUDA_ARCHITECTURES).
# Without one, torch would guess a long list on a machine with no GPU, so we default to Hopper (9.0a),
# the project's target, which also keeps CI builds to a single architecture.
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
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(CUSTOM_OPS_CUDA_ENABLED ON)
    if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} OR "$ENV{TORCH_CUDA_ARCH_LIST}" STREQUAL "")
      set(ENV{TORCH_CUDA_ARCH_LIST} "9.0a")
    endif()
    message(STATUS "custom_ops: CUDA kernels ON, TORCH_CUDA_ARCH_LIST=$ENV{TORCH_CUDA_ARCH_LIST}")
  elseif(CUSTOM_OPS_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "custom_ops: CUSTOM_OPS_WITH_CUDA=ON but no CUDA compiler (nvcc) was found")
  else()
    message(STATUS "custom_ops: no CUDA compiler found, building the CPU-only plugin")
  endif()
endif()
