// The Hopper plans' promises to their kernels, over a sweep of shapes (plain C++: runs on every machine).
// The kernels trust them without checks of their own: every shared-memory read of a window stays inside
// the TMA box the plan sized, boxes and pitches meet TMA's and the bank layout's rules, the shared memory
// fits a CTA, taps and channel tiles cover the weight, the grad_weight grid fits its 31 bits.

#include "ops/conv1d/cuda/hopper/conv1d_hopper_plan.h"
#include "ops/conv1d/cuda/hopper/fast_divisor.h"
#include "ops/conv1d/cuda/hopper/grad_weight_hopper_plan.h"
#include "ops/conv1d/cuda/hopper/hopper_row_tiles.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using custom_ops::conv1d::Geometry;
namespace cuda = custom_ops::conv1d::cuda;

// Shapes of every stride, dilation, kernel size and channel count the plans branch on.
std::vector<Geometry> sweep() {
  std::vector<Geometry> shapes;
  for (const int64_t stride : {1, 2, 3, 4})
    for (const int64_t dilation : {1, 2, 7, 40, 70, 100})
      for (const int64_t K : {1, 2, 3, 4, 5, 9, 31})
        for (const int64_t C : {2, 37, 64, 130, 512})
          for (const int64_t O : {1, 40, 128, 200})
            for (const int64_t groups : {1, 2})
              for (const int64_t L : {1, 100, 4099})
                for (const int64_t pad : {0, 3}) {
                  if (C % groups || O % groups) continue;
                  Geometry g;
                  g.batch = 3, g.in_channels = C, g.in_length = L, g.out_channels = O, g.kernel_size = K;
                  g.stride = stride, g.dilation = dilation, g.groups = groups, g.pad_left = pad, g.pad_right = pad;
                  const int64_t reach = L + 2 * pad - dilation * (K - 1);
                  if (reach <= 0) continue;
                  g.out_length = (reach - 1) / stride + 1;
                  shapes.push_back(g);
                }
  return shapes;
}

constexpr c10::ScalarType kTypes[] = {at::kFloat, at::kHalf, at::kBFloat16};

// The shape and dtype of a plan, for a failing expectation's message.
std::string describe(const Geometry& g, c10::ScalarType dtype) {
  return (testing::Message() << "C " << g.in_channels << " O " << g.out_channels << " K " << g.kernel_size << " L "
                             << g.in_length << " s " << g.stride << " d " << g.dilation << " p " << g.pad_left
                             << " groups " << g.groups << " dtype " << dtype)
      .GetString();
}

TEST(HopperPlans, ForwardWindowsFitTheirBoxes) {
  int planned = 0;
  for (const Geometry& g : sweep()) {
    for (const auto dtype : kTypes) {
      for (const bool tf32 : {true, false}) {
        const auto plan = cuda::plan_hopper(g, dtype, tf32);
        if (!plan) continue;
        ++planned;
        const int64_t element = c10::elementSize(dtype), vector = 16 / element;
        SCOPED_TRACE(describe(g, dtype) + (tf32 ? " TF32" : " strict"));
        // The consumers read up to (positions - 1) * s + (taps - 1) * d past a shift of at most a vector - 1.
        EXPECT_GE(plan->window_pitch, (plan->positions_per_consumer() - 1) * g.stride +
                                          (plan->taps_per_stage - 1) * g.dilation + 1 + (vector - 1));
        EXPECT_LE(plan->window_pitch, 256);
        EXPECT_EQ(plan->window_pitch * element % 16, 0);
        EXPECT_GE(int64_t(plan->taps_per_stage) * plan->tap_groups, g.kernel_size);
        EXPECT_LT(int64_t(plan->taps_per_stage) * (plan->tap_groups - 1), g.kernel_size);
        EXPECT_GE(int64_t(plan->chunks) * plan->chunk_channels, g.in_channels_per_group());
        EXPECT_GE(plan->stages, plan->resident_weights ? 3 : 2);
        EXPECT_LE(plan->stages, 8);
        EXPECT_TRUE(plan->staging_slots == 1 || plan->staging_slots == 2 || plan->staging_slots == 4);
        EXPECT_LE(plan->shared_bytes, cuda::kHopperSharedBytes);
      }
    }
  }
  EXPECT_GT(planned, 1000);  // the sweep reaches the family, not only its refusals
}

