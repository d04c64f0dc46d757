#pragma once
// The Hopper (sm_90a) tensor-core kernel of custom::conv1d, on PyTorch's (N, C, L) layout.
//
// GEMM view (see conv1d_hopper_plan.h): M = output positions, N = output channels of a group, K = (input
// channel, tap). A CTA has three warpgroups:
//   * the producer (one thread) fills a ring of pipeline stages: per stage, a TMA box of the input
//     window for each consumer (channels x positions, zero-filled outside the tensor: that is the
//     padding) and, when the weights are streamed, the stage's weights (one bulk copy of a block the
//     host laid out in consumption order). Resident weights are one bulk copy per (group, channel tile);
//   * two consumers each own 64 * MTiles consecutive output positions (a sub-tile, possibly of another
//     batch row than the other consumer's) and TileN output channels. The input window is the A operand:
//     the tap shift is a shifted shared-memory read into registers (wgmma's RS form; a descriptor cannot
//     start at a one-element shift, and TF32 wgmma reads shared operands only K-major). The weights are
//     the B operand, read by wgmma from shared memory through a descriptor;
//   * the epilogue adds the bias (a functor, so an activation can follow) and converts while staging the
//     accumulators in shared memory by rounds of whole tile rows, both consumers' sub-tiles side by side
//     (as many channels as fit a slot; up to one slot per round, see epilogue_round), then goes on to
//     its next tile;
//   * two storer warps of the producer warpgroup, each with half the rows of a round, send the staged
//     rounds: the copy engine writes the 16-byte aligned body of each row, one copy for both sub-tiles
//     where they are neighbours in the output row (bulk stores issued by one lane), the warp's lanes
//     plain-store the ends. Issuing the copies stalls the issuing warp until the copy engine takes them
//     (NOTES h6-h9); in warps of their own that wait overlaps the consumers' next main loop. Rows that
//     do not start on 32-byte boundaries, where a row holds a tile and the plan says so (not in 3xTF32),
//     take tiles of one row that overlap by a line instead (hopper_row_tiles.h): each stores whole
//     lines, one copy of whole sectors a row, and only a row's first and last tile have ends.
// The grid is persistent: CTA b takes tiles b, b + gridDim.x, ..., ordered so that consecutive tiles
// share their weights. Full/empty mbarriers order the stages, staged/sent mbarriers the staging slots;
// the producer, the consumers and the storers walk the same tile sequence, so no other coordination is
// needed.

#include "ops/conv1d/cuda/hopper/conv1d_hopper_plan.h"
#include "ops/conv1d/cuda/hopper/fast_divisor.h"
#include "ops/conv1d/cuda/hopper/hopper_ptx.cuh"
#include "ops/conv1d/cuda/hopper/hopper_row_tiles.h"
#include "ops/conv1d/cuda/hopper/hopper_timeline.cuh"
#include "ops/conv1d/cuda/hopper/hopper_wgmma.cuh"
#include "ops/conv1d/cuda/hopper/hopper_window.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace custom_ops::conv1d::cuda::hopper {

// Everything a launch needs but the tensor map, filled once on the host from the geometry and the plan.
// Passed by value and never addressed, so its fields are read from the constant bank (the tensor map is
// a separate __grid_constant__ parameter: TMA needs its address, and an addressed parameter struct
// would turn every field read into a memory load).
struct HopperParams {
  const uint8_t* weights;  // laid out by relayout_weights: [key][chunk][tap group][part][tap][kgroup][n][16 B]
  const void* bias;        // (O,) or nullptr
  void* output;            // (N, O, L_out), contiguous
  int64_t out_length;
  int64_t out_channels;
  int out_channels_per_group;
  // The tile counts (hopper_tile_counts, all below 2^30), as divisors where decode_tile divides by them.
  FastDivisor o_tiles;           // channel tiles per group
  FastDivisor subtiles_per_row;  // ceil(L_out / positions per consumer) (unused where row_tiled)
  uint32_t subtiles;             // batch * subtiles_per_row (unused where row_tiled)
  FastDivisor tiles_per_key;     // ceil(subtiles / 2): a tile is two consumers' sub-tiles (or batch * row_tiles)
  int total_tiles;               // groups * o_tiles * tiles_per_key
  // Rows that do not start on 32-byte boundaries, at least a tile long (hopper_row_tiles.h): tiles of
  // one row, which advance by tile_step, row_tiles a row (then tiles_per_key = batch * row_tiles); else
  // sub-tiles pair up across rows.
  bool row_tiled;
  FastDivisor row_tiles;
  int tile_step;
  int stride, dilation, pad_left, kernel_size;
  int chunks, tap_groups, taps_per_stage, window_pitch, stages;
  int resident_weights;
  int staging_slots;  // 1, 2 or 4
  int staging_slot_shift;  // log2(staging_slots)
  uint32_t input_stage_bytes, weight_stage_bytes, resident_bytes;
};

