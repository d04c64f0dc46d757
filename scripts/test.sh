#!/usr/bin/env bash
# Runs every test: sets up the virtualenv (once), builds and installs the plugin, then runs the
# GoogleTest suite (ctest) and the Python suite (pytest: opcheck, random comparison with F.conv1d,
# TorchScript/compile/export, the examples end to end), after checking the pip install in a fresh
# virtualenv. CUDA tests run when a GPU is present.
#   PYTHON     interpreter with torch to use instead of the project's virtualenv (e.g. on the GPU machine)
#   BUILD_DIR  build folder (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/build.sh

echo "== C++ tests (GoogleTest via ctest)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
echo "== CPU-only build (no CUDA toolkit visible) and its C++ tests"
scripts/check-cpu-only.sh
echo "== AddressSanitizer + UndefinedBehaviorSanitizer build (CPU kernels) and its C++ tests"
scripts/check-sanitizers.sh
echo "== Toolchain: the plugin built by a g++ without a shared libstdc++ and with -Bsymbolic (as the GPU machine's)"
scripts/check-toolchain.sh
echo "== pip install . in a fresh virtualenv (CPU-only wheel), import custom_ops, find_package from the wheel"
scripts/check-pip-install.sh
echo "== Python tests (pytest)"
"$PYTHON" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-}