TEST(HopperPlans, GradWeightWindowsFitTheirBoxes) {
  using Plan = cuda::GradWeightHopperPlan;
  int planned = 0;
  for (const Geometry& g : sweep()) {
    for (const auto dtype : kTypes) {
      const auto plan = cuda::plan_grad_weight_hopper(g, dtype, true);
      if (!plan) continue;
      ++planned;
      const int64_t element = c10::elementSize(dtype), vector = 16 / element;
      SCOPED_TRACE(describe(g, dtype));
      EXPECT_GE(plan->window_pitch, (Plan::kPositions - 1) * g.stride + (plan->taps_per_group - 1) * g.dilation + 1 +
                                        (vector - 1));
      EXPECT_LE(plan->window_pitch, 256);
      // A warp's A fragments (8 channel rows x 4 position pairs) in 32 banks: pitch = 4 words (mod 32).
      EXPECT_EQ(plan->window_pitch * element % 128, 16);
      EXPECT_GE(plan->taps_per_group, 1);
      EXPECT_LE(plan->taps_per_group, Plan::max_taps(plan->precision));
      EXPECT_GE(int64_t(plan->taps_per_group) * plan->tap_groups, g.kernel_size);
      EXPECT_LT(int64_t(plan->taps_per_group) * (plan->tap_groups - 1), g.kernel_size);
      // The largest group as small as the group count allows.
      EXPECT_EQ(plan->taps_per_group, (g.kernel_size + plan->tap_groups - 1) / plan->tap_groups);
      EXPECT_GE(int64_t(plan->c_tiles) * Plan::kChannels, g.in_channels_per_group());
      EXPECT_GE(int64_t(plan->o_tiles) * Plan::kOutChannels, g.out_channels_per_group());
      EXPECT_EQ(plan->keys, g.groups * plan->c_tiles * plan->o_tiles * plan->tap_groups);
      EXPECT_EQ(plan->gradient_stage_bytes, Plan::kOutChannels * Plan::kPositions * element);
      EXPECT_EQ(plan->input_stage_bytes, Plan::kChannels * plan->window_pitch * element);
      EXPECT_EQ(plan->stage_bytes % 1024, 0);  // 128-byte swizzled boxes want 1024-byte alignment
      EXPECT_GE(plan->stage_bytes, plan->gradient_stage_bytes + plan->input_stage_bytes);
      EXPECT_GE(plan->stages, 2);
      EXPECT_LE(plan->stages, 8);
      EXPECT_LE(plan->shared_bytes, cuda::kHopperSharedBytes);
      EXPECT_EQ(Plan::consumers_alternate(plan->precision), dtype != at::kFloat);
      if (Plan::consumers_alternate(plan->precision)) {
        EXPECT_EQ(plan->stages % 2, 0);  // each consumer always takes the same stages
        // The stages' room carries one consumer's sums to the other at the end.
        EXPECT_EQ(plan->exchange_bytes, int64_t(plan->taps_per_group) * Plan::kChannels * Plan::kOutChannels * 4);
        EXPECT_GE(plan->shared_bytes - 2 * 1024, plan->exchange_bytes);
      } else {
        EXPECT_EQ(plan->exchange_bytes, 0);
      }
      EXPECT_EQ(plan->tiles, g.batch * ((g.out_length + Plan::kPositions - 1) / Plan::kPositions));
      for (const int64_t sms : {1, 78, 132, 1024}) {
        const int64_t splits = cuda::grad_weight_hopper_splits(*plan, sms);
        EXPECT_GE(splits, 1);
        EXPECT_LE(splits, plan->tiles);
        EXPECT_LT(splits * plan->keys, int64_t{1} << 31);
        const int64_t per_split = (plan->tiles + splits - 1) / splits;
        EXPECT_TRUE(per_split <= 512 || splits == plan->tiles) << per_split << " tiles a CTA";
      }
    }
  }
  EXPECT_GT(planned, 1000);
}