template <typename Element, HopperPrecision kPrecision, int TileN, int MTiles>
struct HopperTraits {
  using element_t = Element;  // float, __half or __nv_bfloat16
  static constexpr bool kFloat = std::is_same_v<Element, float>;
  static constexpr bool kSplit = kPrecision == HopperPrecision::k3xTF32;
  static constexpr int kTileN = TileN, kMTiles = MTiles;
  static constexpr int kChunk = kFloat ? 16 : 32;  // channels per stage: 64 bytes of each position
  static constexpr int kStepChannels = kFloat ? 8 : 16;  // channels per wgmma (its K)
  static constexpr int kStepsPerTap = kChunk / kStepChannels;
  static constexpr int kAccumulators = TileN / 2;  // per thread of a consumer, per 64-position tile
  static constexpr int kThreads = 384;
  // Registers per thread after setmaxnreg: the producer warpgroup (TMA and storer warps) keeps few, the
  // consumers take the rest.
  static constexpr int kProducerRegisters = 88, kConsumerRegisters = 208;
  // setmaxnreg moves registers within the CTA's launch allocation only: 384 threads x 168 registers
  // (__launch_bounds__(384, 1); a raise beyond what the lowered warps freed blocks for ever).
  static_assert(128 * kProducerRegisters + 256 * kConsumerRegisters <= kThreads * 168, "the CTA's registers");
  using Mma = std::conditional_t<kFloat, WgmmaTf32<TileN>,
                                 std::conditional_t<std::is_same_v<Element, __half>, WgmmaFp16<TileN>, WgmmaBf16<TileN>>>;
};

// The epilogue's rounds (see epilogue_round in conv1d_hopper_plan.h).
template <class Traits>
struct EpilogueStaging {
  static constexpr EpilogueRound kRound =
      epilogue_round(int(sizeof(typename Traits::element_t)), Traits::kMTiles, Traits::kTileN);
  static constexpr int kRowBytes = kRound.row_bytes, kRoundChannels = kRound.channels;
  static constexpr int kSlotBytes = kRowBytes * kRoundChannels, kRounds = Traits::kTileN / kRoundChannels;
  static constexpr int kPositions = 64 * Traits::kMTiles;  // of one consumer: a part of a staging row
  static constexpr int kVector = 16 / int(sizeof(typename Traits::element_t));
  static_assert(Traits::kTileN % kRoundChannels == 0 && kRowBytes % 128 == 80, "rounds, bank-conflict-free writes");
  static_assert(kRowBytes >= 2 * (kPositions + 2 * kVector) * int(sizeof(typename Traits::element_t)), "room");
};

// Bias, then nothing else: the hook where an activation would go. The bias of a channel is read once
// per tile (bias_of), ahead of the staging writes that apply it.
template <typename Element>
struct BiasEpilogue {
  const Element* bias;
  __device__ __forceinline__ float bias_of(int64_t channel) const {
    return bias ? static_cast<float>(bias[channel]) : 0.f;
  }
  __device__ __forceinline__ float operator()(float value, float channel_bias) const { return value + channel_bias; }
};

// Which sub-tiles a tile holds: tiles are ordered (group, channel tile) first, so the weights change
// rarely along a CTA's sequence.
struct TileCoordinates {
  int64_t key;  // group * o_tiles + channel tile
  int group, o0;
  int64_t n[2], l0[2];
  bool valid[2];
};

template <int TileN, int Positions>
__device__ __forceinline__ TileCoordinates decode_tile(const HopperParams& p, int tile) {
  TileCoordinates c;
  const uint32_t key = p.tiles_per_key.div(tile), pair = tile - key * p.tiles_per_key.divisor;
  const uint32_t group = p.o_tiles.div(key);
  c.key = key;
  c.group = static_cast<int>(group);
  c.o0 = static_cast<int>(key - group * p.o_tiles.divisor) * TileN;
  if (p.row_tiled) {
    // Overlapping tiles of one row: the first sub-tile at j * tile_step, the second right after it where
    // the row reaches it (else it computes on batch row 0 and stores nothing, as below).
    const RowTile t = row_tile(pair, p.row_tiles, p.tile_step);
    const int64_t n = t.n, l0 = t.l0;
    c.valid[0] = true;
    c.valid[1] = l0 + Positions < p.out_length;
    c.n[0] = n;
    c.l0[0] = l0;
    c.n[1] = c.valid[1] ? n : 0;
    c.l0[1] = c.valid[1] ? l0 + Positions : 0;
    return c;
  }
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    const uint32_t sub = 2 * pair + w, n = p.subtiles_per_row.div(sub);
    c.valid[w] = sub < p.subtiles;
    // A consumer without a sub-tile (the last tile of an odd count) computes on batch row 0 and
    // stores nothing.
    c.n[w] = c.valid[w] ? n : 0;
    c.l0[w] = c.valid[w] ? int64_t(sub - n * p.subtiles_per_row.divisor) * Positions : 0;
  }
  return c;
}

