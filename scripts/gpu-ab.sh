#!/usr/bin/env bash
# Kernel changes measured against this tree in one device call: this tree (A) and, per PATCH, a copy of
# it with that patch applied (B1, B2, ...; cumulative variants are separate patches) are built side by
# side (the cores shared out), each B's smoke test and the tests that cover the change run first (a hang
# or a wrong result stops the call), then the headline benchmarks on the same machine, one after the
# other: A first, the Bs, A again (A-again): a GPU that warms over the call moves later rows (up to 10%
# seen on unchanged shapes), and A's two runs show that spread beside the Bs'. Logs and tables under $OUT.
#
#   run: TORCH_CUDA_ARCH_LIST=9.0a scripts/gpu-ab.sh bench/patches/NAME.patch [NAME2.patch ...] [forward|backward|both]
#   env: AB_TESTS    pytest paths for the Bs (default: the Hopper forward and backward tests, the backward table;
#                    those a B's tree lacks are left out, and the Python tests its patch adds or changes join)
#        AB_TEST_EACH 1: run them for every B; by default only for the last (cumulative patches: the last holds
#                    the others' code; every B still runs the smoke test), which keeps a call of three
#                    patches inside the device's 10 minutes
#        AB_SUITE    benchmark suite (default: headline); AB_ONLY words: only its shapes whose names contain one
#        AB_DRY_RUN  1: copy the tree and apply the patches, nothing else (checks on any machine that they apply)
#        AB_BASE     patches applied to this tree first (A = tree + base, Bi = A + PATCHi): a change not in
#                    main yet that the measured patches build on
set -uo pipefail
which=both
patches=()
for argument in "$@"; do
  case "$argument" in
    forward | backward | both) which=$argument ;;
    *) patches+=("$(realpath "$argument")") ;;
  esac
done
[ ${#patches[@]} -gt 0 ] || { echo "usage: scripts/gpu-ab.sh PATCH... [forward|backward|both]"; exit 2; }
root=$PWD
source scripts/gpu-env.sh
base=()
for patch in ${AB_BASE:-}; do base+=("$(realpath "$patch")"); done
apply() {  # apply PATCH (in the current folder)
  git apply "$1" 2>/dev/null || patch -p1 -s < "$1"
}
copies=()
for i in "${!patches[@]}"; do
  copy="$root/build-ab/b$((i + 1))"
  rm -rf "$copy" && mkdir -p "$copy"
  # The tree without build folders; .deps (GoogleTest) is shared by a link.
  tar --exclude=./build --exclude='./build-*' --exclude=./.deps -cf - . | tar -xf - -C "$copy"
  ln -sfn "$root/.deps" "$copy/.deps"
  for patch in "${base[@]}"; do
    (cd "$copy" && apply "$patch") || { echo "[ab] base $patch does not apply"; exit 1; }
  done
  (cd "$copy" && apply "${patches[$i]}") || { echo "[ab] ${patches[$i]} does not apply"; exit 1; }
  echo "[ab] A = this tree${base:+ + ${base[*]}}, B$((i + 1)) = A + ${patches[$i]}"
  copies+=("$copy")
done
[ "${AB_DRY_RUN:-0}" = 1 ] && { echo "[ab] dry run: the patches apply"; exit 0; }
# A: this tree with the base patches (the copies above were taken before, so each has them once).
for patch in "${base[@]}"; do apply "$patch" || { echo "[ab] base $patch does not apply to A"; exit 1; }; done

jobs=$(( $(nproc) / (${#copies[@]} + 1) ))
[ "$jobs" -ge 1 ] || jobs=1
(BUILD_JOBS=$jobs scripts/build.sh > "$OUT/build-a.log" 2>&1; echo "[ab] build A rc=$?") &
# The Bs run Python tests only: no GoogleTest suite to compile (a sixth or so of a build's CPU time).
for i in "${!copies[@]}"; do
  (cd "${copies[$i]}" && CMAKE_ARGS="$CMAKE_ARGS -DCUSTOM_OPS_BUILD_TESTS=OFF" BUILD_JOBS=$jobs scripts/build.sh \
     > "$OUT/build-b$((i + 1)).log" 2>&1
   echo "[ab] build B$((i + 1)) rc=$?") &
done
wait
[ -f "$BUILD_DIR/libcustom_ops.so" ] || { echo "[ab] build A failed"; exit 1; }
for i in "${!copies[@]}"; do
  b="B$((i + 1))"
  grep -hE "error|ptxas.*(spill|C751[0-8]|C752)" "$OUT/build-b$((i + 1)).log" | grep -v " 0 bytes spill" | sort | uniq -c | head -10
  [ -f "${copies[$i]}/$BUILD_DIR/libcustom_ops.so" ] || { echo "[ab] build $b failed"; exit 1; }
  (cd "${copies[$i]}" && source scripts/env.sh &&
    timeout 60 "$PYTHON" bench/hopper_smoke.py > "$OUT/smoke-$b.log" 2>&1) ||
    { tail -4 "$OUT/smoke-$b.log"; echo "[ab] $b's smoke test failed or hung: stop"; exit 1; }
  if [ "${AB_TEST_EACH:-0}" != 1 ] && [ "$i" -lt $(( ${#copies[@]} - 1 )) ]; then
    echo "[ab] $b: smoke test passed"
    continue
  fi
  # The given tests that exist in this copy, and the Python tests the patch itself adds or changes.
  tests=()
  for path in ${AB_TESTS:-tests/python/test_hopper.py tests/python/test_hopper_backward.py tests/python/test_backward_dispatch.py} \
      $(git apply --numstat "${patches[$i]}" 2>/dev/null | awk '$3 ~ /^tests\/python\/test_.*\.py$/ {print $3}'); do
    [ -e "${copies[$i]}/$path" ] && [[ " ${tests[*]} " != *" $path "* ]] && tests+=("$path")
  done
  (cd "${copies[$i]}" && source scripts/env.sh &&
    timeout 240 "$PYTHON" -m pytest -q -p no:cacheprovider -x --tb=short "${tests[@]}" \
      > "$OUT/tests-$b.log" 2>&1) || { tail -6 "$OUT/tests-$b.log"; echo "[ab] $b's tests failed: stop"; exit 1; }
  echo "[ab] $b: smoke and tests passed ($(tail -1 "$OUT/tests-$b.log"))"
done

bench() {  # bench LABEL DIR
  (cd "$2" && source scripts/env.sh &&
    if [ "$which" != backward ]; then
      timeout 150 "$PYTHON" bench/bench_conv1d.py --suite "${AB_SUITE:-headline}" ${AB_ONLY:+--only $AB_ONLY} \
        --markdown "$OUT/forward-$1.md" > "$OUT/forward-$1.log" 2>&1
      echo "forward, $1:"; grep "^|" "$OUT/forward-$1.md" | cut -d'|' -f2-6,9,13
    fi
    if [ "$which" != forward ]; then
      timeout 150 "$PYTHON" bench/bench_conv1d_backward.py --suite "${AB_SUITE:-headline}" ${AB_ONLY:+--only $AB_ONLY} \
        --markdown "$OUT/backward-$1.md" --breakdown "$OUT/backward-kernels-$1.md" > "$OUT/backward-$1.log" 2>&1
      echo "backward, $1:"; grep "^|" "$OUT/backward-$1.md" | cut -d'|' -f2-6,9
    fi)
}
bench A "$root"
for (( i = ${#copies[@]} - 1; i >= 0; i-- )); do bench "B$((i + 1))" "${copies[$i]}"; done
bench A-again "$root"
