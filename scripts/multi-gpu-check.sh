#!/usr/bin/env bash
# The multi-GPU check, for a machine with two or more GPUs (device tool kind nvidia-h200-x2), in one call:
#   build (as gpu-check.sh) -> the C++ example (for the cuda:1 TorchScript test) -> the device-placement
#   and distributed tests (tests/python/test_distributed.py: inputs on cuda:1 while cuda:0 is current,
#   mixed devices, a scripted model on cuda:1 loaded in C++, DDP and FSDP2 under torchrun
#   --nproc_per_node=2 with NCCL, the DTensor sharding rules' cases with NCCL, and the gloo runs of
#   each) -> the DDP scaling benchmark (bench/bench_ddp.py, 1 and 2 GPUs, custom::conv1d against
#   nn.Conv1d: $OUT/bench_ddp.md) -> a summary, one line per group of tests.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader | tee "$OUT/gpus.txt"
gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
[ "$gpus" -ge 2 ] || { echo "[multi-gpu] needs two GPUs, found $gpus"; exit 1; }
scripts/build.sh >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
source scripts/env.sh
# The C++ inference program, built against the installed package (as the demo builds it).
cmake -S examples/cpp_inference -B "$BUILD_DIR/demo/cpp_inference" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$PWD/$BUILD_DIR/install;$("$PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')" \
  >"$OUT/cpp.log" 2>&1 && cmake --build "$BUILD_DIR/demo/cpp_inference" >>"$OUT/cpp.log" 2>&1 || { tail -20 "$OUT/cpp.log"; exit 1; }
export CUSTOM_OPS_CPP_INFERENCE="$PWD/$BUILD_DIR/demo/cpp_inference/conv1d_inference"
"$PYTHON" -m pytest -v -p no:cacheprovider -rs tests/python/test_distributed.py 2>&1 | tee "$OUT/multi-gpu.log" | tail -15
rc=${PIPESTATUS[0]}
echo
echo "== DDP scaling benchmark (bench/bench_ddp.py)"
timeout 300 "$PYTHON" bench/bench_ddp.py --gpus 1,2 --markdown "$OUT/bench_ddp.md" >"$OUT/bench_ddp.log" 2>&1
bench_rc=$?
if [ "$bench_rc" -eq 0 ]; then cat "$OUT/bench_ddp.md"; else tail -20 "$OUT/bench_ddp.log"; fi
echo
echo "[multi-gpu] $gpus GPUs: test_distributed.py $([ "$rc" -eq 0 ] && echo PASS || echo "FAIL (rc $rc)")"
for group in inputs_on_second_gpu mixing_devices scripted_model ddp_nccl ddp_gloo fsdp2_nccl fsdp2_gloo \
             dtensor_nccl dtensor_gloo; do
  printf '[multi-gpu]   %-22s %3d passed, %d failed, %d skipped\n' "$group" \
    "$(grep -c "::test_[a-z0-9_]*${group}.* PASSED" "$OUT/multi-gpu.log")" \
    "$(grep -c "::test_[a-z0-9_]*${group}.* FAILED" "$OUT/multi-gpu.log")" \
    "$(grep -c "::test_[a-z0-9_]*${group}.* SKIPPED" "$OUT/multi-gpu.log")"
done
grep -c "SKIPPED" "$OUT/multi-gpu.log" >/dev/null && grep "SKIPPED" "$OUT/multi-gpu.log"
echo "[multi-gpu] DDP scaling benchmark: $([ "$bench_rc" -eq 0 ] && echo "done ($OUT/bench_ddp.md)" || echo "FAIL (rc $bench_rc)")"
[ "$rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
exit $?
