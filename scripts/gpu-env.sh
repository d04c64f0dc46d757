# Sourced by the GPU-machine scripts (gpu-check.sh, gpu-profile.sh): build folder, compiler, CUDA
# architecture and GoogleTest location for a build against the machine's own torch.
OUT="${OUT:-build-gpu/logs}"
mkdir -p "$OUT"
export BUILD_DIR=build-gpu PYTHON="${PYTHON:-python3}" BUILD_JOBS="${BUILD_JOBS:-$(nproc)}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0a}" PYTHONUNBUFFERED=1
# The image's default CXX (/opt/gcc) links parts of libstdc++ into the plugin, whose own copy of
# iostream then crashes inside a Python process that already loaded the system libstdc++ (seen as a
# segfault in ostream::_M_insert while formatting an error message). Build with the system compiler.
if [ -x /usr/bin/g++ ]; then export CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++; fi
export CMAKE_ARGS="-DCUSTOM_OPS_GTEST_SOURCE_DIR=$PWD/.deps/googletest -DCUSTOM_OPS_WITH_CUDA=ON"
