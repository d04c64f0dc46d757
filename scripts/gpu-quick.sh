#!/usr/bin/env bash
# A short loop for kernel work on the GPU machine (device tool), in one call: build (as gpu-check.sh),
# the SASS summary of the Hopper kernels, a one-minute smoke test of the Hopper family
# (bench/hopper_smoke.py), the given pytest files, then the given benchmark suite.
# Logs in $OUT. The full check before a change lands is scripts/gpu-check.sh.
#   run: scripts/gpu-quick.sh [PYTEST_PATHS...]    env: BENCH_SUITE=headline|quick|full|none (default headline)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
scripts/build.sh >"$OUT/build.log" 2>&1 || { grep -E "error|Error" "$OUT/build.log" | head -30; tail -5 "$OUT/build.log"; exit 1; }
source scripts/env.sh
grep -E "ptxas (warning|info).*(hopper|spill)|C7508|serialized" "$OUT/build.log" | cut -c1-200 | sort | uniq -c | head
cuobjdump -sass "$CUSTOM_OPS_LIBRARY" 2>/dev/null | awk '
  /Function :/ { name = $3 } /HGMMA/ { n[name]++ } /LDL|STL/ { l[name]++ }
  END { for (f in n) printf "HGMMA %4d  LDL/STL %d  %.90s\n", n[f], l[f], f }' | sort | tee "$OUT/sass-hopper.txt" | head -8
# A hang or fault in a kernel shows here within a minute instead of at the pytest timeout.
timeout 60 "$PYTHON" bench/hopper_smoke.py 2>&1 | tee "$OUT/smoke.log" | tail -6
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "smoke test failed or timed out: stopping"; exit 1; }
rc=0
if [ $# -gt 0 ]; then
  timeout 420 "$PYTHON" -m pytest -q -p no:cacheprovider -x "$@" 2>&1 | tee "$OUT/pytest.log" | tail -25
  rc=${PIPESTATUS[0]}
fi
if [ "${BENCH_SUITE:-headline}" != none ]; then
  timeout 300 "$PYTHON" bench/bench_conv1d.py --suite "${BENCH_SUITE:-headline}" --markdown "$OUT/bench.md" 2>&1 \
    | tee "$OUT/bench.log" | grep -v "^  " | tail -40
fi
exit "$rc"
