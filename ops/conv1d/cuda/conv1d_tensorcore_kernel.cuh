#pragma once
// Tensor-core kernel of custom::conv1d: an implicit GEMM on mma.sync for float32 (TF32, or 3xTF32 for
// full float32 accuracy), float16 and bfloat16, with float32 accumulation.
//
// For one (batch n, group): Y[o, l] = sum_{k, c} W[o, c, k] * x[c, l * stride + k * dilation - pad_left].
// The reduction is walked chunk by chunk (kChunkWords operand words of channels, all K taps each):
//   * the input of a chunk is staged in shared memory once per tile, with its halo: rows = channel
//     words, columns = a window of input positions; the K taps are K shifted reads of that window, so
//     the input is read from memory once, not K times (no im2col);
//   * the weights are re-laid out once per call (prepare_weight_fragments) in the exact order the
//     warps consume them, so each lane fetches its A fragment with one 16-byte load; when a block
//     tile's fragments fit beside the stages they are copied to shared memory once per (group,
//     channel tile) the block meets (the whole run on the headline shape), else read through L1/L2;
//   * stage s + 1 is loaded into registers while stage s is computed (double-buffered shared memory,
//     one barrier per stage), and the grid is persistent (one block per SM slot, looping over tiles).
// Known limit (bench/NOTES.md, v4-v7): the register-staged prefetch is one stage deep, and ncu shows
// the warps waiting on it (long-scoreboard stalls); cp.async / TMA stages are the next step.
// A block owns kTileO output channels x kTileL positions; warp (warp_o, warp_l) owns a kMT x kNT grid
// of 16 x 8 mma tiles. Bias is added in the epilogue while the outputs are in registers.
//
// Operand words (see mma_sm80.cuh): float32 -> one TF32 value per word; 16-bit -> a channel pair
// (2w, 2w + 1) at one position per word, so both the weight and the input fragments are single 32-bit
// shared/global loads for every dtype.

#include "ops/conv1d/cuda/conv1d_row_loads.cuh"
#include "ops/conv1d/cuda/mma_sm80.cuh"

#include <cstdint>

