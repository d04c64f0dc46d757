#pragma once
// grad_weight kernels of custom::conv1d_backward beyond the CUDA-core tiled reduction:
//
//   grad_weight[o, c, k] = sum over n, l of gy[n, o, l] * x[n, group * C_g + c, l * stride + k * dilation - pad_left]
//
// * One input channel per group (depthwise, channel multipliers, single-channel front ends): each
//   block reduces a few output channels' K sums over (batch, a range of positions), a lane per
//   position, then a fixed-order block reduction (warp shuffles, then warps in order).
// * Tensor cores (TF32, float16, bfloat16): per group a GEMM D[o, c] = sum_l gy[o, l] * x[c, l*s + shift]
//   for each tap shift = k * dilation. A block stages 64 positions of its output channels of gy and the
//   matching input window of its input channels once, and every tap of its tap group is a shifted read
//   of that window (as in the forward). The reduction dimension is positions, so in mma words (mma_sm80.cuh) an
//   A word is one TF32 value or two consecutive positions of a gy row, and a B word the matching
//   inputs of an x row.
// Both write per-split partial sums (float32, or float64 for double) that sum_splits_kernel adds in a
// fixed order: results are bitwise reproducible.

#include "ops/conv1d/cuda/conv1d_row_loads.cuh"
#include "ops/conv1d/cuda/mma_sm80.cuh"

#include <cstdint>

namespace custom_ops::conv1d::cuda {

// The convolution's sizes as the backward kernels read them (all contiguous tensors).
struct BackwardShape {
  int64_t batch, in_channels, in_length, out_channels, out_length;
  int64_t in_channels_per_group, out_channels_per_group, kernel_size, stride, dilation, pad_left;
};

// ---------------------------------------------------------------------------------------------------
// One input channel per group. Grid: (chunk of kOuts output channels of one group, split of the
// positions, tap group). Each thread takes a position at a time: its kTaps input values are loaded once
// and serve all kOuts output channels (the strided front end's 512 channels share one input channel).
// Configurations (grad_weight_one_channel in the .cu): <4, 1> depthwise K <= 4, <8, 1> depthwise
// longer kernels, <16, 4> four or more output channels per group.
// ---------------------------------------------------------------------------------------------------
constexpr int kOneChannelThreads = 256;

template <typename scalar_t, typename acc_t, int kTaps, int kOuts>
__global__ void __launch_bounds__(kOneChannelThreads)
    grad_weight_one_channel_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ x,
                                   acc_t* __restrict__ workspace, const BackwardShape s,
                                   int64_t positions_per_split) {
  const int64_t O_g = s.out_channels_per_group;
  const int64_t chunks_per_group = (O_g + kOuts - 1) / kOuts;
  const int64_t group = blockIdx.x / chunks_per_group;
  const int64_t o_first = group * O_g + (blockIdx.x % chunks_per_group) * kOuts;  // global channel
  const int outs = static_cast<int>(min(int64_t(kOuts), (group + 1) * O_g - o_first));
  const int64_t split = blockIdx.y;
  const int k0 = blockIdx.z * kTaps;
  const int K = static_cast<int>(s.kernel_size);
  const int64_t c = group;  // the group's one input channel
  const int64_t l_begin = split * positions_per_split;
  const int64_t l_end = min(s.out_length, l_begin + positions_per_split);
  acc_t acc[kOuts][kTaps];
#pragma unroll
  for (int u = 0; u < kOuts; ++u)
#pragma unroll
    for (int kt = 0; kt < kTaps; ++kt) acc[u][kt] = 0;
  for (int64_t n = 0; n < s.batch; ++n) {
    const scalar_t* gy_rows = gy + (n * s.out_channels + o_first) * s.out_length;
    const scalar_t* x_row = x + (n * s.in_channels + c) * s.in_length;
    for (int64_t l = l_begin + threadIdx.x; l < l_end; l += kOneChannelThreads) {
      const int64_t p0 = l * s.stride + int64_t(k0) * s.dilation - s.pad_left;
      acc_t xv[kTaps];
#pragma unroll
      for (int kt = 0; kt < kTaps; ++kt) {
        const int64_t p = p0 + kt * s.dilation;
        xv[kt] = (k0 + kt < K && p >= 0 && p < s.in_length) ? static_cast<acc_t>(x_row[p]) : acc_t(0);
      }
#pragma unroll
      for (int u = 0; u < kOuts; ++u) {
        if (u >= outs) break;
        const acc_t g = static_cast<acc_t>(gy_rows[u * s.out_length + l]);
#pragma unroll
        for (int kt = 0; kt < kTaps; ++kt) acc[u][kt] += g * xv[kt];
      }
    }
  }
  // Fixed-order block reduction: shuffles within each warp, then the warps' sums in warp order.
  constexpr int kSums = kOuts * kTaps;
  __shared__ acc_t warp_sums[kOneChannelThreads / 32][kSums];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int u = 0; u < kOuts; ++u)
