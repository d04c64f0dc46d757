// Planning of the Hopper grad_weight kernel (see grad_weight_hopper_plan.h).

#include "ops/conv1d/cuda/hopper/grad_weight_hopper_plan.h"

#include <algorithm>

namespace custom_ops::conv1d::cuda {

namespace {

constexpr int64_t kBarrierBytes = 1024;
constexpr int kMaxBoxPositions = 256;                   // a TMA box dimension
constexpr int64_t kCoordinateLimit = int64_t{1} << 30;  // TMA coordinates are signed 32-bit
constexpr int64_t kMaxTilesPerSplit = 512;
constexpr int64_t kMaxSms = 1024;  // a bound on any GPU's SM count, for the grid-size check

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The A fragments of a warp read 8 channel rows x 4 position pairs (float32: x 4 positions): a pitch of
// 4 (mod 32) words puts them in 32 banks.
int window_pitch_for(int64_t span, int64_t element_size) {
  const int64_t modulus = 128 / element_size, residue = 16 / element_size;  // words: 32 and 4
  return static_cast<int>(span + ((residue - span % modulus) % modulus + modulus) % modulus);
}

}  // namespace

std::optional<GradWeightHopperPlan> plan_grad_weight_hopper(const Geometry& g, c10::ScalarType dtype,
                                                            bool allow_tf32) {
  GradWeightHopperPlan plan{};
  switch (dtype) {
    case at::kFloat:
      if (!allow_tf32) return std::nullopt;
      plan.precision = HopperPrecision::kTF32;
      break;
    case at::kHalf: plan.precision = HopperPrecision::kFP16; break;
    case at::kBFloat16: plan.precision = HopperPrecision::kBF16; break;
    default: return std::nullopt;
  }
  const int64_t element_size = c10::elementSize(dtype), vector = 16 / element_size;
  const int64_t C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();
  // An empty input (padding only) has no tensor map: a tensor map has no empty dimension.
  if (C_g < 2 || g.batch == 0 || g.out_length == 0 || g.in_length == 0) return std::nullopt;
  if (g.in_length + g.pad_left + g.pad_right >= kCoordinateLimit || g.out_length >= kCoordinateLimit ||
      g.batch >= kCoordinateLimit || g.groups >= kCoordinateLimit || C_g >= kCoordinateLimit ||
      O_g >= kCoordinateLimit) {
    return std::nullopt;
  }
  // As many taps a CTA as the window holds: 64 positions, the taps' reach, up to a vector of alignment.
  const int64_t reach = (GradWeightHopperPlan::kPositions - 1) * g.stride + 1 + (vector - 1);
  int64_t taps = std::min<int64_t>(g.kernel_size, GradWeightHopperPlan::max_taps(plan.precision));
  while (taps > 1 && window_pitch_for(reach + (taps - 1) * g.dilation, element_size) > kMaxBoxPositions) --taps;
  // The fewest tap groups, each with at most ceil(K / groups) taps, the last with the rest (K = 4 with 3 a
  // CTA: 2 + 2, not 3 + 1; K = 31: 10 x 3 + 1): a CTA's time grows with its taps, and the grid waits for
  // its heaviest CTAs.
  plan.tap_groups = static_cast<int>(ceil_div(g.kernel_size, taps));
  taps = ceil_div(g.kernel_size, plan.tap_groups);
  plan.window_pitch = window_pitch_for(reach + (taps - 1) * g.dilation, element_size);
  if (plan.window_pitch > kMaxBoxPositions) return std::nullopt;
  plan.taps_per_group = static_cast<int>(taps);
  plan.c_tiles = static_cast<int>(ceil_div(C_g, GradWeightHopperPlan::kChannels));
  plan.o_tiles = static_cast<int>(ceil_div(O_g, GradWeightHopperPlan::kOutChannels));
  plan.keys = g.groups * plan.c_tiles * plan.o_tiles * plan.tap_groups;
  plan.l_blocks = ceil_div(g.out_length, GradWeightHopperPlan::kPositions);
  plan.tiles = g.batch * plan.l_blocks;
  // The grid (keys x splits, splits <= an SM count + tiles / kMaxTilesPerSplit) fits its 31 bits.
  if (plan.keys * (ceil_div(plan.tiles, kMaxTilesPerSplit) + kMaxSms) >= (int64_t{1} << 31)) return std::nullopt;
  // A stage: the gradient tile first (128-byte swizzled rows want 1024-byte alignment), then the window.
  plan.gradient_stage_bytes = int64_t(GradWeightHopperPlan::kOutChannels) * GradWeightHopperPlan::kPositions * element_size;
  plan.input_stage_bytes = int64_t(GradWeightHopperPlan::kChannels) * plan.window_pitch * element_size;
  plan.stage_bytes = ceil_div(plan.gradient_stage_bytes + plan.input_stage_bytes, 1024) * 1024;
  int64_t stages = std::min<int64_t>(GradWeightHopperPlan::kMaxStages,
                                     (kHopperSharedBytes - 2 * kBarrierBytes) / plan.stage_bytes);
  const bool alternate = GradWeightHopperPlan::consumers_alternate(plan.precision);
  if (alternate) stages -= stages % 2;  // even: each consumer always takes the same stages
  if (stages < 2) return std::nullopt;
  plan.stages = static_cast<int>(stages);
  // The barriers' kilobyte, then up to a kilobyte to align the first stage; with alternate stages, at the
  // end the stages' room carries one consumer's sums to the other (taps x 64 x 128 floats).
  plan.exchange_bytes =
      alternate ? taps * int64_t(GradWeightHopperPlan::kChannels) * GradWeightHopperPlan::kOutChannels * int64_t(sizeof(float))
                : 0;
  plan.shared_bytes = 2 * kBarrierBytes + std::max(plan.stages * plan.stage_bytes, plan.exchange_bytes);
  if (plan.shared_bytes > kHopperSharedBytes) return std::nullopt;
  return plan;
}

int64_t grad_weight_hopper_splits(const GradWeightHopperPlan& plan, int64_t sms) {
  const int64_t wave = std::max<int64_t>(1, sms / std::max<int64_t>(1, std::min(plan.keys, sms)));
  const int64_t splits = std::max(wave, ceil_div(plan.tiles, kMaxTilesPerSplit));
  return std::min(splits, plan.tiles);
}

}  // namespace custom_ops::conv1d::cuda
