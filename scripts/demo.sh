#!/usr/bin/env bash
# The demo, end to end (on CPU, and on CUDA too where a GPU is present):
#   1. build and install the plugin (a CMake package under build/install),
#   2. Python: custom::conv1d against F.conv1d, and a model with its nn.Conv1d layers swapped;
#      training with gradients through the op (and autocast on a GPU),
#   3. export: script and trace a model that uses the op, save the .pt archives,
#   4. C++: build examples/cpp_inference against the installed package (find_package(CustomOps),
#      linked with -Wl,--as-needed) and run the archives saved from Python with libtorch alone, then
#      train the scripted one from C++.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/build.sh
demo="$BUILD_DIR/demo"

echo "== 1. Python: custom::conv1d vs F.conv1d, and nn.Conv1d swapped in a model"
"$PYTHON" examples/python_demo.py
echo "== 2. Python: training with custom::conv1d (gradients, autocast on a GPU)"
"$PYTHON" examples/train_demo.py
echo "== 2b. Python: DDP training over 2 CPU processes (gloo), checked against single-process training"
OMP_NUM_THREADS=1 "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node=2 examples/ddp_train.py --backend gloo \
  2>&1 | grep -E "rank 0|DDP"
echo "== 3. Export: TorchScript archives (scripted and traced)"
"$PYTHON" examples/export_models.py "$demo"
echo "== 4. C++ inference and training on the installed package (linked with -Wl,--as-needed)"
torch_prefix=$("$PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
mkdir -p "$demo"
if ! { cmake -S examples/cpp_inference -B "$demo/cpp_inference" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_PREFIX_PATH="$PWD/$BUILD_DIR/install;$torch_prefix" -DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed &&
       cmake --build "$demo/cpp_inference"; } >"$demo/cpp_inference.log" 2>&1; then
  cat "$demo/cpp_inference.log"
  exit 1
fi
echo "built $demo/cpp_inference/conv1d_inference (log: $demo/cpp_inference.log)"
for archive in model_scripted.pt model_traced.pt; do
  "$demo/cpp_inference/conv1d_inference" "$demo/$archive" "$demo/sample.pt"
done
"$demo/cpp_inference/conv1d_train" "$demo/model_scripted.pt" "$demo/sample.pt"
echo "demo: OK"
