// The dispatch table of the CUDA backend (see conv1d_cuda_dispatch.h).

#include "ops/conv1d/cuda/conv1d_cuda_dispatch.h"

#include "ops/conv1d/cuda/hopper/conv1d_hopper_plan.h"

#include <algorithm>
#include <atomic>

namespace custom_ops::conv1d::cuda {

int64_t depthwise_window(const Geometry& g, int64_t element_size) {
  // Strides and dilated kernels far past any window that fits (valid up to 2^62) saturate instead of
  // overflowing the span's arithmetic, so that the table sends them to the 64-bit direct kernels.
  constexpr int64_t kFar = int64_t{1} << 40;
  if (g.stride > kFar / DepthwiseLimits::kTileL || (g.kernel_size - 1) * g.dilation > kFar) return kFar;
  const int64_t vec = 16 / element_size;
  const int64_t span = (DepthwiseLimits::kTileL - 1) * g.stride + (g.kernel_size - 1) * g.dilation + 1;
  return (vec - 1 + span + vec - 1) / vec * vec;  // room for the alignment shift, whole vectors
}

int64_t depthwise_sliding_window(int64_t element_size) {
  const int64_t vec = 16 / element_size;
  // The last thread reads kPerThread + (K - 1) <= 16 positions from (kTileL - kPerThread).
  const int64_t span = DepthwiseLimits::kTileL - DepthwiseLimits::kPerThread + 16;
  return (span + vec - 1) / vec * vec;
}

namespace {

std::atomic<bool> hopper_enabled{true};

// The staged window of a tensor-core tile (tile, halo, and up to one 16-byte vector of alignment
// shift) must fit the configuration's window. The tensor-core kernels keep the stride, the window and
// the left padding in 32-bit registers: a padding of 2^30 or more (valid, if absurd) goes to the 64-bit
// direct kernels too. A stride or dilated kernel beyond the window fails before any product that could
// overflow.
bool fits_window(const Geometry& g, int64_t tile_l, int64_t window, int64_t element_size) {
  if (g.stride > window || (g.kernel_size - 1) * g.dilation > window || g.pad_left >= (int64_t{1} << 30)) {
    return false;
  }
  const int64_t vec = 16 / element_size;
  return (vec - 1) + (tile_l - 1) * g.stride + (g.kernel_size - 1) * g.dilation + 1 <= window;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Dispatch table: which kernel serves which shapes.
//   no input channels (every output the bias)                                      -> direct_*
//   one input channel per group (depthwise, channel multipliers), and
//       stride 1, dilation 1, K <= 4 (causal-conv1d's shapes)                      -> depthwise_sliding
//       otherwise, window <= 48 KB                                                 -> depthwise
//   on an sm_90 GPU with sm_90a code: float32/float16/bfloat16, at least 2 input channels per group,
//   a window that fits a TMA box (plan_hopper: stride <= 3, halo within 232 positions), and
//       the input TMA-readable (rows contiguous, 16-byte aligned)                  -> hopper
//       otherwise (rows of odd length, offset views, any strides: TMA reads only 16-byte aligned
//       row pitches; grad_output of the usual L_out = L - K + 1 in the backward)   -> hopper_repacked
//     (the copy costs one pass over the input; the mma.sync kernels below run the headline's shapes
//      at 1/2-1/3 of the Hopper kernel's speed, so the copy pays wherever the family applies)
//   float32/float16/bfloat16, the tile's input window ((tile - 1) * stride + (K - 1) * dilation + 1,
//   plus alignment) within the configuration's window, and
//       stride 1, out channels per group > 64, window <= 192                        -> tensorcore_large
//       stride 1, out channels per group 33..64, window <= 192                     -> tensorcore_medium
//       stride 1, window <= 320                                                    -> tensorcore_small
//       out channels per group > 32, window <= 320 (strides, long halos)           -> tensorcore_wide_window
//     (float32: TF32 when aten's convolution TF32 flag allows it, else 3xTF32, full float32 accuracy)
//   everything else (float64, long strides or halos, strided with few out channels, a left padding of
//   2^30 or more, which the 32-bit offsets of the kernels above cannot hold):
//       out channels per group >= 64 (not float64)                                 -> direct_large
//       out channels per group >= 8                                                -> direct_wide
//       otherwise                                                                  -> direct_narrow
// ---------------------------------------------------------------------------------------------------
KernelChoice select_kernel(const Geometry& g, c10::ScalarType dtype, bool allow_tf32, const KernelTarget& target) {
  const int64_t element_size = c10::elementSize(dtype);
  const int64_t C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();
  const int64_t accumulator_size = std::max<int64_t>(element_size, 4);
  auto direct = [&] {
    if (O_g >= 64 && dtype != at::kDouble) return KernelChoice::kDirectLarge;
    return O_g >= 8 ? KernelChoice::kDirectWide : KernelChoice::kDirectNarrow;
  };
  // No input channels: every output is the bias (a sum over nothing), which the direct kernels write
  // without reading anything; the others would launch empty grids.
  if (C_g == 0) return direct();
  if (C_g == 1 && g.stride == 1 && g.dilation == 1 && g.kernel_size <= DepthwiseLimits::kSlidingMaxTaps) {
    return KernelChoice::kDepthwiseSliding;
  }
  if (C_g == 1 && depthwise_window(g, element_size) * accumulator_size <= DepthwiseLimits::kMaxWindowBytes) {
    return KernelChoice::kDepthwise;
  }
  if (target.hopper && plan_hopper(g, dtype, allow_tf32)) {
    return target.input_tma_ok ? KernelChoice::kHopper : KernelChoice::kHopperRepacked;
  }
  const bool tensor_core_dtype = dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16;
  if (tensor_core_dtype) {
    const bool unit_stride = g.stride == 1;
    if (unit_stride && O_g > 32 &&
        fits_window(g, TensorCoreLimits::kLargeTileL, TensorCoreLimits::kLargeWindow, element_size)) {
      return O_g > 64 ? KernelChoice::kTensorCoreLarge : KernelChoice::kTensorCoreMedium;
    }
    if (unit_stride && fits_window(g, TensorCoreLimits::kSmallTileL, TensorCoreLimits::kSmallWindow, element_size)) {
      return KernelChoice::kTensorCoreSmall;
    }
    if (O_g > 32 && fits_window(g, TensorCoreLimits::kWideWindowTileL, TensorCoreLimits::kWideWindow, element_size)) {
      return KernelChoice::kTensorCoreWideWindow;
    }
  }
  return direct();
}

std::string kernel_name(KernelChoice choice, c10::ScalarType dtype, bool allow_tf32) {
  auto precision = [&]() -> std::string {
    switch (dtype) {
      case at::kFloat: return allow_tf32 ? "_tf32" : "_3xtf32";
      case at::kHalf: return "_fp16";
      case at::kBFloat16: return "_bf16";
      default: return "";
    }
  };
  switch (choice) {
    case KernelChoice::kHopper: return "hopper" + precision();
    case KernelChoice::kHopperRepacked: return "hopper" + precision() + "_repacked";
    case KernelChoice::kTensorCoreLarge: return "tensorcore_large" + precision();
    case KernelChoice::kTensorCoreMedium: return "tensorcore_medium" + precision();
    case KernelChoice::kTensorCoreSmall: return "tensorcore_small" + precision();
    case KernelChoice::kTensorCoreWideWindow: return "tensorcore_wide_window" + precision();
    case KernelChoice::kDepthwiseSliding: return "depthwise_sliding";
    case KernelChoice::kDepthwise: return "depthwise";
    case KernelChoice::kDirectLarge: return "direct_large";
    case KernelChoice::kDirectWide: return "direct_wide";
    case KernelChoice::kDirectNarrow: return "direct_narrow";
  }
  return "unknown";
}

KernelTarget kernel_target(const at::Tensor& input, bool device_runs_hopper) {
  KernelTarget target;
  target.hopper = device_runs_hopper && hopper_kernels_enabled();
  const at::Tensor x = input.dim() == 2 ? input.unsqueeze(0) : input;  // unbatched (C, L)
  const uintptr_t address = x.is_meta() ? 0 : reinterpret_cast<uintptr_t>(x.const_data_ptr());
  target.input_tma_ok = x.dim() == 3 && hopper_input_layout_ok(x.element_size(), x.size(0), x.size(1), x.size(2),
                                                              x.stride(0), x.stride(1), x.stride(2), address);
  return target;
}

bool hopper_kernels_enabled() { return hopper_enabled.load(); }
bool set_hopper_kernels_enabled(bool enabled) { return hopper_enabled.exchange(enabled); }

}  // namespace custom_ops::conv1d::cuda
