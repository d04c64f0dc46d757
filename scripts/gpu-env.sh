# Sourced by the GPU-machine scripts (gpu-check.sh, gpu-profile.sh): build folder, compiler, CUDA
# architecture and GoogleTest location for a build against the machine's own torch.
OUT="${OUT:-build-gpu/logs}"
mkdir -p "$OUT"
export BUILD_DIR=build-gpu PYTHON="${PYTHON:-python3}" BUILD_JOBS="${BUILD_JOBS:-$(nproc)}"
export PYTHONUNBUFFERED=1
# Architectures: the project's default (8.0+PTX;9.0a, cmake/CustomOpsCuda.cmake) unless TORCH_CUDA_ARCH_LIST
# is set (e.g. TORCH_CUDA_ARCH_LIST=9.0a for a faster Hopper-only build while iterating).
# Compiler: whatever CMake picks, as for a user who runs plain cmake. The image's default g++ (/opt/gcc)
# has no shared libstdc++ and adds -Bsymbolic; cmake/CustomOpsCxxRuntime.cmake neutralises both, and
# gpu-check.sh checks the plugin it built (it used to switch to /usr/bin/g++ here).
export CMAKE_ARGS="-DCUSTOM_OPS_GTEST_SOURCE_DIR=$PWD/.deps/googletest -DCUSTOM_OPS_WITH_CUDA=ON"