// Where a consumer's sub-tile goes in the output: worked out alike by the consumer, which stages it, and
// by its storer, which sends it.
template <class Traits>
struct SubTileOutput {
  using Element = typename Traits::element_t;
  static constexpr int kPositions = 64 * Traits::kMTiles;
  Element* out;  // channel0's row at position l0
  int64_t out_length, channel0;
  int channels_here, valid_positions;
  bool valid;
  __device__ __forceinline__ SubTileOutput(const HopperParams& p, const TileCoordinates& c, int consumer) {
    // Selected, not indexed, so the coordinates stay in registers.
    valid = consumer == 0 ? c.valid[0] : c.valid[1];
    const int64_t n = consumer == 0 ? c.n[0] : c.n[1], l0 = consumer == 0 ? c.l0[0] : c.l0[1];
    out_length = p.out_length;
    channel0 = int64_t(c.group) * p.out_channels_per_group + c.o0;
    out = static_cast<Element*>(p.output) + (n * p.out_channels + channel0) * p.out_length + l0;
    channels_here = min(Traits::kTileN, p.out_channels_per_group - c.o0);
    valid_positions = static_cast<int>(min(int64_t(kPositions), p.out_length - l0));
  }
  __device__ __forceinline__ Element* row(int o) const { return out + int64_t(o) * out_length; }
  // Elements from the 16-byte boundary before row o's first position (where its staging row starts).
  // Integer arithmetic: the consumers also place rows past the last channel, which are never stored.
  __device__ __forceinline__ int row_offset(int o) const {
    const uintptr_t address = reinterpret_cast<uintptr_t>(out) + uintptr_t(int64_t(o) * out_length) * sizeof(Element);
    return static_cast<int>((address % kStagingLineBytes) / sizeof(Element));
  }
  // Elements from row o's first position to the next 32-byte boundary (0 where it starts on one).
  __device__ __forceinline__ int line_offset(int o) const {
    const uintptr_t address = reinterpret_cast<uintptr_t>(out) + uintptr_t(int64_t(o) * out_length) * sizeof(Element);
    return static_cast<int>(((kOutputLineBytes - address % kOutputLineBytes) % kOutputLineBytes) / sizeof(Element));
  }
};

// Whether the tile's two sub-tiles are neighbours in one output row: then a staging row is one run of
// positions, and leaves in one copy.
template <int Positions>
__device__ __forceinline__ bool neighbours(const TileCoordinates& c) {
  return c.valid[0] && c.valid[1] && c.n[0] == c.n[1] && c.l0[1] == c.l0[0] + Positions;
}

// Where a consumer's part of a staging row starts, before its placement within a vector: the second
// part follows the first directly when the sub-tiles are neighbours (their placements then agree), else
// a vector further on.
template <class Staging>
__device__ __forceinline__ int part_start(int consumer, bool neighbours) {
  return consumer == 0 ? 0 : Staging::kPositions + (neighbours ? 0 : Staging::kVector);
}

// Shared memory: [barriers: 1 KB][resident weights][stage 0: input (consumer 0, consumer 1), weights]...
// [epilogue staging slots]
struct SharedLayout {
  uint8_t* base;
  uint32_t stage_bytes;
  __device__ __forceinline__ uint64_t* barriers() const { return reinterpret_cast<uint64_t*>(base); }
  __device__ __forceinline__ uint8_t* resident(const HopperParams&) const { return base + 1024; }
  __device__ __forceinline__ uint8_t* input(const HopperParams& p, int stage, int consumer) const {
    return base + 1024 + p.resident_bytes + size_t(stage) * stage_bytes + consumer * (p.input_stage_bytes / 2);
  }
  __device__ __forceinline__ uint8_t* stage_weights(const HopperParams& p, int stage) const {
    return base + 1024 + p.resident_bytes + size_t(stage) * stage_bytes + p.input_stage_bytes;
  }
  __device__ __forceinline__ uint8_t* staging(const HopperParams& p, int slot, int slot_bytes) const {
    return base + 1024 + p.resident_bytes + size_t(p.stages) * stage_bytes + slot * slot_bytes;
  }
};

// Barrier indices: full[s] = s, empty[s] = kMaxStages + s, then the resident weights' pair.
constexpr int kMaxStages = 8;
constexpr int kWeightsFull = 2 * kMaxStages, kWeightsEmpty = 2 * kMaxStages + 1;
constexpr int kConsumerWarps = 8;  // every consumer warp releases what it read
// Per staging slot: staged (the consumer threads have written a round into the slot) and sent (both
// storer warps have read it, their copies included). Every thread arrives for what it wrote or read
// itself (a warp's lane arriving for all after __syncwarp is ordered too, but racecheck sees only the
// arriving thread's own accesses).
constexpr int kMaxStagingSlots = 4, kStorerWarps = 2;
constexpr int staged_barrier(int slot) { return 2 * kMaxStages + 2 + slot; }
constexpr int sent_barrier(int slot) { return staged_barrier(kMaxStagingSlots) + slot; }
static_assert(sent_barrier(kMaxStagingSlots) * 8 <= 1024, "the barriers fit their kilobyte");

