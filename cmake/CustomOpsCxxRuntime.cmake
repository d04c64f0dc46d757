# custom_ops_shared_cxx_runtime_link_options(<variable>): sets <variable> to the link options with which a
# library or program built by this compiler uses the process's shared C++ runtime (empty for a sound one).
#
# A plugin must use the libstdc++.so.6 the process loads (the one libtorch links), never copies of its own.
# Two compiler set-ups break that without a warning; the GPU machine's default g++ (/opt/gcc) has both:
#   1. Its own libstdc++.so is a broken symlink (`g++ -print-file-name=libstdc++.so` prints a bare name
#      instead of a path), so the driver's implicit -lstdc++ falls back to the static libstdc++.a and the
#      plugin gets private copies of parts of libstdc++ (locale ids, ostream inserters) beside the shared
#      libstdc++ the process has already loaded. Formatting the first error message then segfaults.
#   2. Its specs pass -Bsymbolic to every shared link (%{shared: -Bsymbolic}), which binds the plugin's
#      references to its own copies of anything it defines, instead of to the process's single one.
# The fix for 1: a folder with libstdc++.so -> the libstdc++.so.6 that libtorch loads, searched first, so
# -lstdc++ resolves to the shared library and libstdc++.a is never opened. For 2: -Wl,-Bno-symbolic after
# the specs' -Bsymbolic (the last one wins). Where neither can be done, configuring stops and says what to do.
# Needs CUSTOM_OPS_TORCH_ROOT (custom_ops_find_torch).
function(custom_ops_shared_cxx_runtime_link_options variable)
  set(${variable} "" PARENT_SCOPE)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    return()  # clang links libstdc++/libc++ through its own driver logic; not seen broken
  endif()
  set(link_options "")

  execute_process(COMMAND "${CMAKE_CXX_COMPILER}" -print-file-name=libstdc++.so
                  OUTPUT_VARIABLE shared_runtime OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT IS_ABSOLUTE "${shared_runtime}" OR NOT EXISTS "${shared_runtime}")
    # The runtime libtorch is loaded with: what the dynamic loader resolves for libc10.so (its RUNPATH,
    # then the system's). ldd asks that loader.
    set(loaded_runtime "")
    execute_process(COMMAND ldd "${CUSTOM_OPS_TORCH_ROOT}/lib/libc10.so" OUTPUT_VARIABLE ldd_output
                    RESULT_VARIABLE ldd_result ERROR_QUIET)
    if(ldd_result EQUAL 0 AND ldd_output MATCHES "libstdc\\+\\+\\.so\\.6 => ([^ \t\n]+)")
      set(loaded_runtime "${CMAKE_MATCH_1}")
    endif()
    if(NOT EXISTS "${loaded_runtime}")
      message(FATAL_ERROR
        "custom_ops: ${CMAKE_CXX_COMPILER} has no usable shared libstdc++ (-print-file-name=libstdc++.so gives "
        "'${shared_runtime}', not a file), so it would link parts of the static libstdc++.a into the plugin, "
        "which then crashes inside a process that loaded libtorch's shared libstdc++. The libstdc++.so.6 that "
        "libtorch loads could not be found either (ldd ${CUSTOM_OPS_TORCH_ROOT}/lib/libc10.so). Configure with "
        "a compiler whose shared libstdc++ is installed (e.g. -DCMAKE_CXX_COMPILER=/usr/bin/g++ in a fresh "
        "build folder), or repair the compiler's libstdc++.so symlink.")
    endif()
    set(runtime_dir "${CMAKE_BINARY_DIR}/shared-cxx-runtime")
    file(MAKE_DIRECTORY "${runtime_dir}")
    file(CREATE_LINK "${loaded_runtime}" "${runtime_dir}/libstdc++.so" SYMBOLIC)
    message(STATUS "custom_ops: ${CMAKE_CXX_COMPILER} has no shared libstdc++ ('${shared_runtime}'); linking "
                   "-lstdc++ against the one libtorch loads, ${loaded_runtime}, instead of the static libstdc++.a")
    list(APPEND link_options "-L${runtime_dir}")
  endif()

  # What the driver passes to the linker for a shared library (-### prints the commands, runs nothing).
  set(empty_source "${CMAKE_BINARY_DIR}/CMakeFiles/custom_ops_empty.cpp")
  file(WRITE "${empty_source}" "")
  execute_process(COMMAND "${CMAKE_CXX_COMPILER}" -shared "-###" "${empty_source}" -o "${empty_source}.so"
                  ERROR_VARIABLE driver_commands OUTPUT_QUIET)
  if(driver_commands MATCHES "-Bsymbolic")
    include(CheckLinkerFlag)
    check_linker_flag(CXX "-Wl,-Bno-symbolic" CUSTOM_OPS_LINKER_HAS_BNO_SYMBOLIC)
    if(NOT CUSTOM_OPS_LINKER_HAS_BNO_SYMBOLIC)
      message(FATAL_ERROR
        "custom_ops: ${CMAKE_CXX_COMPILER} links shared libraries with -Bsymbolic (its specs), which gives the "
        "plugin private bindings of what libtorch and libstdc++ share, and the linker does not accept "
        "-Bno-symbolic to undo it. Configure with another compiler (e.g. -DCMAKE_CXX_COMPILER=/usr/bin/g++).")
    endif()
    message(STATUS "custom_ops: ${CMAKE_CXX_COMPILER} adds -Bsymbolic to shared links; undoing it with -Bno-symbolic")
    list(APPEND link_options "-Wl,-Bno-symbolic")
  endif()

  set(${variable} "${link_options}" PARENT_SCOPE)
endfunction()