namespace custom_ops::conv1d::cuda {

template <typename scalar_t>
struct TensorCoreArgs {
  const scalar_t* __restrict__ input;  // (N, C, L), any strides
  const uint4* __restrict__ weight_fragments;  // from prepare_weight_fragments
  const scalar_t* __restrict__ bias;   // (O,) or nullptr
  scalar_t* __restrict__ output;       // contiguous (N, O, L_out)
  int64_t input_stride_n, input_stride_c, input_stride_l;
  int64_t in_length, out_length;
  int in_channels_per_group, out_channels_per_group, out_channels, groups;
  int kernel_size, stride, dilation, pad_left;
  int channel_words;   // ceil(C_g / channels per word)
  int chunks;          // ceil(channel_words / kChunkWords)
  int m_tiles;         // 16-row weight tiles per group, padded to whole block tiles
  int out_tiles;       // block tiles per group along O
  int64_t length_tiles, total_tiles;
  bool vector_loads;   // input rows are contiguous and 16-byte aligned
  // The fragments of one block tile's output channels (all chunks, taps and steps) fit in shared
  // memory after the stages: they are copied there once per (group, channel tile) a block meets.
  bool weights_resident;
};

// Warps along O and L, 16 x 8 mma tiles per warp along O (MT) and L (NT), operand words per chunk,
// input window (positions) a stage holds, blocks per SM for __launch_bounds__.
template <int WarpsO, int WarpsL, int MT, int NT, int ChunkWords, int Window, int MinBlocks>
struct TensorCoreConfig {
  static constexpr int kWarpsO = WarpsO, kWarpsL = WarpsL, kMT = MT, kNT = NT;
  static constexpr int kThreads = 32 * WarpsO * WarpsL;
  static constexpr int kTileO = WarpsO * MT * 16, kTileL = WarpsL * NT * 8;
  static constexpr int kChunkWords = ChunkWords, kWindow = Window, kMinBlocks = MinBlocks;
  // Row pitch = 8 (mod 32) words: the 4 rows x 8 positions a B fragment load touches hit 32 banks.
  static constexpr int kPitch = Window + 8;
  static constexpr int kStageWords = ChunkWords * kPitch;
  static constexpr int kSharedBytes = 2 * kStageWords * 4;  // the stages; resident weights come after
  static_assert(ChunkWords % 8 == 0 && Window % 8 == 0 && kPitch % 32 == 8, "fragment-friendly layout");
  static_assert(Window > kTileL, "the window holds the tile and its halo");
};

// Elements of scalar_t per operand word (kStageVec, the positions one staging item loads per row, is in
// conv1d_row_loads.cuh).
template <typename scalar_t>
constexpr int kElemsPerWord = 4 / int(sizeof(scalar_t));

// Weight parts per fragment: 3xTF32 keeps a TF32 high part and a TF32 low part (w - high).
template <bool kSplit>
constexpr int kWeightParts = kSplit ? 2 : 1;

// ---------------------------------------------------------------------------------------------------
// Weights -> fragments. Index (group, m_tile, chunk, tap, word step, part, lane) -> uint4 of the four
// A words of that lane (zero past O_g or C_g). One thread per (fragment, lane).
// ---------------------------------------------------------------------------------------------------
template <typename scalar_t, int ChunkWords, bool kSplit>
__global__ void prepare_weight_fragments(const scalar_t* __restrict__ weight, uint4* __restrict__ fragments,
                                         int groups, int m_tiles, int chunks, int kernel_size,
                                         int in_channels_per_group, int out_channels_per_group) {
  constexpr int kSteps = ChunkWords / 8, kParts = kWeightParts<kSplit>, kPerWord = kElemsPerWord<scalar_t>;
  const int64_t total = int64_t(groups) * m_tiles * chunks * kernel_size * kSteps * 32;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int lane = int(i % 32);
    int64_t rest = i / 32;
    const int step = int(rest % kSteps);
    rest /= kSteps;
    const int tap = int(rest % kernel_size);
    rest /= kernel_size;
    const int chunk = int(rest % chunks);
    rest /= chunks;
    const int m_tile = int(rest % m_tiles);
    const int group = int(rest / m_tiles);
    uint32_t hi[4], lo[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int o = m_tile * 16 + lane / 4 + (j & 1) * 8;
      const int word = chunk * ChunkWords + step * 8 + lane % 4 + (j >> 1) * 4;
      auto value = [&](int c) -> float {
        if (o >= out_channels_per_group || c >= in_channels_per_group) return 0.f;
        return static_cast<float>(
            weight[((int64_t(group) * out_channels_per_group + o) * in_channels_per_group + c) * kernel_size + tap]);
      };
      if constexpr (kPerWord == 1) {
        const float v = value(word);
        hi[j] = round_to_tf32(v);
        lo[j] = round_to_tf32(v - __uint_as_float(hi[j]));
      } else {
        const scalar_t a = static_cast<scalar_t>(value(2 * word)), b = static_cast<scalar_t>(value(2 * word + 1));
        hi[j] = uint32_t(a.x) | (uint32_t(b.x) << 16);
        lo[j] = 0;
      }
    }
    const int64_t fragment = i / 32;
    fragments[(fragment * kParts) * 32 + lane] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
    if constexpr (kParts == 2) fragments[(fragment * kParts + 1) * 32 + lane] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
  }
}

// ---------------------------------------------------------------------------------------------------
// Staging: one item = kStageVec consecutive positions of one operand-word row.
// ---------------------------------------------------------------------------------------------------
template <typename scalar_t>
struct StageItem {
  uint4 raw[kElemsPerWord<scalar_t>];  // the row(s) of the item, in the input dtype
};

// Writes an item as operand words: float32 -> TF32-rounded (or raw for 3xTF32, split at use);
// 16-bit -> channel pairs interleaved per position.
template <typename scalar_t, bool kSplit>
__device__ __forceinline__ void store_item(uint32_t* dst, const StageItem<scalar_t>& item) {
  if constexpr (kElemsPerWord<scalar_t> == 1) {
    uint4 v = item.raw[0];
    if constexpr (!kSplit) {
      v.x = round_to_tf32(__uint_as_float(v.x));
      v.y = round_to_tf32(__uint_as_float(v.y));
      v.z = round_to_tf32(__uint_as_float(v.z));
      v.w = round_to_tf32(__uint_as_float(v.w));
    }
    *reinterpret_cast<uint4*>(dst) = v;
  } else {
    const uint4 a = item.raw[0], b = item.raw[1];  // even channel, odd channel; 8 positions each
    *reinterpret_cast<uint4*>(dst) = make_uint4(__byte_perm(a.x, b.x, 0x5410), __byte_perm(a.x, b.x, 0x7632),
                                                __byte_perm(a.y, b.y, 0x5410), __byte_perm(a.y, b.y, 0x7632));
    *reinterpret_cast<uint4*>(dst + 4) = make_uint4(__byte_perm(a.z, b.z, 0x5410), __byte_perm(a.z, b.z, 0x7632),
                                                    __byte_perm(a.w, b.w, 0x5410), __byte_perm(a.w, b.w, 0x7632));
  }
}

