# custom_ops_find_torch(): makes the target `torch` available.
#
# libtorch is found through Torch_DIR or CMAKE_PREFIX_PATH as the user gave them, else through the
# Python interpreter's torch (torch.utils.cmake_prefix_path), e.g. the project's virtualenv.
#
# A CUDA build of torch (PyPI's, for one) ships a CMake package that refuses to load without a CUDA
# toolkit, even for a CPU-only consumer. There, and only there, `torch` is made from the library files
# directly (headers, libtorch, libtorch_cpu, libc10): enough to build and link the CPU-only plugin and
# programs that use it.
macro(custom_ops_find_torch)
  if(NOT TARGET torch)
    if(NOT Torch_DIR)
      find_path(_custom_ops_torch_config_dir TorchConfig.cmake
        PATHS ${CMAKE_PREFIX_PATH} PATH_SUFFIXES Torch share/cmake/Torch NO_DEFAULT_PATH)
      if(NOT _custom_ops_torch_config_dir)
        find_package(Python3 COMPONENTS Interpreter REQUIRED)
        execute_process(
          COMMAND "${Python3_EXECUTABLE}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
          OUTPUT_VARIABLE _custom_ops_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
          RESULT_VARIABLE _custom_ops_torch_rc)
        if(NOT _custom_ops_torch_rc EQUAL 0)
          # Older pip (before its build environments became virtualenvs) isolates a build by pointing
          # PYTHONPATH at a sitecustomize that hides the environment's site-packages, in the environment's
          # own interpreter: -E (ignore PYTHON* variables) finds the environment's torch again.
          execute_process(
            COMMAND "${Python3_EXECUTABLE}" -E -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
            OUTPUT_VARIABLE _custom_ops_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
            RESULT_VARIABLE _custom_ops_torch_rc ERROR_QUIET)
        endif()
        if(NOT _custom_ops_torch_rc EQUAL 0)
          message(FATAL_ERROR "custom_ops: libtorch not found: ${Python3_EXECUTABLE} cannot import torch. Give "
                              "CMAKE_PREFIX_PATH, or a Python3_EXECUTABLE with torch installed (scripts/setup-env.sh "
                              "creates one). Under pip, install with `pip install --no-build-isolation .`: pip's "
                              "build isolation hides the environment's torch, which the plugin must be built against.")
        endif()
        set(_custom_ops_torch_config_dir "${_custom_ops_torch_prefix}/Torch")
      endif()
      set(Torch_DIR "${_custom_ops_torch_config_dir}")
    endif()
    get_filename_component(_custom_ops_torch_root "${Torch_DIR}/../../.." ABSOLUTE)
    set(CUSTOM_OPS_TORCH_ROOT "${_custom_ops_torch_root}")

    set(_custom_ops_torch_without_toolkit OFF)
    if(EXISTS "${_custom_ops_torch_root}/lib/libtorch_cuda.so" AND NOT CMAKE_CUDA_COMPILER)
      find_package(CUDAToolkit QUIET)
      if(NOT CUDAToolkit_FOUND)
        set(_custom_ops_torch_without_toolkit ON)
      endif()
    endif()

    if(_custom_ops_torch_without_toolkit)
      message(STATUS "custom_ops: CUDA build of torch without a CUDA toolkit; linking its CPU libraries "
                     "from ${_custom_ops_torch_root}")
      add_library(torch INTERFACE IMPORTED)
      set_target_properties(torch PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES
          "${_custom_ops_torch_root}/include;${_custom_ops_torch_root}/include/torch/csrc/api/include"
        INTERFACE_LINK_LIBRARIES
          "${_custom_ops_torch_root}/lib/libtorch.so;${_custom_ops_torch_root}/lib/libtorch_cpu.so;${_custom_ops_torch_root}/lib/libc10.so")
      set(TORCH_LIBRARIES torch)
    else()
      find_package(Torch CONFIG REQUIRED)
    endif()
  endif()
endmacro()