template <class Traits>
__device__ __forceinline__ void produce(const HopperParams& p, const CUtensorMap* input_map, const SharedLayout& smem) {
  constexpr int kPositions = 64 * Traits::kMTiles;
  uint64_t* bars = smem.barriers();
  int stage = 0;
  uint32_t phase = 0, weight_loads = 0;
  int64_t loaded_key = -1;
  Timeline timeline;
  prefetch_tensor_map(input_map);
  for (int tile = blockIdx.x; tile < p.total_tiles; tile += gridDim.x) {
    timeline.stamp(TimelineEvent::kTileStart);
    const TileCoordinates c = decode_tile<Traits::kTileN, kPositions>(p, tile);
    if (p.resident_weights && c.key != loaded_key) {
      if (weight_loads > 0) barrier_wait(shared_address(&bars[kWeightsEmpty]), (weight_loads - 1) & 1);
      barrier_arrive_expect_bytes(shared_address(&bars[kWeightsFull]), p.resident_bytes);
      bulk_load(shared_address(smem.resident(p)), p.weights + c.key * p.resident_bytes, p.resident_bytes,
                shared_address(&bars[kWeightsFull]));
      loaded_key = c.key;
      ++weight_loads;
    }
    const int64_t first_stage_block = c.key * p.chunks * p.tap_groups;
    for (int chunk = 0; chunk < p.chunks; ++chunk) {
      for (int tap_group = 0; tap_group < p.tap_groups; ++tap_group) {
        const uint32_t full = shared_address(&bars[stage]);
        timeline.stamp(TimelineEvent::kStageWait);
        barrier_wait(shared_address(&bars[kMaxStages + stage]), phase ^ 1);
        timeline.stamp(TimelineEvent::kStageReady);
        barrier_arrive_expect_bytes(full, p.input_stage_bytes + (p.resident_weights ? 0 : p.weight_stage_bytes));
#pragma unroll
        for (int w = 0; w < 2; ++w) {
          int shift;
          const int64_t first = window_start<16 / sizeof(typename Traits::element_t)>(
              c.l0[w] * p.stride - p.pad_left + int64_t(tap_group) * p.taps_per_stage * p.dilation, shift);
          tma_load_4d(shared_address(smem.input(p, stage, w)), input_map, full, static_cast<int>(first),
                      chunk * Traits::kChunk, c.group, static_cast<int>(c.n[w]));
        }
        if (!p.resident_weights) {
          const int64_t block = first_stage_block + int64_t(chunk) * p.tap_groups + tap_group;
          bulk_load(shared_address(smem.stage_weights(p, stage)), p.weights + block * p.weight_stage_bytes,
                    p.weight_stage_bytes, full);
        }
        if (++stage == p.stages) stage = 0, phase ^= 1;
      }
    }
  }
}

// The A fragments of one tap for every wgmma step of a stage and every 64-position tile (see
// hopper_wgmma.cuh for the fragment layout), read from the consumer's input window at the tap's shift.
template <class Traits>
__device__ __forceinline__ void load_a(uint32_t (&a)[Traits::kStepsPerTap][Traits::kMTiles][4], const uint8_t* window,
                                       int pitch, int row_offset, int stride) {
  const int lane = threadIdx.x % 32, t = lane % 4;
  if constexpr (Traits::kFloat) {
    const float* x = reinterpret_cast<const float*>(window) + t * pitch + row_offset;
#pragma unroll
    for (int j = 0; j < Traits::kStepsPerTap; ++j)
#pragma unroll
      for (int m = 0; m < Traits::kMTiles; ++m) {
        const float* r = x + 8 * j * pitch + m * 64 * stride;
        const float v[4] = {r[0], r[8 * stride], r[4 * pitch], r[4 * pitch + 8 * stride]};
#pragma unroll
        for (int e = 0; e < 4; ++e) a[j][m][e] = Traits::kSplit ? __float_as_uint(v[e]) : to_tf32(v[e]);
      }
  } else {
    const uint16_t* x = reinterpret_cast<const uint16_t*>(window) + 2 * t * pitch + row_offset;
#pragma unroll
    for (int j = 0; j < Traits::kStepsPerTap; ++j)
#pragma unroll
      for (int m = 0; m < Traits::kMTiles; ++m) {
        const uint16_t* r = x + 16 * j * pitch + m * 64 * stride;
        const int s8 = 8 * stride;
        a[j][m][0] = uint32_t(r[0]) | (uint32_t(r[pitch]) << 16);
        a[j][m][1] = uint32_t(r[s8]) | (uint32_t(r[pitch + s8]) << 16);
        a[j][m][2] = uint32_t(r[8 * pitch]) | (uint32_t(r[9 * pitch]) << 16);
        a[j][m][3] = uint32_t(r[8 * pitch + s8]) | (uint32_t(r[9 * pitch + s8]) << 16);
      }
  }
}

