#pragma once
// Tiles of one output row that overlap by a line (the Hopper forward's tiling for unaligned rows).
// Plain C++ with host/device functions, so that the kernel, its launch and a CPU test share the rule.
//
// Rows whose starts are not on 32-byte boundaries (L_out x the element size not a multiple of 32) make
// every copy of a tile's row begin and end inside a sector: the copy engine writes partial sectors at a
// fraction of its rate, and the unaligned ends have to be stored by hand (NOTES h10-h11). Where a row
// holds at least one tile (2 x 64 * m_tiles positions), its tiles instead advance by a tile less one line
// (`step`), and each stores only its row's whole lines from the first line boundary at or after its first
// position up to the next tile's (the same boundary, a step on): one copy of whole sectors. Only a row's
// first tile (from position 0) and its last (to the row's end) store ends. Taken only where the extra
// tiles (the overlap is recomputed) cost at most 15% of the row's positions. A step is a whole number of
// 16-byte vectors, as the consumers' window shift and the staging placement need (tile starts then sit
// in their vectors as multiples of 64 positions do).

#include "ops/conv1d/cuda/hopper/fast_divisor.h"

#include <cstdint>

namespace custom_ops::conv1d::cuda {

constexpr int kOutputLineBytes = 32;  // a sector: what the copy engine writes whole

struct RowTiling {
  int64_t step = 0;       // positions from one tile's start to the next's; 0: the sub-tiles pair up across rows
  int64_t row_tiles = 0;  // tiles a row
};

inline RowTiling row_tiling(int64_t out_length, int64_t element_size, int64_t tile_positions) {
  RowTiling t;
  const int64_t line = kOutputLineBytes / element_size;
  if ((out_length * element_size) % kOutputLineBytes == 0 || out_length < tile_positions) return t;
  const int64_t step = tile_positions - line, row_tiles = 1 + (out_length - tile_positions + step - 1) / step;
  if (row_tiles * tile_positions * 100 > out_length * 115) return t;  // short rows: the overlap costs too much
  t.step = step;
  t.row_tiles = row_tiles;
  return t;
}

// Tile `index` of a key's tiles in row mode: its batch row and its first position (indices below 2^31,
// see kMaxHopperTiles).
struct RowTile {
  int64_t n, l0;
};
CUSTOM_OPS_HOST_DEVICE inline RowTile row_tile(uint32_t index, const FastDivisor& row_tiles, int64_t step) {
  const uint32_t n = row_tiles.div(index);
  return {n, int64_t(index - n * row_tiles.divisor) * step};
}

// The positions, counted from the tile's first, that a tile at l0 stores of one row: `ahead` positions
// from l0 to the row's next line boundary (0 where l0 sits on one), `computed` = the positions the tile
// holds of the row (min(tile_positions, out_length - l0)).
struct StoredRun {
  int64_t from, to;
};
CUSTOM_OPS_HOST_DEVICE inline StoredRun stored_run(int64_t l0, int64_t ahead, int64_t computed, int64_t out_length,
                                                   int64_t step, int64_t tile_positions) {
  const bool first = l0 == 0, last = l0 + tile_positions >= out_length;
  return {first ? 0 : ahead, last ? computed : ahead + step};
}

}  // namespace custom_ops::conv1d::cuda
