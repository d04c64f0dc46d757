#!/usr/bin/env bash
# Configures, builds and installs the plugin (and its C++ tests) into build/install.
#   BUILD_DIR       build folder (default: build)
#   PYTHON          interpreter whose torch to build against (default: the project's virtualenv)
#   CMAKE_PRESET    configure preset from CMakePresets.json (default: release; also cpu-only, sanitizers)
#   TORCH_CUDA_ARCH_LIST  GPU architectures (default 8.0+PTX;9.0a, see cmake/CustomOpsCuda.cmake)
#   CMAKE_ARGS      extra arguments for the configure step (e.g. -DCUSTOM_OPS_CUDA_ARCH_LIST=9.0a)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  # The preset gives the build type and options; the folder and interpreter are the caller's.
  cmake --preset "${CMAKE_PRESET:-release}" -S . -B "$BUILD_DIR" "${generator[@]}" \
    -DPython3_EXECUTABLE="$PYTHON" -DCMAKE_INSTALL_PREFIX="$PWD/$BUILD_DIR/install" ${CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" --parallel "${BUILD_JOBS:-$(nproc)}"
cmake --install "$BUILD_DIR" >/dev/null
echo "[build] plugin installed in $BUILD_DIR/install"
