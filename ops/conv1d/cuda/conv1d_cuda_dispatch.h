#pragma once
// Kernel selection of the CUDA backend: the one table that says which kernel serves which shapes.
// Plain C++ (no CUDA needed), so that CPU-only builds and tests can ask which kernel a shape would get.

#include "ops/conv1d/conv1d_geometry.h"

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace custom_ops::conv1d::cuda {

enum class KernelChoice {
  kHopper,           // sm_90a: TMA + mbarrier pipeline, wgmma, warp-specialised, persistent (hopper/)
  kHopperRepacked,   // the same on a copy of the input whose rows TMA can read (a 16-byte aligned pitch)
  kTensorCoreLarge,  // mma.sync implicit GEMM, 128 channels x 128 positions per block (64 x 128 for 3xTF32)
  kTensorCoreMedium,  // mma.sync implicit GEMM, 64 channels x 128 positions per block
  kTensorCoreSmall,  // mma.sync implicit GEMM, 32 channels x 256 positions per block
  kTensorCoreWideWindow,  // mma.sync, 128 channels x 64 positions, 320-position window: strides, long halos
  kDepthwiseSliding,  // one input channel per group, stride 1, dilation 1, K <= 4: registers slide over the window
  kDepthwise,        // one input channel per group: staged window, memory-bound
  kDirectLarge,      // CUDA-core implicit GEMM (the general fallback), 128 x 128
  kDirectWide,       // CUDA-core, 32 x 128
  kDirectNarrow,     // CUDA-core, 1 x 512
};

// Tile constants the table needs (the kernels static_assert that they match their configurations).
struct TensorCoreLimits {
  static constexpr int kLargeTileL = 128, kLargeWindow = 192;
  static constexpr int kSmallTileL = 256, kSmallWindow = 320;
  static constexpr int kWideWindowTileL = 64, kWideWindow = 320;
};
struct DepthwiseLimits {
  static constexpr int kTileL = 2048;                   // positions per block tile
  static constexpr int kPerThread = 8;                  // positions per thread
  static constexpr int kSlidingMaxTaps = 4;             // K of the sliding-window kernel: 1 .. 4
  static constexpr int64_t kMaxWindowBytes = 48 * 1024;  // the staged window, without opting in to more
};

// Positions the depthwise kernel stages per tile (rounded to 16-byte vectors of the input dtype); it
// keeps them in its accumulation type (float32 for 16-bit inputs).
int64_t depthwise_window(const Geometry& g, int64_t element_size);
// The same for the sliding-window kernel: the tile, the last thread's halo read, whole vectors.
int64_t depthwise_sliding_window(int64_t element_size);

// What the table needs to know beyond the shape: whether the device runs the Hopper family (an sm_90
// GPU, a build with sm_90a code, the family not switched off) and whether TMA can read the input as laid
// out (hopper_input_layout_ok).
struct KernelTarget {
  bool hopper = false;
  bool input_tma_ok = false;
};

KernelChoice select_kernel(const Geometry& g, c10::ScalarType dtype, bool allow_tf32, const KernelTarget& target);

// The target for an input tensor (its strides and address; a meta tensor has no address and counts as
// aligned) on a device that does or does not run the Hopper family; the switch below applies.
KernelTarget kernel_target(const at::Tensor& input, bool device_runs_hopper);

// The switch that keeps the Hopper family out of the table (tests use it to run the other kernels on an
// H100; custom::conv1d_cuda_use_hopper sets it). On by default.
bool hopper_kernels_enabled();
bool set_hopper_kernels_enabled(bool enabled);  // returns the previous setting

// e.g. "hopper_tf32", "hopper_bf16_repacked", "tensorcore_large_bf16", "depthwise", "direct_wide".
std::string kernel_name(KernelChoice choice, c10::ScalarType dtype, bool allow_tf32);

}  // namespace custom_ops::conv1d::cuda
