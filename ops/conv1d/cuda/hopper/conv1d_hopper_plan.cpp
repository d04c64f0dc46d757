// Planning of the Hopper tensor-core family (see conv1d_hopper_plan.h).

#include "ops/conv1d/cuda/hopper/conv1d_hopper_plan.h"

#include <algorithm>
#include <vector>

namespace custom_ops::conv1d::cuda {

namespace {

constexpr int kMaxWindowPitch = 232;        // TMA boxes hold at most 256 positions; 232 = 8 (mod 32)
constexpr int kMaxStages = 8;
constexpr int kMinResidentStages = 3;       // resident weights only where the pipeline stays this deep
constexpr int64_t kBarrierBytes = 1024;     // the mbarriers, ahead of the buffers
constexpr int64_t kStreamedWeightStageBytes = 32 * 1024;
constexpr int64_t kCoordinateLimit = int64_t{1} << 30;  // TMA coordinates are signed 32-bit

// Smallest pitch >= span that is 8 (mod 32) elements: the A-fragment loads of a warp (4 channel rows x
// 8 positions) then hit 32 different banks, for 4-byte and for 2-byte elements alike.
int bank_friendly_pitch(int64_t span) { return static_cast<int>(span + ((8 - span % 32) + 32) % 32); }

}  // namespace

HopperTileCounts hopper_tile_counts(const Geometry& g, const HopperPlan& plan) {
  HopperTileCounts c;
  c.o_tiles = (g.out_channels_per_group() + plan.tile_n - 1) / plan.tile_n;
  c.subtiles_per_row = (g.out_length + plan.positions_per_consumer() - 1) / plan.positions_per_consumer();
  c.subtiles = g.batch * c.subtiles_per_row;
  c.tiles_per_key = plan.row_tiling.row_tiles > 0 ? g.batch * plan.row_tiling.row_tiles : (c.subtiles + 1) / 2;
  c.total_tiles = g.groups * c.o_tiles * c.tiles_per_key;
  return c;
}

bool hopper_input_layout_ok(int64_t element_size, int64_t batch, int64_t channels, int64_t length,
                            int64_t stride_n, int64_t stride_c, int64_t stride_l, uintptr_t address) {
  const auto aligned = [](int64_t bytes) { return bytes % 16 == 0; };
  const bool rows_ok = stride_l == 1 && stride_c >= length && aligned(stride_c * element_size);
  const bool batch_ok = batch <= 1 || (stride_n >= channels * stride_c && aligned(stride_n * element_size));
  return rows_ok && batch_ok && address % 16 == 0;
}

std::optional<HopperPlan> plan_hopper(const Geometry& g, c10::ScalarType dtype, bool allow_tf32,
                                      int64_t max_shared_bytes) {
  HopperPlan plan{};
  switch (dtype) {
    case at::kFloat: plan.precision = allow_tf32 ? HopperPrecision::kTF32 : HopperPrecision::k3xTF32; break;
    case at::kHalf: plan.precision = HopperPrecision::kFP16; break;
    case at::kBFloat16: plan.precision = HopperPrecision::kBF16; break;
    default: return std::nullopt;
  }
  const int64_t element_size = c10::elementSize(dtype);
  const int64_t C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();
  if (C_g < 2) return std::nullopt;  // one channel per group: the depthwise kernels
  if (g.in_length == 0) return std::nullopt;  // padding only: a tensor map has no empty dimension
  // Every TMA coordinate (positions with padding and halo, channels, groups, batch) fits 32 bits.
  if (g.in_length + g.pad_left + g.pad_right >= kCoordinateLimit || g.out_length >= kCoordinateLimit / g.stride ||
      g.batch >= kCoordinateLimit || g.groups >= kCoordinateLimit || C_g >= kCoordinateLimit ||
      g.out_channels >= kCoordinateLimit) {
    return std::nullopt;
  }
  const bool split = plan.precision == HopperPrecision::k3xTF32;
  plan.weight_parts = split ? 2 : 1;
  plan.tile_n = O_g > 64 ? 128 : (O_g > 32 ? 64 : 32);
  if (split) plan.tile_n = std::min(plan.tile_n, 64);  // two weight parts and two accumulators
  plan.chunk_channels = static_cast<int>(64 / element_size);
  plan.chunks = static_cast<int>((C_g + plan.chunk_channels - 1) / plan.chunk_channels);
  const int64_t vector = 16 / element_size;
  const int64_t tap_bytes = plan.weight_parts * plan.tile_n * 64;  // one tap's weights of one stage

  // Lays the plan out for `m_tiles` position tiles per consumer, `taps` taps a stage, `slots` staging
  // slots and resident or streamed weights; false where it does not fit.
  auto lay_out = [&](int m_tiles, int64_t taps, int slots, bool resident) {
    plan.m_tiles = m_tiles;
    // TMA boxes start on a 16-byte boundary along the row: a window starts up to one vector early.
    const int64_t span = (plan.positions_per_consumer() - 1) * g.stride + (taps - 1) * g.dilation + 1 + (vector - 1);
    if (span > kMaxWindowPitch) return false;
    plan.taps_per_stage = static_cast<int>(taps);
    plan.tap_groups = static_cast<int>((g.kernel_size + taps - 1) / taps);
    plan.window_pitch = bank_friendly_pitch(span);
    plan.input_stage_bytes = 2 * plan.chunk_channels * plan.window_pitch * element_size;
    plan.weight_stage_bytes = taps * tap_bytes;
    plan.staging_slots = slots;
    plan.resident_weights = resident;
    const EpilogueRound round = epilogue_round(static_cast<int>(element_size), m_tiles, plan.tile_n);
    const int64_t fixed = kBarrierBytes + int64_t(slots) * round.channels * round.row_bytes;
    const int64_t resident_bytes = resident ? int64_t(plan.chunks) * plan.tap_groups * plan.weight_stage_bytes : 0;
    const int64_t stage_bytes = plan.input_stage_bytes + (resident ? 0 : plan.weight_stage_bytes);
    const int64_t stages = std::min<int64_t>(kMaxStages, (max_shared_bytes - fixed - resident_bytes) / stage_bytes);
    if (stages < (resident ? kMinResidentStages : 2)) return false;
    plan.stages = static_cast<int>(stages);
    plan.shared_bytes = fixed + resident_bytes + plan.stages * stage_bytes;
    return true;
  };
  auto taps_in_window = [&](int m_tiles) {  // as many taps a stage as the longest TMA box holds
    const int64_t span1 = (64 * m_tiles - 1) * g.stride + 1 + (vector - 1);
    return std::max<int64_t>(1, std::min<int64_t>(g.kernel_size, (kMaxWindowPitch - span1) / g.dilation + 1));
  };
  auto rounds = [&](int m_tiles) {
    return plan.tile_n / epilogue_round(static_cast<int>(element_size), m_tiles, plan.tile_n).channels;
  };
  // Two 64-position tiles per consumer where rows are long enough and the 3xTF32 registers allow it;
  // one where two do not fit.
  const int m_wide = (!split && g.out_length > 64) ? 2 : 1;
  const std::vector<int> sub_tiles = m_wide == 2 ? std::vector<int>{2, 1} : std::vector<int>{1};
  auto finished = [&]() -> std::optional<HopperPlan> {
    if (!split) plan.row_tiling = row_tiling(g.out_length, element_size, 2 * plan.positions_per_consumer());
    const HopperTileCounts counts = hopper_tile_counts(g, plan);
    if (counts.subtiles >= kFastDivisionLimit || counts.total_tiles >= kMaxHopperTiles) return std::nullopt;
    return plan;
  };
  // Preferred: resident weights (loaded once per (group, channel tile)), the longer sub-tile (longer
  // rows to copy), and as many staging slots as fit, up to one per round of a tile (then a tile's
  // stores overlap the next tile's main loop).
  // Streamed weights: each stage brings its taps' weights with the input window.
  auto streamed_taps = [&](int m_tiles) {
    return std::min<int64_t>(taps_in_window(m_tiles), std::max<int64_t>(1, kStreamedWeightStageBytes / tap_bytes));
  };
  const int widest = sub_tiles.front();
  if (lay_out(widest, taps_in_window(widest), rounds(widest), true)) return finished();
  // TF32, where resident weights fit with fewer slots than rounds: streamed weights and a staging slot
  // for every round instead. Its rows are twice as long as 16-bit's, so a tile has 4 rounds of 32
  // channels where 128 channels are resident (98 KB of weights at 64 input channels), and with 2 slots
  // its consumers waited 19% of the time for the storers (NOTES, sixth session); its stages also take
  // twice as long, which hides the weights' loads from L2 and a shallower ring.
  if (plan.precision == HopperPrecision::kTF32 && lay_out(widest, taps_in_window(widest), 1, true) &&
      lay_out(widest, streamed_taps(widest), rounds(widest), false)) {
    return finished();
  }
  for (int m_tiles : sub_tiles) {
    for (int slots = rounds(m_tiles); slots >= 1; slots /= 2) {
      if (lay_out(m_tiles, taps_in_window(m_tiles), slots, true)) return finished();
    }
  }
  for (int m_tiles : sub_tiles) {
    if (lay_out(m_tiles, streamed_taps(m_tiles), 1, false)) return finished();
  }
  return std::nullopt;
}

}  // namespace custom_ops::conv1d::cuda
