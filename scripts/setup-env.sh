#!/usr/bin/env bash
# Creates (once) and prints the path of the project's Python virtualenv: torch (pinned), pytest, numpy and
# scikit-build-core (the build backend of `pip install .`). It lives outside the clone, keyed by the Python
# and torch versions, so fresh clones reuse it. The first run downloads torch with its CUDA libraries:
# about 4.7 GB, some 7 minutes.
# As root on a Debian/Ubuntu machine it also installs the build tools ccache and ninja-build with apt-get
# where they are missing (faster rebuilds; optional, never fatal); CUSTOM_OPS_NO_APT=1 skips that.
#   CUSTOM_OPS_VENV  use this virtualenv folder instead
#   TORCH_VERSION    torch to pin (default 2.11.0, the GPU machine's version)
set -euo pipefail
TORCH_VERSION="${TORCH_VERSION:-2.11.0}"
PY="${PYTHON_FOR_VENV:-python3}"
pyver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
VENV="${CUSTOM_OPS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/custom_ops/venv-py${pyver}-torch${TORCH_VERSION}}"
stamp="$VENV/.custom_ops_ready"
if [ ! -f "$stamp" ]; then
  echo "[setup] creating virtualenv $VENV: downloading torch==$TORCH_VERSION with its CUDA libraries" \
       "(about 4.7 GB, some 7 minutes), pytest, numpy, scikit-build-core" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION" pytest numpy "scikit-build-core>=0.10" >&2
  touch "$stamp"
fi
# Virtualenvs made before `pip install .` existed lack its build backend (a small download).
if ! "$VENV/bin/python" -c "import scikit_build_core" 2>/dev/null; then
  echo "[setup] adding scikit-build-core (the build backend of pip install .) to $VENV" >&2
  "$VENV/bin/python" -m pip install -q "scikit-build-core>=0.10" >&2
fi
# Build tools the project uses when they can be had: ninja and ccache (best effort, never fatal).
if { ! command -v ccache >/dev/null || ! command -v ninja >/dev/null; } && [ "$(id -u)" = 0 ] \
   && [ "${CUSTOM_OPS_NO_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  echo "[setup] installing the Debian packages ccache and ninja-build with apt-get (as root; optional:" \
       "CUSTOM_OPS_NO_APT=1 skips this)" >&2
  (apt-get install -y -qq ccache ninja-build >/dev/null 2>&1 ||
   { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq ccache ninja-build >/dev/null 2>&1; }) ||
   echo "[setup] apt-get could not install them; building without" >&2
fi
echo "$VENV"
