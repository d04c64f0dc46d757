#!/usr/bin/env bash
# The GPU check, for the GPU machine (device tool), in one call:
#   build against the machine's own torch -> every test (C++ and Python, CUDA included) ->
#   compute-sanitizer (memcheck, racecheck, initcheck, synccheck) over the CUDA C++ tests -> benchmarks
#   (forward, backward) -> summary table last. The Python tests include the 20,000-case CUDA fuzz.
# Logs go to $OUT (default: build-gpu/logs). GoogleTest sources come from .deps/googletest (carry it:
# the GPU machine has none; copy Debian's /usr/src/googletest there).
#   run: scripts/gpu-check.sh [--no-pytest] [--no-sanitizers] [--no-bench]
# The whole check takes about 11 minutes on an H200 (pytest with the fuzz 5.5, the sanitizers 3-4), more
# than one device call may run: split it, e.g. `--no-sanitizers --no-bench`, then `--no-pytest`.
# initcheck reports the host copy of every output the Hopper kernels wrote through the copy engine as
# uninitialized: the tool does not track those writes (bench/probes/bulk_store_initcheck.cu shows it on
# a 4 KB buffer). Its step prints every report (no backtraces) and passes where all of them are such host
# copies ("by cudaMemcpy source"; the tests check every output value against poisoned buffers): a report
# of a kernel's own read fails it (a kernel reading a bulk-stored buffer, as fold_taps_kernel reads the
# unfolded gradient, among them: read its log).
#   env: BENCH_SUITE=quick|full (default full), PYTEST_PATHS="tests/python/x.py ..." (default: all tests),
#        SANITIZER_TOOLS="racecheck synccheck" (default: all four), SANITIZER_FILTER='*Backward*' (a gtest
#        filter; default: the CUDA tests) to fit the sanitizers into separate calls: all four over all
#        CUDA tests take longer than a 600-second device call.
set -uo pipefail
cd "$(dirname "$0")/.."
run_pytest=1 run_sanitizers=1 run_bench=1
for arg in "$@"; do
  case "$arg" in
    --no-pytest) run_pytest=0 ;;
    --no-sanitizers) run_sanitizers=0 ;;
    --no-bench) run_bench=0 ;;
    *) echo "gpu-check.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
source scripts/gpu-env.sh
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