template <class Traits>
__device__ __forceinline__ void consume(const HopperParams& p, const SharedLayout& smem, int consumer) {
  using Element = typename Traits::element_t;
  using Mma = typename Traits::Mma;
  constexpr int kMTiles = Traits::kMTiles, kAcc = Traits::kAccumulators, kSteps = Traits::kStepsPerTap;
  constexpr int kPositions = 64 * kMTiles, kTileN = Traits::kTileN;
  uint64_t* bars = smem.barriers();
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int row_offset = (warp * 16 + g) * p.stride;  // this lane's first position in the window
  const uint32_t b_leading = kTileN * 16, b_stride = 128;  // descriptor strides of the B layout
  const uint32_t resident = shared_address(smem.resident(p));
  const BiasEpilogue<Element> epilogue{static_cast<const Element*>(p.bias)};
  const int pitch = p.window_pitch, stride = p.stride, dilation = p.dilation, taps_per_stage = p.taps_per_stage;

  float acc[kMTiles][kAcc];
  float partial[Traits::kSplit ? kMTiles : 1][Traits::kSplit ? kAcc : 1];  // 3xTF32: one tap's products
  int stage = 0;
  uint32_t phase = 0, weight_loads = 0, staged_rounds = 0;
  int64_t current_key = -1;
  Timeline timeline;
  for (int tile = blockIdx.x; tile < p.total_tiles; tile += gridDim.x) {
    __syncwarp();  // the last epilogue's per-lane branches may have diverged the warp; wgmma needs it converged
    timeline.stamp(TimelineEvent::kTileStart);
    const TileCoordinates c = decode_tile<kTileN, kPositions>(p, tile);
    if (p.resident_weights && c.key != current_key) {
      if (current_key >= 0 && lane == 0) barrier_arrive(shared_address(&bars[kWeightsEmpty]));
      barrier_wait(shared_address(&bars[kWeightsFull]), weight_loads & 1);
      __syncwarp();
      ++weight_loads;
      current_key = c.key;
    }
    if constexpr (Traits::kSplit) {
#pragma unroll
      for (int m = 0; m < kMTiles; ++m)
#pragma unroll
        for (int i = 0; i < kAcc; ++i) acc[m][i] = 0.f;
    }
    int accumulate = 0;  // the tile's first wgmma overwrites the accumulators
    for (int chunk = 0; chunk < p.chunks; ++chunk) {
      for (int tap_group = 0; tap_group < p.tap_groups; ++tap_group) {
        timeline.stamp(TimelineEvent::kStageWait);
        barrier_wait(shared_address(&bars[stage]), phase);
        timeline.stamp(TimelineEvent::kStageReady);
        __syncwarp();  // the spin may release lanes at different times; wgmma needs the warp converged
        const uint8_t* window = smem.input(p, stage, consumer);
        const uint32_t weights =
            p.resident_weights
                ? resident + uint32_t(chunk * p.tap_groups + tap_group) * p.weight_stage_bytes
                : shared_address(smem.stage_weights(p, stage));
        const int taps = min(taps_per_stage, p.kernel_size - tap_group * taps_per_stage);
        int shift;  // the same for both consumers: their sub-tiles start at whole vectors (hopper_row_tiles.h)
        window_start<16 / sizeof(Element)>(int64_t(tap_group) * taps_per_stage * dilation - p.pad_left, shift);
        const int row_base = row_offset + shift;
        // B of (part, tap, step): 4 kgroups of 16 bytes per (tap, n), two per step.
        auto b_descriptor = [&](int part, int tap, int step) {
          const uint32_t address = weights + uint32_t(((part * taps_per_stage + tap) * 4 + 2 * step) * kTileN * 16);
          return matrix_descriptor(address, b_leading, b_stride);
        };
        if constexpr (Traits::kSplit) {
          for (int tap = 0; tap < taps; ++tap) {
            uint32_t a[kSteps][kMTiles][4];
            load_a<Traits>(a, window, pitch, row_base + tap * dilation, stride);
            // Split before the group starts: a fragment register written between the wgmmas of a group
            // makes ptxas serialise them (C7520).
            uint32_t hi[kSteps][kMTiles][4], lo[kSteps][kMTiles][4];
#pragma unroll
            for (int j = 0; j < kSteps; ++j)
#pragma unroll
              for (int m = 0; m < kMTiles; ++m)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                  const float v = __uint_as_float(a[j][m][e]);
                  hi[j][m][e] = to_tf32(v);
                  lo[j][m][e] = to_tf32(v - __uint_as_float(hi[j][m][e]));
                }
            wgmma_fence();
            // x * w ~ x_lo * w_hi + x_hi * w_lo + x_hi * w_hi, small products first, into `partial`.
#pragma unroll
            for (int j = 0; j < kSteps; ++j)
#pragma unroll
              for (int m = 0; m < kMTiles; ++m) {
                Mma::run(partial[m], lo[j][m], b_descriptor(0, tap, j), j > 0);
                Mma::run(partial[m], hi[j][m], b_descriptor(1, tap, j), 1);
                Mma::run(partial[m], hi[j][m], b_descriptor(0, tap, j), 1);
              }
            wgmma_commit();
            timeline.stamp(TimelineEvent::kTapLoaded);
            wgmma_wait<0>();
            timeline.stamp(TimelineEvent::kTapDone);
            // The tensor cores' float32 sums truncate; folding each tap's products into `acc` with a
            // correctly rounded add keeps long reductions at float32 accuracy.
#pragma unroll
            for (int m = 0; m < kMTiles; ++m)
#pragma unroll
              for (int i = 0; i < kAcc; ++i) acc[m][i] += partial[m][i];
          }
        } else {
          // One tap per wgmma group. The next tap's A fragments load into a second set of registers
          // while the group runs: the loads' latency (~500 cycles a tap under the other consumer's
          // traffic, NOTES) hides behind the group instead of adding to it.
          using Fragments = uint32_t[kSteps][kMTiles][4];
          auto run_tap = [&](Fragments& fragments, Fragments& next, int tap) {
            wgmma_fence();
#pragma unroll
            for (int j = 0; j < kSteps; ++j)
#pragma unroll
              for (int m = 0; m < kMTiles; ++m)
                Mma::run(acc[m], fragments[j][m], b_descriptor(0, tap, j), accumulate | j);
            wgmma_commit();
            timeline.stamp(TimelineEvent::kTapLoaded);
            if (tap + 1 < taps) load_a<Traits>(next, window, pitch, row_base + (tap + 1) * dilation, stride);
            wgmma_wait<0>();
            timeline.stamp(TimelineEvent::kTapDone);
            accumulate = 1;
          };
          Fragments a0, a1;
          load_a<Traits>(a0, window, pitch, row_base, stride);
          for (int tap = 0; tap < taps; tap += 2) {
            run_tap(a0, a1, tap);
            if (tap + 1 < taps) run_tap(a1, a0, tap + 1);
          }
        }
        __syncwarp();
        if (lane == 0) barrier_arrive(shared_address(&bars[kMaxStages + stage]));
        if (++stage == p.stages) stage = 0, phase ^= 1;
      }
    }
    // Epilogue: through shared memory, and out by the storer warps. A round stages `kRoundChannels`
    // whole rows of the tile (both consumers' parts side by side, see epilogue_round), adding the bias
    // and converting on the way; d[4i + 2h + e] of 64-position tile m is position
    // 64m + 16 * warp + g + 8h, channel 8i + 2t + e. A consumer without a sub-tile (the last tile of an
    // odd count) writes nothing but keeps the slots' count.
    timeline.stamp(TimelineEvent::kEpilogueStart);
    using Staging = EpilogueStaging<Traits>;
    const SubTileOutput<Traits> sub(p, c, consumer);
    const int part = part_start<Staging>(consumer, neighbours<kPositions>(c)) + warp * 16 + g;
#pragma unroll
    for (int round = 0; round < Staging::kRounds; ++round) {
      // This thread's channels of the round, with their epilogue inputs, before any waiting.
      float bias[Staging::kRoundChannels / 8][2];
#pragma unroll
      for (int i = 0; i < Staging::kRoundChannels / 8; ++i)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int o = round * Staging::kRoundChannels + 8 * i + 2 * t + e;
          bias[i][e] = epilogue.bias_of(sub.channel0 + (o < sub.channels_here ? o : 0));
        }
      const uint32_t use = staged_rounds++;
      const int slot = static_cast<int>(use & (p.staging_slots - 1));
      timeline.stamp(TimelineEvent::kSlotWait);
      // The storers' copies of the round this slot held `staging_slots` rounds ago have read it.
      if (use >= uint32_t(p.staging_slots)) {
        barrier_wait(shared_address(&bars[sent_barrier(slot)]), ((use >> p.staging_slot_shift) - 1) & 1);
      }
      timeline.stamp(TimelineEvent::kSlotReady);
      uint8_t* staging = smem.staging(p, slot, Staging::kSlotBytes);
      if (sub.valid) {
#pragma unroll
        for (int i = 0; i < Staging::kRoundChannels / 8; ++i)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int row = 8 * i + 2 * t + e, o = round * Staging::kRoundChannels + row;
            Element* staged =
                reinterpret_cast<Element*>(staging + row * Staging::kRowBytes) + part + sub.row_offset(o);
#pragma unroll
            for (int m = 0; m < kMTiles; ++m)
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                const float v = acc[m][4 * (round * Staging::kRoundChannels / 8 + i) + 2 * h + e];
                staged[64 * m + 8 * h] = static_cast<Element>(epilogue(v, bias[i][e]));
              }
          }
        async_proxy_fence();  // the copy engine reads what these ordinary stores wrote
      }
      barrier_arrive(shared_address(&bars[staged_barrier(slot)]));
      timeline.stamp(TimelineEvent::kRoundStaged);
    }
  }
}

