#!/usr/bin/env bash
# The GPU check, for the GPU machine (device tool), in one call:
#   build against the machine's own torch -> every test (C++ and Python, CUDA included) ->
#   compute-sanitizer (memcheck, racecheck) over the CUDA C++ tests -> benchmark -> summary table last.
# Logs go to $OUT (default: build-gpu/logs). GoogleTest sources come from .deps/googletest (carry it:
# the GPU machine has none; copy Debian's /usr/src/googletest there).
#   run: scripts/gpu-check.sh [--no-bench]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-build-gpu/logs}"
mkdir -p "$OUT"
export BUILD_DIR=build-gpu PYTHON="${PYTHON:-python3}" BUILD_JOBS="${BUILD_JOBS:-$(nproc)}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0a}" PYTHONUNBUFFERED=1
# The image's default CXX (/opt/gcc) links parts of libstdc++ into the plugin, whose own copy of
# iostream then crashes inside a Python process that already loaded the system libstdc++ (seen as a
# segfault in ostream::_M_insert while formatting an error message). Build with the system compiler.
if [ -x /usr/bin/g++ ]; then export CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++; fi
export CMAKE_ARGS="-DCUSTOM_OPS_GTEST_SOURCE_DIR=$PWD/.deps/googletest -DCUSTOM_OPS_WITH_CUDA=ON"
declare -a summary
step() {  # step NAME LOGFILE COMMAND...
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  "$@" >"$OUT/$log" 2>&1
  local rc=$?
  local verdict="PASS"; [ $rc -ne 0 ] && verdict="FAIL (rc $rc)"
  summary+=("$(printf '| %-34s | %-12s | %4ds | %s |' "$name" "$verdict" $((SECONDS - t0)) "$(tail -n 1 "$OUT/$log" | cut -c1-70)")")
  echo "[gpu-check] $name: $verdict"
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())' | tee -a "$OUT/gpu.txt"

if step "build (nvcc, sm_$TORCH_CUDA_ARCH_LIST)" build.log scripts/build.sh; then
  source scripts/env.sh
  tests="$BUILD_DIR/tests/cpp/custom_ops_tests"
  step "C++ tests (all, CUDA included)" gtest.log "$tests"
  step "Python tests (all, CUDA included)" pytest.log "$PYTHON" -m pytest -q -p no:cacheprovider -rs
  cuda_filter='*Cuda*:*CUDA*'
  step "compute-sanitizer memcheck" memcheck.log \
    compute-sanitizer --tool memcheck --error-exitcode 1 "$tests" --gtest_filter="$cuda_filter"
  step "compute-sanitizer racecheck" racecheck.log \
    compute-sanitizer --tool racecheck --error-exitcode 1 "$tests" --gtest_filter="$cuda_filter"
  grep -h "ERROR SUMMARY\|RACECHECK SUMMARY" "$OUT/memcheck.log" "$OUT/racecheck.log" || true
  cuobjdump --dump-resource-usage "$CUSTOM_OPS_LIBRARY" 2>/dev/null | grep -E "Function|REG" | head -40 >"$OUT/resource-usage.txt"
  if [ "${1:-}" != "--no-bench" ]; then
    step "benchmark (bench/bench_conv1d.py)" bench.log "$PYTHON" bench/bench_conv1d.py --markdown "$OUT/bench.md"
  fi
fi

echo
cat "$OUT/gpu.txt"
[ -f "$OUT/bench.md" ] && cat "$OUT/bench.md" && echo
echo "| step | result | time | last line of its log |"
echo "|---|---|---|---|"
printf '%s\n' "${summary[@]}"
! printf '%s\n' "${summary[@]}" | grep -q FAIL
