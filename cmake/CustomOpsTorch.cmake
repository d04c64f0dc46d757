# Finds libtorch: first through CMAKE_PREFIX_PATH / Torch_DIR as the user gave them, then through the
# Python interpreter's torch (torch.utils.cmake_prefix_path), e.g. the project's virtualenv.
find_package(Torch CONFIG QUIET)
if(NOT Torch_FOUND)
  find_package(Python3 COMPONENTS Interpreter REQUIRED)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _custom_ops_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _custom_ops_torch_rc)
  if(NOT _custom_ops_torch_rc EQUAL 0)
    message(FATAL_ERROR "custom_ops: libtorch not found. Give CMAKE_PREFIX_PATH, or a Python3_EXECUTABLE "
                        "with torch installed (scripts/setup-env.sh creates one).")
  endif()
  list(APPEND CMAKE_PREFIX_PATH "${_custom_ops_torch_prefix}")
  find_package(Torch CONFIG REQUIRED)
endif()
message(STATUS "custom_ops: Torch ${Torch_VERSION} from ${Torch_DIR}")