// K = 3 (the headline's) in one tap group in every precision: with groups of 2 and 1 taps, half the CTAs
// had half the work and the gradient tile was read once a group. K = 4 at stride 2 (3 taps fit in
// 16-bit): two groups of 2, not 3 + 1.
TEST(HopperPlans, GradWeightTapGroups) {
  Geometry g;
  g.batch = 32, g.in_channels = 64, g.in_length = 131072, g.out_channels = 128, g.kernel_size = 3;
  g.stride = 1, g.dilation = 1, g.groups = 1, g.pad_left = 0, g.pad_right = 0, g.out_length = 131070;
  for (const auto dtype : kTypes) {
    SCOPED_TRACE(describe(g, dtype));
    const auto plan = cuda::plan_grad_weight_hopper(g, dtype, true);
    ASSERT_TRUE(plan.has_value());
    EXPECT_EQ(plan->taps_per_group, 3);
    EXPECT_EQ(plan->tap_groups, 1);
  }
  g.batch = 16, g.in_channels = 128, g.in_length = 32768, g.out_channels = 256, g.kernel_size = 4;
  g.stride = 2, g.pad_left = 1, g.pad_right = 1, g.out_length = 16384;
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    SCOPED_TRACE(describe(g, dtype));
    const auto plan = cuda::plan_grad_weight_hopper(g, dtype, true);
    ASSERT_TRUE(plan.has_value());
    EXPECT_EQ(plan->taps_per_group, 2);
    EXPECT_EQ(plan->tap_groups, 2);
  }
}

TEST(HopperPlans, GradWeightRefusals) {
  Geometry g;
  g.batch = 2, g.in_channels = 64, g.in_length = 1000, g.out_channels = 128, g.kernel_size = 3;
  g.stride = 1, g.dilation = 1, g.groups = 1, g.pad_left = 1, g.pad_right = 1, g.out_length = 1000;
  EXPECT_TRUE(cuda::plan_grad_weight_hopper(g, at::kBFloat16, true).has_value());
  EXPECT_FALSE(cuda::plan_grad_weight_hopper(g, at::kDouble, true).has_value());
  EXPECT_FALSE(cuda::plan_grad_weight_hopper(g, at::kFloat, false).has_value());  // strict float32
  Geometry empty = g;  // padding only: a tensor map has no empty dimension
  empty.in_length = 0, empty.out_length = 1;
  EXPECT_FALSE(cuda::plan_grad_weight_hopper(empty, at::kFloat, true).has_value());
  EXPECT_FALSE(cuda::plan_hopper(empty, at::kFloat, true).has_value());
  Geometry one_channel = g;  // one input channel a group: the one-channel kernel
  one_channel.groups = 64;
  EXPECT_FALSE(cuda::plan_grad_weight_hopper(one_channel, at::kFloat, true).has_value());
  Geometry wide = g;  // 63 * 4 + 1 + 3 = 256 positions: past a TMA box with its bank padding
  wide.stride = 4;
  EXPECT_FALSE(cuda::plan_grad_weight_hopper(wide, at::kFloat, true).has_value());
}

