# Sourced (from the repository root) by the other scripts: which Python and build folder to use, and
# where the installed plugin lives.
#   PYTHON     interpreter with torch (default: the project's virtualenv, created on first use)
#   BUILD_DIR  build folder, relative to the repository root (default: build)
export BUILD_DIR="${BUILD_DIR:-build}"
if [ -z "${PYTHON:-}" ]; then
  PYTHON="$(scripts/setup-env.sh)/bin/python"
fi
PYTHON="$(command -v "$PYTHON")"  # CMake wants an absolute path
export PYTHON
export CUSTOM_OPS_INSTALL_PREFIX="$PWD/$BUILD_DIR/install"
export CUSTOM_OPS_LIBRARY="$CUSTOM_OPS_INSTALL_PREFIX/lib/libcustom_ops.so"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"  # lets ccache hit across clones in different folders
