#!/usr/bin/env bash
# Builds the plugin as a machine without a CUDA toolkit would (nvcc and /usr/local/cuda hidden in a
# private mount namespace), then runs the C++ tests against that CPU-only build. It proves the CUDA
# parts stay optional, also with PyPI's torch, whose CMake package asks for a CUDA toolkit.
# Needs root (or user namespaces) for `unshare -m`; elsewhere it says so and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if ! unshare -m true 2>/dev/null; then
  echo "[cpu-only] skipped: cannot create a mount namespace here (unshare -m) to hide the CUDA toolkit"
  exit 0
fi
empty=$(mktemp -d)
trap 'rmdir "$empty"' EXIT
unshare -m bash -c '
  set -euo pipefail
  for d in /usr/local/cuda /usr/local/cuda-*; do [ -d "$d" ] && mount --bind "'"$empty"'" "$d"; done
  export PATH=$(echo "$PATH" | tr ":" "\n" | grep -v cuda | paste -sd:)
  if command -v nvcc >/dev/null 2>&1 && nvcc --version >/dev/null 2>&1; then
    echo "[cpu-only] nvcc still reachable at $(command -v nvcc); cannot hide it"; exit 1
  fi
  BUILD_DIR=build-cpuonly PYTHON="'"$PYTHON"'" CMAKE_ARGS="-DCUSTOM_OPS_WITH_CUDA=AUTO" scripts/build.sh
  if readelf -d build-cpuonly/libcustom_ops.so | grep -q "libtorch_cuda\|libcudart"; then
    echo "[cpu-only] the plugin still links CUDA libraries"; exit 1
  fi
  ctest --test-dir build-cpuonly --output-on-failure -j "$(nproc)"
'