// The forward's overlapping tiles of unaligned rows (hopper_row_tiles.h): a row's tiles store every
// position exactly once, each within what its tile computed, and every tile but a row's first and last
// one copy of whole 32-byte lines, whatever the row's start within a line.
TEST(HopperPlans, OverlappingRowTilesStoreEveryPositionOnceInWholeLines) {
  for (const int64_t element : {2, 4})
    for (const int64_t tile : {128, 256})
      for (const int64_t L : {int64_t(1), int64_t(100), tile - 1, tile, tile + 1, tile + 7, 2 * tile - 1, 2 * tile + 3,
                              int64_t(612), int64_t(1001), int64_t(4094), int64_t(9999), int64_t(131070),
                              int64_t(131072)}) {
        const cuda::RowTiling tiling = cuda::row_tiling(L, element, tile);
        SCOPED_TRACE("element " + std::to_string(element) + ", tile " + std::to_string(tile) + ", L " +
                     std::to_string(L));
        if ((L * element) % cuda::kOutputLineBytes == 0 || L < tile) {
          EXPECT_EQ(tiling.row_tiles, 0);  // aligned or short rows: sub-tiles pair up across rows as before
          continue;
        }
        if (tiling.row_tiles == 0) {  // rows short enough that the overlap would cost more than 15%
          const int64_t step = tile - cuda::kOutputLineBytes / element;
          EXPECT_GT((1 + (L - tile + step - 1) / step) * tile * 100, L * 115);
          continue;
        }
        EXPECT_EQ(tiling.step, tile - cuda::kOutputLineBytes / element);
        EXPECT_EQ(tiling.step % (16 / element), 0);  // tile starts on whole vectors, as the kernel assumes
        EXPECT_LE(tiling.row_tiles * tile * 100, L * 115);
        EXPECT_GE((tiling.row_tiles - 1) * tiling.step + tile, L);  // the last tile reaches the row's end
        for (int64_t row = 0; row < 16; ++row) {  // rows start at every offset within a line
          const int64_t base = row * L * element;
          std::vector<int> stored(L, 0);
          for (int64_t j = 0; j < tiling.row_tiles; ++j) {
            const cuda::RowTile t = cuda::row_tile(static_cast<uint32_t>(row * tiling.row_tiles + j),
                                                   cuda::FastDivisor(static_cast<uint32_t>(tiling.row_tiles)),
                                                   tiling.step);
            ASSERT_EQ(t.n, row);
            const int64_t l0 = t.l0, computed = std::min(tile, L - l0);
            ASSERT_LT(l0, L);
            const int64_t misalignment = (base + l0 * element) % cuda::kOutputLineBytes;
            const int64_t ahead = (cuda::kOutputLineBytes - misalignment) % cuda::kOutputLineBytes / element;
            const cuda::StoredRun run = cuda::stored_run(l0, ahead, computed, L, tiling.step, tile);
            ASSERT_LE(0, run.from);
            ASSERT_LE(run.from, run.to);
            ASSERT_LE(run.to, computed);
            for (int64_t q = run.from; q < run.to; ++q) ++stored[l0 + q];
            if (j > 0 && j + 1 < tiling.row_tiles) {
              EXPECT_EQ((base + (l0 + run.from) * element) % cuda::kOutputLineBytes, 0);
              EXPECT_EQ((run.to - run.from) * element % cuda::kOutputLineBytes, 0);
            }
          }
          for (int64_t l = 0; l < L; ++l) ASSERT_EQ(stored[l], 1) << "position " << l << ", row " << row;
        }
      }
}

// The forward plan takes overlapping row tiles for the headline's unaligned rows (L_out 131070) in TF32
// and 16-bit, not in 3xTF32 (measured slower there), and never for aligned rows.
TEST(HopperPlans, ForwardPlanChoosesOverlappingRowTilesByPrecision) {
  Geometry g;
  g.batch = 32, g.in_channels = 64, g.out_channels = 128, g.kernel_size = 3, g.in_length = 131072;
  g.stride = 1, g.dilation = 1, g.groups = 1, g.pad_left = 0, g.pad_right = 0, g.out_length = 131070;
  for (const auto dtype : kTypes) {
    const auto fast = cuda::plan_hopper(g, dtype, true);
    ASSERT_TRUE(fast.has_value());
    EXPECT_GT(fast->row_tiling.row_tiles, 0) << describe(g, dtype);
    EXPECT_EQ(fast->row_tiling.row_tiles,
              cuda::row_tiling(g.out_length, c10::elementSize(dtype), 2 * fast->positions_per_consumer()).row_tiles);
  }
  const auto strict = cuda::plan_hopper(g, at::kFloat, false);
  ASSERT_TRUE(strict.has_value());
  EXPECT_EQ(strict->row_tiling.row_tiles, 0);
  g.pad_left = g.pad_right = 1, g.out_length = 131072;  // aligned rows
  for (const auto dtype : kTypes) EXPECT_EQ(cuda::plan_hopper(g, dtype, true)->row_tiling.row_tiles, 0);
}

// The kernels' tile decoding (fast_divisor.h): the multiply-high division equals integer division over
// the whole range it is used for, divisors and dividends below 2^31, edges and random values.
TEST(HopperPlans, FastDivisorDividesExactlyBelowTwoToThe31) {
  constexpr uint32_t kLimit = uint32_t{1} << 31;
  std::mt19937 random(12345);
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 1024; ++d) divisors.push_back(d);
  for (int b = 10; b < 31; ++b)
    for (const int64_t d : {(int64_t{1} << b) - 1, int64_t{1} << b, (int64_t{1} << b) + 1}) divisors.push_back(uint32_t(d));
  divisors.push_back(kLimit - 1);
  for (int i = 0; i < 2000; ++i) divisors.push_back(1 + random() % (kLimit - 1));
  for (const uint32_t d : divisors) {
    const cuda::FastDivisor divisor(d);
    std::vector<uint32_t> dividends = {0, 1, d - 1, d, kLimit - 1, kLimit - 2, kLimit - 1 - (kLimit - 1) % d};
    if (d < kLimit / 2) dividends.insert(dividends.end(), {d + 1, 2 * d - 1, 2 * d});
    for (int i = 0; i < 200; ++i) dividends.push_back(random() % kLimit);
    for (const uint32_t x : dividends) ASSERT_EQ(divisor.div(x), x / d) << x << " / " << d;
  }
}

