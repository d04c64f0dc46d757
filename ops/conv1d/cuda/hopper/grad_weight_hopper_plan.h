#pragma once
// grad_weight on the Hopper (sm_90a) tensor cores: which shapes the kernel takes and how a call is laid
// out. Plain C++, so that the backward dispatch table and the kernel query can ask it in any build.
//
// dW[o, c, k] = sum over (n, l) of gy[n, o, l] * x[n, c, l * s + k * d - p]. GEMM view: M = input
// channels (64 a CTA), N = output channels (128 a CTA), the reduction K = output positions, one
// accumulator set per tap. How the two consumer warpgroups share a stage depends on the precision:
// - 16-bit: they take alternate stages, each the whole 64 x 128 tile (m64n128: the A fragments gathered
//   once a stage), and add up their sums at the end; 64 accumulators a tap, up to 3 taps a CTA (K = 3
//   in one tap group: with groups of 2 and 1, half the CTAs had half the work, and the grid ran two
//   waves whose second was held by the heavy CTAs; the gradient tile was read once a tap group).
// - TF32: both reduce every stage, 64 output channels each (m64n64); 32 accumulators a tap, up to 4 taps
//   a CTA. (Alternate stages measured slower in TF32 on the H200: headline 1.42 -> 1.72 ms, wide
//   channels 1.47 -> 1.70, where 16-bit gained: wide channels 752 -> 673 us, pointwise 143 -> 83, long
//   kernel 445 -> 343.)
// Both operands are K-major in
// (N, C, L): the gradient tile (B, from shared memory through a 128-byte swizzled descriptor) as TMA
// lands it (float32: rounded to TF32 in place first), the input window (A, from registers) read at each
// tap's shift, as the forward reads it.
// A CTA reduces one key (group, channel tile, output-channel tile, tap group) over a contiguous range
// of (batch row, 64-position block) tiles and writes its partial sums to a workspace; a second kernel
// adds the splits in a fixed order, so the result is bitwise reproducible.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/hopper/conv1d_hopper_plan.h"

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <optional>

namespace custom_ops::conv1d::cuda {

struct GradWeightHopperPlan {
  static constexpr int kChannels = 64;     // input channels a CTA (wgmma M)
  static constexpr int kOutChannels = 128;  // output channels a CTA
  static constexpr int kPositions = 64;    // output positions a pipeline stage reduces
  static constexpr int kMaxStages = 8;     // pipeline stages (the kernel's barriers: full, empty and passed each)
  // The consumers take alternate stages (16-bit) or share every stage (TF32); see above.
  static constexpr bool consumers_alternate(HopperPrecision precision) { return precision != HopperPrecision::kTF32; }
  // Accumulator sets a consumer holds: 128 floats a thread in TF32, 192 in 16-bit (the kernel's register
  // split gives 16-bit consumers 232 registers a thread).
  static constexpr int max_taps(HopperPrecision precision) { return consumers_alternate(precision) ? 3 : 4; }
  HopperPrecision precision;
  int taps_per_group;  // taps a CTA reduces (<= max_taps(precision))
  int tap_groups, c_tiles, o_tiles;
  int64_t keys;       // groups x c_tiles x o_tiles x tap_groups
  int window_pitch;   // input positions a stage holds per channel (the TMA box)
  int stages;
  int64_t l_blocks;   // 64-position blocks per row of grad_output
  int64_t tiles;      // batch x l_blocks
  int64_t gradient_stage_bytes, input_stage_bytes, stage_bytes, shared_bytes;
  // Alternate stages: the room at the stages' place that carries one consumer's sums to the other at the
  // end (taps_per_group x 64 x 128 floats); 0 otherwise.
  int64_t exchange_bytes;
};

// The plan, or nothing where the kernel does not take the shape: float32 with TF32 allowed, float16,
// bfloat16; at least 2 input channels a group; a window of 64 positions and one tap within a TMA box;
// 32-bit TMA coordinates.
std::optional<GradWeightHopperPlan> plan_grad_weight_hopper(const Geometry& g, c10::ScalarType dtype,
                                                            bool allow_tf32);

// How many CTAs share one key's tiles: about one wave of `sms` CTAs over all keys, at most 512 tiles
// (32768 positions) a CTA, so that the tensor cores' float32 sums (truncating, one rounding per wgmma)
// stay short, and at least one tile a CTA.
int64_t grad_weight_hopper_splits(const GradWeightHopperPlan& plan, int64_t sms);

}  // namespace custom_ops::conv1d::cuda