// A storer warp: sends its half of the rows of every round the consumers stage, in the order they are
// staged. Lane j works out row j's copy (one per part, or one for both where the sub-tiles are
// neighbours) and plain-stores its unaligned ends; lane 0 issues the copies from shuffled parameters
// (copies issued by many lanes of one instruction, or by one thread that works each out in turn, run
// at a fraction of the copy engine's rate: bench/probes/store_rate.cu, NOTES h6) and releases a slot
// once the copies that read it are done reading. The last round's slot is held back while the next is
// on its way, so that one round's copies are always queued, but never while this warp waits for a
// round: the consumers may be waiting for that very slot.
template <class Traits>
__device__ __forceinline__ void send_staged(const HopperParams& p, const SharedLayout& smem, int storer) {
  using Element = typename Traits::element_t;
  using Staging = EpilogueStaging<Traits>;
  constexpr int kPositions = Staging::kPositions, kElement = sizeof(Element), kVector = Staging::kVector;
  constexpr int kRows = Staging::kRoundChannels / kStorerWarps;  // this warp's rows of a round
  uint64_t* bars = smem.barriers();
  const int lane = threadIdx.x % 32;
  uint32_t sent_rounds = 0;
  int held_slot = -1;  // the slot of the latest committed copies, not released yet
  Timeline timeline;
  auto release_held = [&] {
    if (held_slot >= 0) {
      if (lane == 0) bulk_wait_read<0>();
      barrier_arrive(shared_address(&bars[sent_barrier(held_slot)]));
      timeline.stamp(TimelineEvent::kSlotReleased);
    }
    held_slot = -1;
  };
  for (int tile = blockIdx.x; tile < p.total_tiles; tile += gridDim.x) {
    timeline.stamp(TimelineEvent::kTileStart);
    const TileCoordinates c = decode_tile<Traits::kTileN, kPositions>(p, tile);
    const SubTileOutput<Traits> sub0(p, c, 0), sub1(p, c, 1);
    const bool joined = neighbours<kPositions>(c);
    // The copies of a staging row: one for both parts where the sub-tiles are neighbours, else one a part.
    const int pieces = joined ? 1 : int(sub0.valid) + int(sub1.valid);
#pragma unroll 1
    for (int round = 0; round < Staging::kRounds; ++round) {
      const uint32_t use = sent_rounds++;
      const int slot = static_cast<int>(use & (p.staging_slots - 1));
      const uint32_t staged = shared_address(&bars[staged_barrier(slot)]), parity = (use >> p.staging_slot_shift) & 1;
      int ready = 0;
      if (lane == 0) ready = barrier_test(staged, parity);
      timeline.stamp(TimelineEvent::kSlotWait);
      if (!__shfl_sync(0xffffffffu, ready, 0)) release_held();
      barrier_wait(staged, parity);  // every lane acquires the round's writes (at once where it is ready)
      timeline.stamp(TimelineEvent::kSlotReady);
      const uint8_t* staging = smem.staging(p, slot, Staging::kSlotBytes);
#pragma unroll
      for (int row0 = storer * kRows; row0 < (storer + 1) * kRows; row0 += 32) {
        const int row = row0 + lane, o = round * Staging::kRoundChannels + row;
        const bool mine = row < (storer + 1) * kRows && o < sub0.channels_here;
        const Element* staged_row = reinterpret_cast<const Element*>(staging + row * Staging::kRowBytes);
#pragma unroll
        for (int piece = 0; piece < 2; ++piece) {
          if (piece >= pieces) break;
          // Piece p is consumer p's part (a tile's first sub-tile always exists), or both parts at once.
          uint64_t destination = 0;
          uint32_t source = 0, bytes = 0;
          if (mine) {
            Element* y = piece == 0 ? sub0.row(o) : sub1.row(o);
            int start = part_start<Staging>(piece, joined) + (piece == 0 ? sub0.row_offset(o) : sub1.row_offset(o));
            int length = joined ? kPositions + sub1.valid_positions
                                : (piece == 0 ? sub0.valid_positions : sub1.valid_positions);
            if (p.row_tiled) {  // overlapping tiles of one row (one piece): whole lines (hopper_row_tiles.h)
              const StoredRun run =
                  stored_run(c.l0[0], sub0.line_offset(o), length, p.out_length, p.tile_step, 2 * kPositions);
              y += run.from;
              start += static_cast<int>(run.from);
              length = static_cast<int>(run.to - run.from);
            }
            const int shift = start % kVector;
            const int head = min(length, shift == 0 ? 0 : kVector - shift);
            const int body = (length - head) / kVector * kVector;
            const Element* x = staged_row + start;
            for (int q = 0; q < head; ++q) y[q] = x[q];
            for (int q = head + body; q < length; ++q) y[q] = x[q];
            destination = reinterpret_cast<uint64_t>(y + head);
            source = shared_address(x + head);
            bytes = body * kElement;
          }
#pragma unroll
          for (int j = 0; j < 32 && row0 + j < (storer + 1) * kRows; ++j) {
            const uint64_t d = __shfl_sync(0xffffffffu, destination, j);
            const uint32_t src = __shfl_sync(0xffffffffu, source, j), b = __shfl_sync(0xffffffffu, bytes, j);
            if (lane == 0 && b > 0) bulk_store(reinterpret_cast<void*>(d), src, b);
          }
        }
      }
      if (lane == 0) {
        bulk_commit();
        if (held_slot >= 0) bulk_wait_read<1>();  // the held slot's copies, all but the ones just committed
      }
      timeline.stamp(TimelineEvent::kRoundStaged);
      if (held_slot >= 0) {
        barrier_arrive(shared_address(&bars[sent_barrier(held_slot)]));
        timeline.stamp(TimelineEvent::kSlotReleased);
      }
      held_slot = slot;
    }
  }
  if (lane == 0) bulk_wait();  // the last copies are done before the CTA's shared memory goes
}

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, 1)
    conv1d_hopper_kernel(const __grid_constant__ CUtensorMap input_map, const HopperParams p) {
#if CUSTOM_OPS_HOPPER_DEVICE_CODE
  extern __shared__ __align__(1024) uint8_t shared_bytes[];
  const SharedLayout smem{shared_bytes, p.input_stage_bytes + (p.resident_weights ? 0u : p.weight_stage_bytes)};
  uint64_t* bars = smem.barriers();
  if (threadIdx.x == 0) {
    for (int s = 0; s < p.stages; ++s) {
      barrier_init(shared_address(&bars[s]), 1);  // the producer's arrival + the copies' bytes
      barrier_init(shared_address(&bars[kMaxStages + s]), kConsumerWarps);
    }
    barrier_init(shared_address(&bars[kWeightsFull]), 1);
    barrier_init(shared_address(&bars[kWeightsEmpty]), kConsumerWarps);
    for (int slot = 0; slot < kMaxStagingSlots; ++slot) {
      barrier_init(shared_address(&bars[staged_barrier(slot)]), 32 * kConsumerWarps);
      barrier_init(shared_address(&bars[sent_barrier(slot)]), 32 * kStorerWarps);
    }
    barrier_init_fence();
  }
  __syncthreads();
  const int warpgroup = threadIdx.x / 128;
  if (warpgroup == 0) {
    lower_register_limit<Traits::kProducerRegisters>();
    const int warp = threadIdx.x / 32;
    if (threadIdx.x == 0) {
      produce<Traits>(p, &input_map, smem);
    } else if (warp == 1 || warp == 2) {
      send_staged<Traits>(p, smem, warp - 1);
    }
  } else {
    raise_register_limit<Traits::kConsumerRegisters>();
    consume<Traits>(p, smem, warpgroup - 1);
  }
#endif
}