#pragma unroll
    for (int kt = 0; kt < kTaps; ++kt) {
      acc_t v = acc[u][kt];
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
      if (lane == 0) warp_sums[warp][u * kTaps + kt] = v;
    }
  __syncthreads();
  for (int e = threadIdx.x; e < kSums; e += kOneChannelThreads) {
    const int u = e / kTaps, k = k0 + e % kTaps;
    if (u >= outs || k >= K) continue;
    acc_t total = 0;
    for (int w = 0; w < kOneChannelThreads / 32; ++w) total += warp_sums[w][e];
    workspace[(split * s.out_channels + o_first + u) * K + k] = total;
  }
}

// ---------------------------------------------------------------------------------------------------
// Tensor cores. Grid: (channel tile, group x output-channel tile, split x tap group).
// A tile of kTileO output channels x kTileC input channels x kTaps taps; warp (warp_o, warp_c) owns
// kMT x kNT mma tiles of 16 x 8 for every tap. Two tiles (grad_weight_tensorcore in the .cu picks):
//   GradWeightTileLarge 64 x 64 x 4 taps, GradWeightTileSmall 32 x 32 x 8 taps (groups of <= 32
//   channels, which the large tile would fill to a quarter, with K <= 8 taps in one pass).
// ---------------------------------------------------------------------------------------------------
template <int WarpsO, int WarpsC, int MT, int NT, int Taps>
struct GradWeightTile {
  static constexpr int kWarpsO = WarpsO, kWarpsC = WarpsC, kMT = MT, kNT = NT, kTaps = Taps;
  static constexpr int kThreads = 32 * WarpsO * WarpsC;
  static constexpr int kTileO = WarpsO * MT * 16, kTileC = WarpsC * NT * 8;
  static constexpr int kChunk = 64;       // positions a stage holds
  static constexpr int kMaxWindow = 192;  // staged input positions per row (stride <= 2, short halos)
  // Two blocks per SM (128 registers): with one, the 8 warps left the issue slots 25% busy (b4).
  static constexpr int kMinBlocks = 2;
};
using GradWeightTileLarge = GradWeightTile<2, 4, 2, 2, 4>;
using GradWeightTileSmall = GradWeightTile<2, 4, 1, 1, 8>;

struct GradWeightTensorCoreArgs {
  int o_tiles, tap_groups;
  int64_t chunks_per_row, total_chunks, chunks_per_split;
  int window;             // input positions a tap group reads per channel row and chunk
  int gy_pitch, x_pitch;  // row pitches in elements (whole 16-byte vectors)
  bool gy_vector_loads, x_vector_loads;  // rows start on 16-byte boundaries: 16-byte loads allowed
};

// As staged: float32 rounded to TF32 once (as the tensor cores read it), 16-bit types as they are.
template <typename scalar_t>
__device__ __forceinline__ uint4 operand_vector(uint4 v) {
  if constexpr (sizeof(scalar_t) == 4) {
    v.x = round_to_tf32(__uint_as_float(v.x));
    v.y = round_to_tf32(__uint_as_float(v.y));
    v.z = round_to_tf32(__uint_as_float(v.z));
    v.w = round_to_tf32(__uint_as_float(v.w));
  }
  return v;
}

