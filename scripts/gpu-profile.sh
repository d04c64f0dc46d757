#!/usr/bin/env bash
# Profiles the CUDA kernels on the GPU machine (device tool) in one call: builds (as gpu-check.sh does)
# unless the plugin is already built, then runs Nsight Compute on bench/profile_kernels.py for each
# "KERNEL_REGEX|profile_kernels.py arguments" given, writing $OUT/ncu-<i>.txt and printing the key lines.
#   run: scripts/gpu-profile.sh 'conv1d_tensorcore|--shape 4 64 128 3 131072 --dtypes bfloat16' ...
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
[ -f "$BUILD_DIR/install/lib/libcustom_ops.so" ] || scripts/build.sh >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
source scripts/env.sh
sections="--section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis"
i=0
for spec in "$@"; do
  i=$((i + 1))
  regex=${spec%%|*} args=${spec#*|}
  # shellcheck disable=SC2086
  ncu --clock-control none --kernel-name "regex:$regex" $sections "$PYTHON" bench/profile_kernels.py $args \
    >"$OUT/ncu-$i.txt" 2>&1
  echo "== $spec"
  grep -E "  conv1d_|DRAM Throughput|L1/TEX Hit|L2 Hit|Duration|Issue Slots Busy|Eligible Warps|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Compute \(SM\) Th|Block Limit|Dynamic Shared|Stall|Mem Busy|Max Bandwidth|L1/TEX Cache Th|L2 Cache Th" "$OUT/ncu-$i.txt" | cut -c1-140
done
