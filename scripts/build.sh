#!/usr/bin/env bash
# Configures, builds and installs the plugin (and its C++ tests) into build/install.
#   BUILD_DIR       build folder (default: build)
#   PYTHON          interpreter whose torch to build against (default: the project's virtualenv)
#   TORCH_CUDA_ARCH_LIST  GPU architectures (default 9.0a, see cmake/CustomOpsCuda.cmake)
#   CMAKE_ARGS      extra arguments for the configure step
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DPython3_EXECUTABLE="$PYTHON" -DCMAKE_INSTALL_PREFIX="$PWD/$BUILD_DIR/install" ${CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" --parallel "${BUILD_JOBS:-$(nproc)}"
cmake --install "$BUILD_DIR" >/dev/null
echo "[build] plugin installed in $BUILD_DIR/install"