template <typename scalar_t, typename Tile>
__global__ void __launch_bounds__(Tile::kThreads, Tile::kMinBlocks)
    grad_weight_tensorcore_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ x,
                                  float* __restrict__ workspace, const BackwardShape s,
                                  const GradWeightTensorCoreArgs a) {
  constexpr int kPerWord = 4 / int(sizeof(scalar_t));
  constexpr int kVec = kStageVec<scalar_t>;              // elements per 16-byte staging vector
  constexpr int kSteps = Tile::kChunk / (8 * kPerWord);  // mma k-steps per chunk
  constexpr int kThreads = Tile::kThreads, kMT = Tile::kMT, kNT = Tile::kNT, kTaps = Tile::kTaps;
  // Staging: one item = one 16-byte vector of a row. All of a thread's loads of a batch are issued
  // before its first shared store, so a batch costs one memory round trip (b2), and 16-byte loads make
  // a quarter (float32) or an eighth (16-bit) of the load instructions of element loads (b3).
  constexpr int kGyVectors = Tile::kChunk / kVec;
  constexpr int kGyRounds = (Tile::kTileO * kGyVectors + kThreads - 1) / kThreads;
  constexpr int kMaxXVectors = (Tile::kMaxWindow + kVec - 1) / kVec + 1;  // + 1: alignment
  // x rounds staged per batch (one memory round trip each): few enough registers for two blocks per
  // SM (b4). The headline's window (64 channels x 66 positions) takes 1 batch in 16-bit, 2 in float32.
  constexpr int kXBatch = 3;
  static_assert(Tile::kTileC * kMaxXVectors < (1 << 12), "the reciprocal division below stays exact");
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  scalar_t* gy_s = reinterpret_cast<scalar_t*>(shared_bytes);  // [kTileO][gy_pitch]
  scalar_t* x_s = gy_s + Tile::kTileO * a.gy_pitch;            // [kTileC][x_pitch]

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int warp_o = warp / Tile::kWarpsC, warp_c = warp % Tile::kWarpsC;
  const int g = lane / 4, t = lane % 4;
  const int K = static_cast<int>(s.kernel_size), stride = static_cast<int>(s.stride);
  const int dilation = static_cast<int>(s.dilation);
  const int64_t C_g = s.in_channels_per_group, O_g = s.out_channels_per_group;
  const int group = blockIdx.y / a.o_tiles;
  const int o0 = (blockIdx.y % a.o_tiles) * Tile::kTileO, c0 = blockIdx.x * Tile::kTileC;
  const int64_t split = blockIdx.z / a.tap_groups;
  const int k0 = (blockIdx.z % a.tap_groups) * kTaps;
  const int64_t q_begin = split * a.chunks_per_split;
  const int64_t q_end = min(a.total_chunks, q_begin + a.chunks_per_split);
  // x item i -> (row i / vectors, vector i % vectors), the division as a multiply by a rounded-up
  // reciprocal (exact for i < 2^12, vectors < 2^8).
  const int x_vectors = (kVec - 1 + a.window + kVec - 1) / kVec;
  const uint32_t x_reciprocal = ((1u << 20) + x_vectors - 1) / x_vectors;
  const int x_items = Tile::kTileC * x_vectors;

  float acc[kTaps][kMT][kNT][4] = {};
  for (int64_t q = q_begin; q < q_end; ++q) {
    const int64_t n = q / a.chunks_per_row, l0 = (q % a.chunks_per_row) * Tile::kChunk;
    const int64_t begin = l0 * stride + int64_t(k0) * dilation - s.pad_left;
    const int64_t aligned = floor_to_multiple(begin, kVec);  // a whole vector at or below begin
    const int delta = static_cast<int>(begin - aligned);
    uint4 gy_v[kGyRounds], x_v[kXBatch];
#pragma unroll
    for (int r = 0; r < kGyRounds; ++r) {
      const int i = threadIdx.x + r * kThreads;
      const int row = i / kGyVectors, v = i % kGyVectors;
      const int64_t o = o0 + row;
      const scalar_t* src = (row < Tile::kTileO && o < O_g)
                                ? gy + (n * s.out_channels + group * O_g + o) * s.out_length
                                : nullptr;
      gy_v[r] = load_row_vector(src, l0 + v * kVec, s.out_length, 1, a.gy_vector_loads);
    }
    // x in batches of kXBatch rounds; the first batch travels with gy.
    auto load_x = [&](int first_round) {
#pragma unroll
      for (int r = 0; r < kXBatch; ++r) {
        const int i = threadIdx.x + (first_round + r) * kThreads;
        if (i >= x_items) break;
        const int row = int((uint32_t(i) * x_reciprocal) >> 20), v = i - row * x_vectors;
        const int64_t c = c0 + row;
        const scalar_t* src = c < C_g ? x + (n * s.in_channels + group * C_g + c) * s.in_length : nullptr;
        x_v[r] = load_row_vector(src, aligned + v * kVec, s.in_length, 1, a.x_vector_loads);
      }
    };
    auto store_x = [&](int first_round) {
#pragma unroll
      for (int r = 0; r < kXBatch; ++r) {
        const int i = threadIdx.x + (first_round + r) * kThreads;
        if (i >= x_items) break;
        const int row = int((uint32_t(i) * x_reciprocal) >> 20), v = i - row * x_vectors;
        *reinterpret_cast<uint4*>(x_s + row * a.x_pitch + v * kVec) = operand_vector<scalar_t>(x_v[r]);
      }
    };
    load_x(0);
    __syncthreads();  // the previous chunk is no longer read
#pragma unroll
    for (int r = 0; r < kGyRounds; ++r) {
      const int i = threadIdx.x + r * kThreads;
      const int row = i / kGyVectors, v = i % kGyVectors;
      if (row < Tile::kTileO) *reinterpret_cast<uint4*>(gy_s + row * a.gy_pitch + v * kVec) = operand_vector<scalar_t>(gy_v[r]);
    }
    store_x(0);
    for (int first_round = kXBatch; first_round * kThreads < x_items; first_round += kXBatch) {
      load_x(first_round);
      store_x(first_round);
    }
    __syncthreads();

#pragma unroll
    for (int step = 0; step < kSteps; ++step) {
      const int w = step * 8 + t;  // this lane's first word of the step
      uint32_t af[kMT][4];
#pragma unroll
      for (int i = 0; i < kMT; ++i) {
        const scalar_t* row = gy_s + (warp_o * kMT * 16 + i * 16 + g) * a.gy_pitch;
        af[i][0] = *reinterpret_cast<const uint32_t*>(row + w * kPerWord);
        af[i][1] = *reinterpret_cast<const uint32_t*>(row + 8 * a.gy_pitch + w * kPerWord);
        af[i][2] = *reinterpret_cast<const uint32_t*>(row + (w + 4) * kPerWord);
        af[i][3] = *reinterpret_cast<const uint32_t*>(row + 8 * a.gy_pitch + (w + 4) * kPerWord);
      }
#pragma unroll
      for (int kt = 0; kt < kTaps; ++kt) {
        if (k0 + kt >= K) break;  // block-uniform
        const int shift = delta + kt * dilation;
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
          const scalar_t* row = x_s + (warp_c * kNT * 8 + j * 8 + g) * a.x_pitch + shift;
          uint32_t bf[2];
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int word = w + 4 * h;
            if constexpr (kPerWord == 1) {
              bf[h] = __float_as_uint(static_cast<float>(row[word * stride]));
            } else {
              const uint32_t lo = reinterpret_cast<const uint16_t*>(row)[(2 * word) * stride];
              const uint32_t hi = reinterpret_cast<const uint16_t*>(row)[(2 * word + 1) * stride];
              bf[h] = lo | (hi << 16);
            }
          }
#pragma unroll
          for (int i = 0; i < kMT; ++i) MmaOp<scalar_t>::run(acc[kt][i][j], af[i], bf);
        }
      }
    }
  }

  const int64_t columns = C_g * K;
  float* out = workspace + split * s.out_channels * columns;
#pragma unroll
  for (int kt = 0; kt < kTaps; ++kt) {
    const int k = k0 + kt;
    if (k >= K) break;
#pragma unroll
    for (int i = 0; i < kMT; ++i)
#pragma unroll
      for (int j = 0; j < kNT; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int64_t o = o0 + warp_o * kMT * 16 + i * 16 + g + (r / 2) * 8;
          const int64_t c = c0 + warp_c * kNT * 8 + j * 8 + 2 * t + (r % 2);
          if (o < O_g && c < C_g) out[(group * O_g + o) * columns + c * K + k] = acc[kt][i][j][r];
        }
  }
}

}  // namespace custom_ops::conv1d::cuda
