#!/usr/bin/env bash
# The pip way in, as a new user takes it: in a fresh virtualenv with torch, `pip install .`, then
# `import custom_ops` runs the op, and a C++ program (tests/cpp_package) finds the installed package
# through custom_ops.cmake_prefix_path.
#
# Choices, to keep CI fast and offline:
#  - The fresh virtualenv sees the project's virtualenv (torch 2.11.0, scikit-build-core) through a .pth
#    file instead of downloading torch again (4.7 GB); custom_ops itself is installed into the fresh one.
#  - pip runs with --no-build-isolation, the documented way (pyproject.toml: the plugin must be built
#    against the environment's torch), and --no-index, so that nothing is downloaded.
#  - The wheel is CPU-only (CUSTOM_OPS_WITH_CUDA=OFF): the CUDA kernels would add minutes on 2 cores, and
#    the build of the CUDA plugin is covered by the main build. PIP_CHECK_CUDA=1 builds them too.
#   BUILD_DIR  the main build folder (default: build); this check works in build-pip/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
work="$PWD/build-pip"
rm -rf "$work/venv" "$work/consumer"
mkdir -p "$work"
"$PYTHON" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
"$PYTHON" -c "$purelib" >"$("$venv_python" -c "$purelib")/custom_ops_project_venv.pth"

cuda=OFF
[ "${PIP_CHECK_CUDA:-0}" = 1 ] && cuda=AUTO
t0=$SECONDS
"$venv_python" -m pip install -q --no-build-isolation --no-index \
  -C cmake.define.CUSTOM_OPS_WITH_CUDA=$cuda -C build-dir="$work/wheel-build" . >"$work/pip-install.log" 2>&1 ||
  { cat "$work/pip-install.log"; exit 1; }
echo "[pip] pip install . (CUDA kernels: $cuda) took $((SECONDS - t0)) s"

# Outside the repository and without the scripts' library override: only the installed package can answer.
cd "$work"
env -u CUSTOM_OPS_LIBRARY "$venv_python" - <<'PY'
import torch, custom_ops
from pathlib import Path
assert Path(custom_ops.__file__).is_relative_to(Path(__import__("sys").prefix)), custom_ops.__file__
y = custom_ops.conv1d(torch.randn(2, 4, 16), torch.randn(8, 4, 3), padding=1)
assert y.shape == (2, 8, 16), y.shape
print(f"[pip] import custom_ops: {custom_ops.__file__}; custom_ops.conv1d -> {tuple(y.shape)}; "
      f"library {custom_ops.library_path()}")
PY

prefix_path="$(env -u CUSTOM_OPS_LIBRARY "$venv_python" -c 'import custom_ops, torch.utils; print(custom_ops.cmake_prefix_path + ";" + torch.utils.cmake_prefix_path)')"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cd - >/dev/null
if ! { cmake -S tests/cpp_package -B "$work/consumer" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_PREFIX_PATH="$prefix_path" -DPython3_EXECUTABLE="$venv_python" &&
       cmake --build "$work/consumer"; } >"$work/consumer.log" 2>&1; then
  cat "$work/consumer.log"; exit 1
fi
grep "CustomOps found in" "$work/consumer.log"
"$work/consumer/custom_ops_package_consumer"
echo "[pip] pip install ., import custom_ops and find_package(CustomOps) from the wheel: OK"