template <int M, int N>
__device__ __forceinline__ void set_zero(float (&acc)[M][N][4]) {
#pragma unroll
  for (int i = 0; i < M; ++i)
#pragma unroll
    for (int j = 0; j < N; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;
}

template <typename scalar_t, typename Config, bool kSplit>
__global__ void __launch_bounds__(Config::kThreads, Config::kMinBlocks)
    conv1d_tensorcore_kernel(const TensorCoreArgs<scalar_t> args) {
  constexpr int kThreads = Config::kThreads, kMT = Config::kMT, kNT = Config::kNT;
  constexpr int kChunkWords = Config::kChunkWords, kPitch = Config::kPitch, kTileL = Config::kTileL;
  constexpr int kVec = kStageVec<scalar_t>, kPerWord = kElemsPerWord<scalar_t>;
  constexpr int kParts = kWeightParts<kSplit>, kSteps = kChunkWords / 8;
  constexpr int kItemCapacity = kChunkWords * (Config::kWindow / kVec);
  constexpr int kLoadRounds = (kItemCapacity + kThreads - 1) / kThreads;

  extern __shared__ __align__(16) uint32_t stage_words[];  // [2][kChunkWords][kPitch], then weights
  uint4* resident_fragments = reinterpret_cast<uint4*>(stage_words + 2 * Config::kStageWords);

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int warp_o = warp / Config::kWarpsL, warp_l = warp % Config::kWarpsL;
  const int g = lane / 4, t = lane % 4;
  const int K = args.kernel_size, stride = args.stride, dilation = args.dilation;
  const int chunks = args.chunks;
  // Input positions a tile's window must cover, before alignment.
  const int span = (kTileL - 1) * stride + (K - 1) * dilation + 1;

  // The block's stages: (tile, chunk) pairs, tiles strided by the grid. A stage's coordinates are
  // worked out once, when its loads are issued, and kept until it is computed.
  struct Stage {
    const scalar_t* x;  // input of (n, group, first channel of the chunk)
    int64_t n, l0, aligned;  // aligned: first staged position (a whole 16-byte vector)
    int group, o0, chunk, delta, vectors, rows;  // delta: first needed position - aligned
  };
  auto decode = [&](int64_t tile, int chunk) {
    Stage st;
    int64_t rest = tile;
    int64_t l_tile;
    int o_tile;
    if (tile < (int64_t{1} << 31)) {  // 32-bit divisions where they suffice (all but huge tensors)
      const uint32_t r32 = uint32_t(tile), lt = uint32_t(args.length_tiles);
      l_tile = r32 % lt;
      uint32_t q = r32 / lt;
      o_tile = int(q % uint32_t(args.out_tiles));
      q /= uint32_t(args.out_tiles);
      st.group = int(q % uint32_t(args.groups));
      st.n = q / uint32_t(args.groups);
    } else {
      l_tile = rest % args.length_tiles;
      rest /= args.length_tiles;
      o_tile = int(rest % args.out_tiles);
      rest /= args.out_tiles;
      st.group = int(rest % args.groups);
      st.n = rest / args.groups;
    }
    st.l0 = l_tile * kTileL;
    st.o0 = o_tile * Config::kTileO;
    st.chunk = chunk;
    const int64_t begin = st.l0 * stride - args.pad_left;
    st.aligned = floor_to_multiple(begin, kVec);
    st.delta = int(begin - st.aligned);
    st.vectors = (st.delta + span + kVec - 1) / kVec;
    st.rows = min(kChunkWords, args.channel_words - chunk * kChunkWords);
    st.x = args.input + st.n * args.input_stride_n +
           (int64_t(st.group) * args.in_channels_per_group + int64_t(chunk) * kChunkWords * kPerWord) *
               args.input_stride_c;
    return st;
  };
  // Item i of a stage is (row i / vectors, vector i % vectors); the division as a multiply by a
  // rounded-up reciprocal, exact for i < kItemCapacity (checked below).
  static_assert(kItemCapacity < (1 << 12) && kItemCapacity * (Config::kWindow / kVec) < (1 << 20),
                "the reciprocal division stays exact and within 32 bits");
  auto split_item = [](int i, int vectors, int& row, int& v) {
    const uint32_t reciprocal = ((1u << 20) + vectors - 1) / vectors;
    row = int((uint32_t(i) * reciprocal) >> 20);
    v = i - row * vectors;
  };

  StageItem<scalar_t> items[kLoadRounds];
  auto fetch = [&](const Stage& st) {
    const int channels_here = args.in_channels_per_group - st.chunk * kChunkWords * kPerWord;
#pragma unroll
    for (int q = 0; q < kLoadRounds; ++q) {
      const int i = threadIdx.x + q * kThreads;
      int row, v;
      split_item(i, st.vectors, row, v);
      if (row >= kChunkWords) break;
      const int64_t p = st.aligned + v * kVec;
#pragma unroll
      for (int e = 0; e < kPerWord; ++e) {
        const int channel = row * kPerWord + e;  // within the chunk
        const scalar_t* row_ptr = channel < channels_here ? st.x + channel * args.input_stride_c : nullptr;
        items[q].raw[e] = load_row_vector(row_ptr, p, args.in_length, args.input_stride_l, args.vector_loads);
      }
    }
  };
  auto stage_in = [&](const Stage& st, uint32_t* words) {
#pragma unroll
    for (int q = 0; q < kLoadRounds; ++q) {
      const int i = threadIdx.x + q * kThreads;
      int row, v;
      split_item(i, st.vectors, row, v);
      if (row >= kChunkWords) break;
      store_item<scalar_t, kSplit>(words + row * kPitch + v * kVec, items[q]);
    }
  };

  float acc[kMT][kNT][4];
  // 3xTF32 only: products of the last few steps, before a correctly rounded add into acc.
  constexpr int kFlushSteps = 4;
  float partial[kSplit ? kMT : 1][kSplit ? kNT : 1][4];
  if constexpr (kSplit) set_zero(partial);

  int resident_key = -1;  // (group, channel tile) whose weights are in shared memory
  int64_t next_tile = blockIdx.x;
  int next_chunk = 0;
  Stage next = decode(next_tile, 0);
  if (next_tile < args.total_tiles) fetch(next);
  for (int64_t stage = 0; next_tile < args.total_tiles; ++stage) {
    const Stage c = next;
    uint32_t* words = stage_words + (stage & 1) * Config::kStageWords;
    const int64_t m_tile_stride = int64_t(chunks) * K * kSteps * kParts * 32;  // uint4 per 16-row tile
    const int64_t tile_fragments = (Config::kTileO / 16) * m_tile_stride;
    const uint4* tile_weights =
        args.weight_fragments + (int64_t(c.group) * args.m_tiles + c.o0 / 16) * m_tile_stride;
    if (args.weights_resident && c.chunk == 0) {
      const int key = c.group * args.out_tiles + c.o0 / Config::kTileO;
      if (key != resident_key) {  // block-uniform
        __syncthreads();  // nobody still reads the previous tile's weights
        for (int64_t i = threadIdx.x; i < tile_fragments; i += kThreads) resident_fragments[i] = tile_weights[i];
        resident_key = key;  // visible to all after the barrier below
      }
    }
    stage_in(c, words);
    __syncthreads();  // the stage is in shared memory; the buffer written next was last read a stage ago
    if (++next_chunk == chunks) next_chunk = 0, next_tile += gridDim.x;
    if (next_tile < args.total_tiles) {
      next = decode(next_tile, next_chunk);
      fetch(next);  // in flight while this stage computes
    }

    const int chunk = c.chunk, delta = c.delta;
    if (chunk == 0) set_zero(acc);

    // Word steps of this chunk that hold channels (the last chunk may be partial).
    const int word_steps = (c.rows + 7) / 8;
    // A fragments from shared memory when resident, else from global memory (L1/L2).
    const uint4* a_ptr = (args.weights_resident ? resident_fragments : tile_weights) +
                         warp_o * kMT * m_tile_stride + int64_t(chunk) * K * kSteps * kParts * 32 + lane;
    const uint32_t* b_tap = words + t * kPitch + delta + (warp_l * kNT * 8 + g) * stride;
    const int b_step = 8 * stride;  // positions between the 8-column mma tiles of a warp
    int kstep = 0;
    for (int tap = 0; tap < K; ++tap, b_tap += dilation, a_ptr += kSteps * kParts * 32) {
      for (int step = 0; step < word_steps; ++step, ++kstep) {
        uint32_t a[kMT][kParts][4];
#pragma unroll
        for (int i = 0; i < kMT; ++i)
#pragma unroll
          for (int part = 0; part < kParts; ++part) {
            const uint4 v = a_ptr[step * kParts * 32 + i * m_tile_stride + part * 32];
            a[i][part][0] = v.x, a[i][part][1] = v.y, a[i][part][2] = v.z, a[i][part][3] = v.w;
          }
        const uint32_t* b_row = b_tap + step * 8 * kPitch;
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
          const uint32_t b0 = b_row[j * b_step], b1 = b_row[4 * kPitch + j * b_step];
          if constexpr (kSplit) {
            const uint32_t b_hi[2] = {round_to_tf32(__uint_as_float(b0)), round_to_tf32(__uint_as_float(b1))};
            const uint32_t b_lo[2] = {round_to_tf32(__uint_as_float(b0) - __uint_as_float(b_hi[0])),
                                      round_to_tf32(__uint_as_float(b1) - __uint_as_float(b_hi[1]))};
#pragma unroll
            for (int i = 0; i < kMT; ++i) {  // small products first, then the large one
              MmaOp<scalar_t>::run(partial[i][j], a[i][1], b_hi);
              MmaOp<scalar_t>::run(partial[i][j], a[i][0], b_lo);
              MmaOp<scalar_t>::run(partial[i][j], a[i][0], b_hi);
            }
          } else {
            const uint32_t b[2] = {b0, b1};
#pragma unroll
            for (int i = 0; i < kMT; ++i) MmaOp<scalar_t>::run(acc[i][j], a[i][0], b);
          }
        }
        if constexpr (kSplit) {
          // The tensor cores' float32 adds truncate; over long reductions that bias reaches ~1e-5.
          // Each few steps' partial sum is therefore folded into acc with a correctly rounded add.
          if ((kstep % kFlushSteps) == kFlushSteps - 1 || (tap + 1 == K && step + 1 == word_steps)) {
#pragma unroll
            for (int i = 0; i < kMT; ++i)
#pragma unroll
              for (int j = 0; j < kNT; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) acc[i][j][r] += partial[i][j][r], partial[i][j][r] = 0.f;
          }
        }
      }
    }

    if (chunk + 1 == chunks) {  // epilogue: bias, convert, store
      const bool pair_stores = (args.out_length % 2) == 0;
#pragma unroll
      for (int i = 0; i < kMT; ++i)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int o = c.o0 + (warp_o * kMT + i) * 16 + g + half * 8;
          if (o >= args.out_channels_per_group) continue;
          const int oc = c.group * args.out_channels_per_group + o;
          const float bias = args.bias ? static_cast<float>(args.bias[oc]) : 0.f;
          scalar_t* y = args.output + (c.n * args.out_channels + oc) * args.out_length;
#pragma unroll
          for (int j = 0; j < kNT; ++j) {
            const int64_t l = c.l0 + (warp_l * kNT + j) * 8 + 2 * t;
            const scalar_t v0 = static_cast<scalar_t>(acc[i][j][half * 2] + bias);
            const scalar_t v1 = static_cast<scalar_t>(acc[i][j][half * 2 + 1] + bias);
            if (pair_stores && l + 1 < args.out_length) {
              struct alignas(2 * sizeof(scalar_t)) Pair {
                scalar_t a, b;
              };
              *reinterpret_cast<Pair*>(y + l) = Pair{v0, v1};
            } else {
              if (l < args.out_length) y[l] = v0;
              if (l + 1 < args.out_length) y[l + 1] = v1;
            }
          }
        }
    }
  }
}

}  // namespace custom_ops::conv1d::cuda