// ---------------------------------------------------------------------------------------------------
// Weights (O_g, C_g, K a group, read through a WeightView's strides: conv1d_weight_view.h) -> the B
// blocks in consumption order, zero past O_g, C_g and K. One thread per
// 16-byte row of a core matrix: [key][chunk][tap group][part][tap][kgroup][n] x 16 B, where a kgroup is
// the 16 bytes of channels (4 float32 or 8 16-bit) one core-matrix row holds. float32 becomes TF32
// (rounded) or, for 3xTF32, a TF32 high part and a TF32 low part (w - high).
// ---------------------------------------------------------------------------------------------------
struct RelayoutShape {
  int64_t total_rows;
  int o_tiles, chunks, tap_groups, parts, taps_per_stage, tile_n, chunk_channels;
  int in_channels_per_group, out_channels_per_group, kernel_size;
  int64_t weight_offset, group_stride, out_stride, in_stride, tap_stride;  // elements (WeightView)
};

template <typename Element, bool kSplit>
__global__ void relayout_weights(const Element* __restrict__ weight, uint4* __restrict__ blocks, RelayoutShape s) {
  constexpr int kPer16 = 16 / int(sizeof(Element));
  for (int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; row < s.total_rows;
       row += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = row;
    const int n = int(r % s.tile_n);
    r /= s.tile_n;
    const int kgroup = int(r % 4);
    r /= 4;
    const int tap_slot = int(r % s.taps_per_stage);
    r /= s.taps_per_stage;
    const int part = int(r % s.parts);
    r /= s.parts;
    const int tap_group = int(r % s.tap_groups);
    r /= s.tap_groups;
    const int chunk = int(r % s.chunks);
    const int64_t key = r / s.chunks;
    const int64_t group = key / s.o_tiles;
    const int o = int(key % s.o_tiles) * s.tile_n + n;
    const int tap = tap_group * s.taps_per_stage + tap_slot;
    alignas(16) Element values[kPer16];
#pragma unroll
    for (int e = 0; e < kPer16; ++e) {
      const int c = chunk * s.chunk_channels + kgroup * kPer16 + e;
      float v = 0.f;
      if (o < s.out_channels_per_group && c < s.in_channels_per_group && tap < s.kernel_size) {
        v = static_cast<float>(
            weight[s.weight_offset + group * s.group_stride + o * s.out_stride + c * s.in_stride + tap * s.tap_stride]);
      }
      if constexpr (std::is_same_v<Element, float>) {
        uint32_t bits;
        asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(bits) : "f"(v));  // TF32, or the high part of 3xTF32
        if (kSplit && part == 1) asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(bits) : "f"(v - __uint_as_float(bits)));
        values[e] = __uint_as_float(bits);
      } else {
        values[e] = static_cast<Element>(v);
      }
    }
    blocks[row] = *reinterpret_cast<const uint4*>(values);
  }
}

}  // namespace custom_ops::conv1d::cuda::hopper