if step "build (nvcc, ${TORCH_CUDA_ARCH_LIST:-default architectures})" build.log scripts/build.sh; then
  source scripts/env.sh
  tests="$BUILD_DIR/tests/cpp/custom_ops_tests"
  grep -h "CMAKE_CXX_COMPILER:\|custom_ops:" "$BUILD_DIR/CMakeCache.txt" "$OUT/build.log" | tee -a "$OUT/gpu.txt"
  cuobjdump --list-elf "$CUSTOM_OPS_LIBRARY" 2>/dev/null | grep -o "sm_[0-9]*a\?" | sort | uniq -c | tee -a "$OUT/gpu.txt"
  # The plugin uses the process's shared libstdc++ whatever the compiler: NEEDED, no private copies of
  # libstdc++ (locale ids, stream inserters), no -Bsymbolic.
  step "plugin links the shared libstdc++" cxx-runtime.log bash -c '
    readelf -d "$0" | grep -q "NEEDED.*libstdc++\.so\.6" || { echo "libstdc++.so.6 not NEEDED"; exit 1; }
    if readelf -d "$0" | grep -q SYMBOLIC; then echo "linked with -Bsymbolic"; exit 1; fi
    copies=$(nm -DC --defined-only "$0" | grep -c "std::locale::id\\|std::basic_ostream" || true)
    [ "$copies" = 0 ] || { echo "$copies libstdc++ symbols defined in the plugin"; exit 1; }
    echo "libstdc++.so.6 NEEDED, no SYMBOLIC, no private libstdc++ copies"' "$CUSTOM_OPS_LIBRARY"
  step "C++ tests (all, CUDA included)" gtest.log "$tests"
  if [ "$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)" -ge 2 ]; then
    # Two GPUs: the C++ program for the scripted-model-on-cuda:1 test, built as multi-gpu-check.sh does.
    cmake -S examples/cpp_inference -B "$BUILD_DIR/demo/cpp_inference" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$PWD/$BUILD_DIR/install;$("$PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')" \
      >"$OUT/cpp.log" 2>&1 && cmake --build "$BUILD_DIR/demo/cpp_inference" >>"$OUT/cpp.log" 2>&1 &&
      export CUSTOM_OPS_CPP_INFERENCE="$PWD/$BUILD_DIR/demo/cpp_inference/conv1d_inference"
  fi
  if [ "$run_pytest" = 1 ]; then
    step "Python tests (all, CUDA included)" pytest.log "$PYTHON" -m pytest -q -p no:cacheprovider -rs ${PYTEST_PATHS:-}
  fi
  if [ "$run_sanitizers" = 1 ]; then
    cuda_filter="${SANITIZER_FILTER:-*Cuda*:*CUDA*}"
    for tool in ${SANITIZER_TOOLS:-memcheck racecheck initcheck synccheck}; do
      if [ "$tool" = initcheck ]; then
        step "compute-sanitizer initcheck" initcheck.log bash -c '
          compute-sanitizer --tool initcheck --print-limit 1000000 --show-backtrace no "$0" --gtest_filter="$1"
          tests_rc=$?  # exit status of the tests (no --error-exitcode: the reports are judged below)
          reports=$(grep -v "ERROR SUMMARY\|COMPUTE-SANITIZER" "$2" | grep -c "^========= [A-Z]")
          copies=$(grep -c "on access by cudaMemcpy source" "$2")
          echo "initcheck: $reports reports, $copies of them host copies of copy-engine-written buffers"
          [ "$tests_rc" = 0 ] && [ "$reports" = "$copies" ]' "$tests" "$cuda_filter" "$OUT/initcheck.log"
      else
        step "compute-sanitizer $tool" $tool.log \
          compute-sanitizer --tool $tool --error-exitcode 1 --print-limit 50 "$tests" --gtest_filter="$cuda_filter"
      fi
    done
    grep -h "ERROR SUMMARY\|RACECHECK SUMMARY" "$OUT"/*check.log || true
  fi
  cuobjdump --dump-resource-usage "$CUSTOM_OPS_LIBRARY" 2>/dev/null | grep -E "Function|REG" >"$OUT/resource-usage.txt"
  # SASS per kernel: tensor-core instructions (HMMA: mma.sync; HGMMA: wgmma) and local-memory traffic
  # (LDL/STL: spills).
  cuobjdump -sass "$CUSTOM_OPS_LIBRARY" 2>/dev/null | awk '
    /Function :/ { name = $3 }
    /HMMA/ { hmma[name]++ } /HGMMA/ { hgmma[name]++ } /LDL|STL/ { local[name]++ } /Function :/ { seen[name] = 1 }
    END { for (f in seen) printf "%-110.110s HMMA %5d  HGMMA %4d  LDL/STL %d\n", f, hmma[f], hgmma[f], local[f] }' \
    | sort >"$OUT/sass-summary.txt"
  if [ "$run_bench" = 1 ]; then
    step "benchmark (bench/bench_conv1d.py)" bench.log "$PYTHON" bench/bench_conv1d.py --suite "${BENCH_SUITE:-full}" --markdown "$OUT/bench.md"
    step "backward benchmark" bench-backward.log "$PYTHON" bench/bench_conv1d_backward.py --suite "${BENCH_SUITE:-full}" --markdown "$OUT/bench-backward.md" \
      --breakdown "$OUT/bench-backward-kernels.md"
  fi
fi

echo
cat "$OUT/gpu.txt"
[ -f "$OUT/bench.md" ] && cat "$OUT/bench.md" && echo
[ -f "$OUT/bench-backward.md" ] && cat "$OUT/bench-backward.md" && echo
grep -h "^fuzz" "$OUT/pytest.log" 2>/dev/null
echo "| step | result | time | last line of its log |"
echo "|---|---|---|---|"
printf '%s\n' "${summary[@]}"
! printf '%s\n' "${summary[@]}" | grep -q FAIL
