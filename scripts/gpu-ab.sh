#!/usr/bin/env bash
# A kernel change measured against main in one device call: this tree (A) and a copy of it with PATCH
# applied (B) are built side by side (half the cores each), B's smoke test and the tests that cover the
# change run first (a hang or a wrong result stops the call), then the headline benchmarks of A and B on
# the same machine, one after the other. Logs and tables under $OUT.
#
#   run: TORCH_CUDA_ARCH_LIST=9.0a scripts/gpu-ab.sh bench/patches/NAME.patch [forward|backward|both]
#   env: AB_TESTS   pytest paths for B (default: the Hopper forward and backward tests, the backward table)
#        AB_SUITE   benchmark suite (default: headline)
set -uo pipefail
patch_file=$(realpath "${1:?usage: scripts/gpu-ab.sh PATCH [forward|backward|both]}")
which=${2:-both}
root=$PWD
source scripts/gpu-env.sh
copy="$root/build-ab/patched"
rm -rf "$copy" && mkdir -p "$copy"
# The tree without build folders; .deps (GoogleTest) is shared by a link.
tar --exclude=./build --exclude='./build-*' --exclude=./.deps -cf - . | tar -xf - -C "$copy"
ln -sfn "$root/.deps" "$copy/.deps"
(cd "$copy" && { git apply "$patch_file" 2>/dev/null || patch -p1 -s < "$patch_file"; }) ||
  { echo "[ab] $patch_file does not apply"; exit 1; }
echo "[ab] A = this tree, B = this tree + $patch_file"
half=$(( $(nproc) / 2 ))
(BUILD_JOBS=$half scripts/build.sh > "$OUT/build-a.log" 2>&1; echo "[ab] build A rc=$?") &
(cd "$copy" && BUILD_JOBS=$half scripts/build.sh > "$OUT/build-b.log" 2>&1; echo "[ab] build B rc=$?")
wait
grep -hE "error|ptxas.*(spill|C751[0-8]|C752)" "$OUT/build-b.log" | grep -v " 0 bytes spill" | sort | uniq -c | head -10
[ -f "$copy/$BUILD_DIR/libcustom_ops.so" ] && [ -f "$BUILD_DIR/libcustom_ops.so" ] || { echo "[ab] a build failed"; exit 1; }

cd "$copy" && source scripts/env.sh
timeout 60 "$PYTHON" bench/hopper_smoke.py > "$OUT/smoke-b.log" 2>&1; smoke_rc=$?
tail -4 "$OUT/smoke-b.log"
[ "$smoke_rc" -eq 0 ] || { echo "[ab] B's smoke test failed or hung: stop"; exit 1; }
timeout 240 "$PYTHON" -m pytest -q -p no:cacheprovider -x --tb=short \
  ${AB_TESTS:-tests/python/test_hopper.py tests/python/test_hopper_backward.py tests/python/test_backward_dispatch.py} 2>&1 | tail -6
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "[ab] B's tests failed: stop"; exit 1; }

bench() {  # bench LABEL DIR
  (cd "$2" && source scripts/env.sh &&
    if [ "$which" != backward ]; then
      timeout 150 "$PYTHON" bench/bench_conv1d.py --suite "${AB_SUITE:-headline}" --markdown "$OUT/forward-$1.md" \
        > "$OUT/forward-$1.log" 2>&1
      echo "forward, $1:"; grep "^|" "$OUT/forward-$1.md" | cut -d'|' -f2-6,9,13
    fi
    if [ "$which" != forward ]; then
      timeout 150 "$PYTHON" bench/bench_conv1d_backward.py --suite "${AB_SUITE:-headline}" \
        --markdown "$OUT/backward-$1.md" --breakdown "$OUT/backward-kernels-$1.md" > "$OUT/backward-$1.log" 2>&1
      echo "backward, $1:"; grep "^|" "$OUT/backward-$1.md" | cut -d'|' -f2-6,9
    fi)
}
bench B "$copy"
bench A "$root"