// Every plan's tile counts stay below the limit of that 32-bit decoding, and a shape past it gets no plan.
TEST(HopperPlans, TileCountsFitThirtyTwoBitDecoding) {
  for (const Geometry& g : sweep()) {
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      const auto plan = cuda::plan_hopper(g, dtype, true);
      if (!plan) continue;
      const cuda::HopperTileCounts counts = cuda::hopper_tile_counts(g, *plan);
      EXPECT_LT(counts.total_tiles, cuda::kMaxHopperTiles);
      EXPECT_LT(counts.subtiles, cuda::kFastDivisionLimit);
      EXPECT_GE(counts.total_tiles * 2 * plan->positions_per_consumer(), g.out_length);
    }
  }
  // 2^30 tiles of two 128-position sub-tiles (2^31 sub-tiles): 2^38 positions in rows of 2^20 (aligned:
  // sub-tiles pair up across rows).
  Geometry huge;
  huge.batch = int64_t{1} << 18, huge.in_channels = 64, huge.in_length = (int64_t{1} << 20) + 2;
  huge.out_channels = 128, huge.kernel_size = 3, huge.stride = 1, huge.dilation = 1, huge.groups = 1;
  huge.pad_left = 0, huge.pad_right = 0;
  huge.out_length = int64_t{1} << 20;
  EXPECT_FALSE(cuda::plan_hopper(huge, at::kBFloat16, true).has_value());
  huge.batch /= 2;  // 2^29 tiles, 2^30 sub-tiles
  EXPECT_TRUE(cuda::plan_hopper(huge, at::kBFloat16, true).has_value());
  // Unaligned rows (tiles of one row): 2^17 rows of 2^20 - 1 positions, 4,369 tiles each (5.7e8 tiles).
  huge.in_length -= 1, huge.out_length -= 1;
  const auto row_plan = cuda::plan_hopper(huge, at::kBFloat16, true);
  ASSERT_TRUE(row_plan.has_value());
  EXPECT_GT(row_plan->row_tiling.row_tiles, 0);
  EXPECT_LT(cuda::hopper_tile_counts(huge, *row_plan).total_tiles, cuda::kMaxHopperTiles);
  huge.batch *= 2;  // 1.15e9 tiles
  EXPECT_FALSE(cuda::plan_hopper(huge, at::kBFloat16, true).has_value());
}

// TF32 on the headline: streamed weights and a staging slot for each of a tile's 4 rounds, rather than
// resident weights with 2 slots; 16-bit keeps its resident weights and a slot for each of its 2 rounds;
// where resident weights do not fit at all (512 channels), TF32 streams with one slot as before.
TEST(HopperPlans, Tf32TakesASlotPerRoundOverResidentWeights) {
  Geometry g;
  g.batch = 32, g.in_channels = 64, g.out_channels = 128, g.kernel_size = 3, g.in_length = 131072;
  g.stride = 1, g.dilation = 1, g.groups = 1, g.pad_left = 0, g.pad_right = 0, g.out_length = 131070;
  const auto tf32 = cuda::plan_hopper(g, at::kFloat, true);
  ASSERT_TRUE(tf32.has_value());
  EXPECT_FALSE(tf32->resident_weights);
  EXPECT_EQ(tf32->staging_slots, 4);
  EXPECT_EQ(tf32->m_tiles, 2);
  EXPECT_GE(tf32->stages, 2);
  const auto bf16 = cuda::plan_hopper(g, at::kBFloat16, true);
  ASSERT_TRUE(bf16.has_value());
  EXPECT_TRUE(bf16->resident_weights);
  EXPECT_EQ(bf16->staging_slots, 2);
  g.in_channels = 512, g.out_channels = 512;
  const auto wide = cuda::plan_hopper(g, at::kFloat, true);
  ASSERT_TRUE(wide.has_value());
  EXPECT_FALSE(wide->resident_weights);
  EXPECT_EQ(wide->staging_slots, 1);
}

}  // namespace
