#pragma once
// The Hopper (sm_90a) tensor-core family of custom::conv1d: which shapes it takes and how a call is laid
// out (tile sizes, pipeline stages, whether the weights stay resident in shared memory). Plain C++, so
// that the dispatch table and the kernel query can ask it in any build, with or without CUDA.
//
// The GEMM view on PyTorch's (N, C, L) layout: M = output positions, N = output channels of a group,
// K = (input channel, tap). A CTA runs one producer warpgroup (TMA) and two consumer warpgroups; each
// consumer owns `64 * m_tiles` consecutive output positions and `tile_n` output channels. A pipeline
// stage holds, for `chunk_channels` input channels and `taps_per_stage` taps, the input window of both
// consumers (TMA boxes of `window_pitch` positions) and, unless the weights are resident, those taps'
// weights.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/hopper/fast_divisor.h"
#include "ops/conv1d/cuda/hopper/hopper_row_tiles.h"

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <optional>

namespace custom_ops::conv1d::cuda {

enum class HopperPrecision { kTF32, k3xTF32, kFP16, kBF16 };

struct HopperPlan {
  HopperPrecision precision;
  int tile_n;           // output channels per tile: 32, 64 or 128 (wgmma N)
  int m_tiles;          // 64-position wgmma tiles per consumer warpgroup: 1 or 2
  int chunk_channels;   // input channels per stage: 16 (float32) or 32 (16-bit), 64 bytes a position
  int taps_per_stage;
  int window_pitch;     // positions a stage holds per consumer (the TMA box), = 8 (mod 32) for banks
  int weight_parts;     // 2 for 3xTF32 (high and low TF32 parts), else 1
  int chunks;           // ceil(C_g / chunk_channels)
  int tap_groups;       // ceil(K / taps_per_stage)
  int stages;           // pipeline depth
  bool resident_weights;
  int staging_slots;    // epilogue rounds staged before the oldest must have left (1, 2, 4)
  int64_t input_stage_bytes;   // both consumers' windows
  int64_t weight_stage_bytes;  // one stage's weights (parts x taps x tile_n x 64 bytes)
  int64_t shared_bytes;        // dynamic shared memory of a CTA
  // Unaligned rows at least a tile long: tiles of one row overlapping by a line (hopper_row_tiles.h).
  // Not in 3xTF32, whose three products a position make the recomputed overlap cost more than the
  // whole-sector stores save (measured on the H200: headline 3.21 -> 3.44 ms with it; TF32 1.28 -> 1.25,
  // bf16 0.87 -> 0.72).
  RowTiling row_tiling;

  int positions_per_consumer() const { return 64 * m_tiles; }
  int stages_per_tile() const { return chunks * tap_groups; }
};

// Shared memory the family plans for: an H100's per-block opt-in limit (227 KB).
constexpr int64_t kHopperSharedBytes = 232448;
// The epilogue stages the accumulators in shared memory by rounds of whole output rows of a tile: a
// staging row holds both consumers' sub-tiles side by side (2 x 64 * m_tiles positions), so that where
// the two are neighbours in one output row (every tile but one that straddles a row's end) the row
// leaves in one copy: the copies cost per copy, hardly per byte (NOTES h6-h9). A round has as many rows
// as fit in a slot of at most 64 rows of 512 bytes. A part starts where its global row sits in a 16-byte
// vector (the copy engine needs 16-byte aligned sources and destinations); the second part of a tile
// whose sub-tiles are not neighbours starts one vector further on. Hence 80 bytes of room a row: 16 for
// each part's placement and 16 between, rounded so that row pitches are 20 words (mod 32) and the
// staging writes of a warp (rows 0, 2, 4, 6 x 8 positions) hit 32 banks. `staging_slots` slots: with
// one per round of a tile, a tile's copies drain while the next tile's main loop runs.
constexpr int kStagingLineBytes = 16, kStagingRowRoom = 80;
constexpr int kMaxStagingSlotBytes = 64 * (512 + kStagingRowRoom);
struct EpilogueRound {
  int row_bytes, channels;
};
constexpr EpilogueRound epilogue_round(int element_size, int m_tiles, int tile_n) {
  const int row_bytes = 2 * 64 * m_tiles * element_size + kStagingRowRoom;
  const int fit = kMaxStagingSlotBytes / row_bytes / 8 * 8;
  return {row_bytes, fit >= tile_n ? tile_n : (fit >= 64 ? 64 : 32)};
}

// The plan for a shape, or nothing where the family does not take it (dtype, one channel per group,
// windows longer than a TMA box, 32-bit coordinate limits, shared memory). Independent of the input's
// memory layout: the caller also checks hopper_input_layout_ok.
std::optional<HopperPlan> plan_hopper(const Geometry& g, c10::ScalarType dtype, bool allow_tf32,
                                      int64_t max_shared_bytes = kHopperSharedBytes);

// How a call's output splits into tiles (see decode_tile in hopper_kernel.cuh): a tile is two
// consumers' sub-tiles, paired across rows, or a tile of one row where the plan tiles rows
// (row_tiling); tiles are numbered (group, channel tile) first. plan_hopper takes only shapes with fewer
// than kMaxHopperTiles tiles and kFastDivisionLimit sub-tiles, so that the kernel decodes tile indices
// in 32-bit arithmetic (fast_divisor.h): a CTA's next tile index (+ at most the SM count) and a
// sub-tile index (2 x pair + 1 <= subtiles) stay below 2^31.
constexpr int64_t kMaxHopperTiles = int64_t{1} << 30;
static_assert(2 * kMaxHopperTiles <= kFastDivisionLimit, "tile indices and their increments fit 31 bits");
struct HopperTileCounts {
  int64_t o_tiles;           // channel tiles per group
  int64_t subtiles_per_row;  // ceil(L_out / positions per consumer)
  int64_t subtiles;          // batch * subtiles_per_row
  int64_t tiles_per_key;     // tiles per (group, channel tile)
  int64_t total_tiles;
};
HopperTileCounts hopper_tile_counts(const Geometry& g, const HopperPlan& plan);

// TMA reads the input (N, C, L) through a tensor map: rows contiguous, 16-byte aligned start and
// strides, nested as in a contiguous tensor (rows apart by at least a row, batch items by all rows).
bool hopper_input_layout_ok(int64_t element_size, int64_t batch, int64_t channels, int64_t length,
                            int64_t stride_n, int64_t stride_c, int64_t stride_l, uintptr_t address);

}  // namespace custom_ops::conv1d::cuda
