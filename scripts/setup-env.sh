#!/usr/bin/env bash
# Creates (once) and prints the path of the project's Python virtualenv: torch (pinned), pytest.
# It lives outside the clone, keyed by the Python and torch versions, so fresh clones reuse it.
#   CUSTOM_OPS_VENV  use this virtualenv folder instead
#   TORCH_VERSION    torch to pin (default 2.11.0, the GPU machine's version)
set -euo pipefail
TORCH_VERSION="${TORCH_VERSION:-2.11.0}"
PY="${PYTHON_FOR_VENV:-python3}"
pyver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
VENV="${CUSTOM_OPS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/custom_ops/venv-py${pyver}-torch${TORCH_VERSION}}"
stamp="$VENV/.custom_ops_ready"
if [ ! -f "$stamp" ]; then
  echo "[setup] creating virtualenv $VENV (torch==$TORCH_VERSION); the first run downloads torch" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION" pytest numpy >&2
  touch "$stamp"
fi
# Build tools the project uses when they can be had: ninja and ccache (best effort, never fatal).
if { ! command -v ccache >/dev/null || ! command -v ninja >/dev/null; } && [ "$(id -u)" = 0 ] \
   && command -v apt-get >/dev/null; then
  (apt-get install -y -qq ccache ninja-build >/dev/null 2>&1 ||
   { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq ccache ninja-build >/dev/null 2>&1; }) || true
fi
echo "$VENV"
