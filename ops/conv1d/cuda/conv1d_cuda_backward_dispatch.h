#pragma once
// Kernel selection of the CUDA backward: the one table that says which kernel computes each gradient
// of custom::conv1d_backward for which shapes (the forward's is conv1d_cuda_dispatch.h). Plain C++ (no
// CUDA needed), so that CPU-only builds and tests can ask which kernels a shape would get
// (custom::conv1d_cuda_backward_kernels).

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/conv1d_cuda_dispatch.h"

#include <c10/core/ScalarType.h>

#include <optional>
#include <string>
#include <vector>

namespace custom_ops::conv1d::cuda {

enum class GradInputChoice {
  kNone,        // grad_input has no elements
  kOneChannel,  // one input channel per group, several output channels: all phases in one pass
  kPhases,      // the transposed convolution as one forward convolution per stride phase
};

enum class GradWeightChoice {
  kZero,             // an empty batch or an empty weight: no terms, grad_weight is zero
  kOneChannel,       // one input channel per group: a reduction per (output channel, tap)
  kHopper,           // sm_90a: TMA + mbarrier ring, wgmma, 64 input x 128 output channels x 4 (TF32) or 3 taps a CTA
  kTensorCoreSmall,  // mma.sync, 32 output x 32 input channels x 8 taps a block (groups of <= 32 channels)
  kTensorCoreLarge,  // mma.sync, 64 output x 64 input channels x 4 taps a block
  kCudaCores,        // CUDA-core split reduction (float64, strict float32, staged windows too long)
};

// The constants the table needs (the kernels static_assert that they match).
struct GradInputOneChannelLimits {
  static constexpr int kThreads = 256, kItems = 4, kOutsPerStage = 16;
  static constexpr int kMaxStride = 32;  // at least 8 q per block
  static constexpr int64_t kMaxSharedBytes = 48 * 1024;
};
struct GradWeightTileLimits {
  int tile_o, tile_c, taps;
  static constexpr int kChunk = 64;       // positions a stage holds
  static constexpr int kMaxWindow = 192;  // staged input positions per row
};
constexpr GradWeightTileLimits kGradWeightTileLarge{64, 64, 4}, kGradWeightTileSmall{32, 32, 8};

// How the one-channel grad_input kernel lays a shape out, or nothing where it does not serve it.
struct GradInputOneChannelLayout {
  int64_t q_tiles;        // tiles of positions per row
  int64_t window;         // grad_output positions a tile stages
  int64_t window_offset;  // where the window starts, relative to the tile's first q
  int64_t shared_bytes;
  int64_t blocks;
};
std::optional<GradInputOneChannelLayout> grad_input_one_channel_layout(const Geometry& g, c10::ScalarType dtype);

// Phase rho of the transposed convolution (grad_input positions rho, rho + s, ...): the forward
// convolution of grad_output[..., source_offset:] with taps k0, k0 + s / gcd(s, d), ... of the flipped,
// transposed weights that fills it, or `zero` where no tap reaches it.
struct GradInputPhase {
  bool empty = false;  // no grad_input position in this phase (L < s)
  bool zero = false;   // no tap reaches it: its slice of grad_input is zero
  int64_t k0 = 0, taps = 0, tap_step = 1;
  int64_t source_offset = 0;  // grad_output positions the phase's convolution skips at the start
  Geometry geometry{};        // of that convolution (input: grad_output's channels, output: the input's)
};
GradInputPhase grad_input_phase(const Geometry& g, int64_t rho);

// One input channel per group and many output channels per group (single-channel front ends, channel
// multipliers) in a tensor-core precision (16-bit, or float32 with TF32 allowed) on a device that runs
// the Hopper family: the backward runs as that of the pointwise convolution of the input unfolded by
// taps (conv1d_unfold.h: columns[n, c * K + k, j] = x[n, c, j * s + k * d - pad_left]) by the weights
// viewed as (O, K, 1), whose gradients the table's kernels compute for `unfolded_geometry` (K channels
// a group: it does not unfold again); grad_input is then the fold of that convolution's grad_input.
// grad_output, the largest tensor here, is read by those kernels near the memory floor instead of by
// the one-channel kernels, which are latency-bound (bench/NOTES.md: 0.49x cuDNN on the strided front
// end in float32). Where the unfolded input would outgrow grad_output (K > O_g) or a tap table (K >
// kUnfoldedMaxTaps), the one-channel kernels stay. In 16-bit, grad_input is rounded twice (the pointwise
// convolution's output, then the fold's sum of about K / s of its elements), well within the dtype's
// tolerance; float32 follows aten's TF32 flag like every tensor-core kernel of the table.
constexpr int64_t kUnfoldedMinOutChannels = 32, kUnfoldedMaxTaps = 64;
bool backward_unfolds(const Geometry& g, c10::ScalarType dtype, bool allow_tf32, bool hopper);
// The pointwise convolution columns (N, C * K, L_out) -> grad_output's shape, `groups` groups.
Geometry unfolded_geometry(const Geometry& g);

GradInputChoice select_grad_input(const Geometry& g, c10::ScalarType dtype);
// `hopper`: the device runs the Hopper family and it is switched on (see KernelTarget).
GradWeightChoice select_grad_weight(const Geometry& g, c10::ScalarType dtype, bool allow_tf32, bool hopper);

// Whether the backward copies grad_output into 16-byte aligned rows once, before any kernel runs: where
// the Hopper grad_weight reads it by TMA and its rows (L_out long) are not aligned. The grad_input
// phases then read that copy.
bool grad_output_repacked(const Geometry& g, c10::ScalarType dtype, GradWeightChoice weight_choice);

// Names, e.g. "grad_input_one_channel", "transposed(hopper_bf16)" (the forward kernel of each phase),
// "grad_weight_hopper_bf16", "grad_weight_tensorcore_large_tf32", "grad_weight_cuda_cores". `device_runs_hopper` says what the forward
// table may use for the phases: their input is grad_output, contiguous, its start taken as 16-byte
// aligned (a grad_output that is an offset view, as the backward of a split can give, runs the Hopper
// family on a repacked copy where the name says it reads grad_output in place), or its repacked copy
// where `grad_output_repacked` (then rows a whole number of 16-byte vectors apart). The names assume
// every gradient is asked for: with grad_weight not asked for, grad_output is not repacked up front.
std::string grad_input_name(GradInputChoice choice, const Geometry& g, c10::ScalarType dtype, bool allow_tf32,
                            bool device_runs_hopper, bool grad_output_repacked);
std::string grad_weight_name(GradWeightChoice choice, c10::ScalarType dtype, bool allow_tf32);
// What computes grad_bias (when grad_weight is asked for too): the Hopper grad_weight's pass over
// grad_output, or a sum.
std::string grad_bias_name(GradWeightChoice weight_choice);

// [grad_input, grad_weight, grad_bias] names of the kernels the backward runs (`hopper`: the device
// runs the Hopper family, switched on or not), as custom::conv1d_cuda_backward_kernels reports them;
// those of the unfolded backward as "unfolded(<the pointwise convolution's kernel>)" for the two
// gradients that pass through the unfolding, e.g. "unfolded(transposed(hopper_tf32))",
// "unfolded(grad_weight_hopper_tf32)".
std::vector<std::string> backward_kernel_names(const Geometry& g, c10::ScalarType dtype, bool allow_tf32,
                                               bool hopper);

}  // namespace custom_ops::conv1d::cuda
