#pragma once
// grad_weight kernels of custom::conv1d_backward beyond the CUDA-core tiled reduction:
//
//   grad_weight[o, c, k] = sum over n, l of gy[n, o, l] * x[n, group * C_g + c, l * stride + k * dilation - pad_left]
//
// * One input channel per group (depthwise, channel multipliers): each block reduces one output
//   channel's K sums over (batch, a range of positions), a lane per position, then a fixed-order
//   block reduction (warp shuffles, then warps in order).
// * Tensor cores (TF32, float16, bfloat16): per group a GEMM D[o, c] = sum_l gy[o, l] * x[c, l*s + shift]
//   for each tap shift = k * dilation. A block stages 64 positions of 64 output channels of gy and the
//   matching input window of 64 channels once, and every tap of its tap group is a shifted read of that
//   window (as in the forward). The reduction dimension is positions, so in mma words (mma_sm80.cuh) an
//   A word is one TF32 value or two consecutive positions of a gy row, and a B word the matching
//   inputs of an x row.
// Both write per-split partial sums (float32, or float64 for double) that sum_splits_kernel adds in a
// fixed order: results are bitwise reproducible.

#include "ops/conv1d/cuda/mma_sm80.cuh"

#include <cstdint>

namespace custom_ops::conv1d::cuda {

// The convolution's sizes as the backward kernels read them (all contiguous tensors).
struct BackwardShape {
  int64_t batch, in_channels, in_length, out_channels, out_length;
  int64_t in_channels_per_group, out_channels_per_group, kernel_size, stride, dilation, pad_left;
};

// ---------------------------------------------------------------------------------------------------
// One input channel per group. Grid: (output channel, split of the positions, tap group).
// ---------------------------------------------------------------------------------------------------
constexpr int kOneChannelThreads = 256, kOneChannelTaps = 8;

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kOneChannelThreads)
    grad_weight_one_channel_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ x,
                                   acc_t* __restrict__ workspace, const BackwardShape s,
                                   int64_t positions_per_split) {
  const int64_t o = blockIdx.x, split = blockIdx.y;
  const int k0 = blockIdx.z * kOneChannelTaps;
  const int K = static_cast<int>(s.kernel_size);
  const int64_t c = o / s.out_channels_per_group;  // the group's one input channel
  const int64_t l_begin = split * positions_per_split;
  const int64_t l_end = min(s.out_length, l_begin + positions_per_split);
  acc_t acc[kOneChannelTaps];
#pragma unroll
  for (int kt = 0; kt < kOneChannelTaps; ++kt) acc[kt] = 0;
  for (int64_t n = 0; n < s.batch; ++n) {
    const scalar_t* gy_row = gy + (n * s.out_channels + o) * s.out_length;
    const scalar_t* x_row = x + (n * s.in_channels + c) * s.in_length;
    for (int64_t l = l_begin + threadIdx.x; l < l_end; l += kOneChannelThreads) {
      const acc_t g = static_cast<acc_t>(gy_row[l]);
      const int64_t p0 = l * s.stride + int64_t(k0) * s.dilation - s.pad_left;
#pragma unroll
      for (int kt = 0; kt < kOneChannelTaps; ++kt) {
        const int64_t p = p0 + kt * s.dilation;
        if (k0 + kt < K && p >= 0 && p < s.in_length) acc[kt] += g * static_cast<acc_t>(x_row[p]);
      }
    }
  }
  // Fixed-order block reduction: shuffles within each warp, then the warps' sums in warp order.
  __shared__ acc_t warp_sums[kOneChannelThreads / 32][kOneChannelTaps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int kt = 0; kt < kOneChannelTaps; ++kt) {
    acc_t v = acc[kt];
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (lane == 0) warp_sums[warp][kt] = v;
  }
  __syncthreads();
  if (threadIdx.x < kOneChannelTaps && k0 + int(threadIdx.x) < K) {
    acc_t total = 0;
    for (int w = 0; w < kOneChannelThreads / 32; ++w) total += warp_sums[w][threadIdx.x];
    workspace[(split * s.out_channels + o) * K + k0 + threadIdx.x] = total;
  }
}

// ---------------------------------------------------------------------------------------------------
// Tensor cores. Grid: (channel tile, group x output-channel tile, split x tap group).
// ---------------------------------------------------------------------------------------------------
struct GradWeightTensorCore {
  static constexpr int kTileO = 64, kTileC = 64, kChunk = 64, kThreads = 256, kTaps = 4;
  static constexpr int kMaxWindow = 192;  // staged input positions per row (stride <= 2, short halos)
  static constexpr int kWarpsO = 2, kWarpsC = 4, kMT = 2, kNT = 2;  // warp tile 32 x 16
};

struct GradWeightTensorCoreArgs {
  int o_tiles, tap_groups;
  int64_t chunks_per_row, total_chunks, chunks_per_split;
  int window;           // staged input positions per channel row
  int gy_pitch, x_pitch;  // row pitches in elements
};

template <typename scalar_t>
__device__ __forceinline__ scalar_t operand_value(scalar_t v) {
  return v;
}
template <>
__device__ __forceinline__ float operand_value<float>(float v) {  // staged as TF32 (rounded once)
  return __uint_as_float(round_to_tf32(v));
}

template <typename scalar_t>
__global__ void __launch_bounds__(GradWeightTensorCore::kThreads)
    grad_weight_tensorcore_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ x,
                                  float* __restrict__ workspace, const BackwardShape s,
                                  const GradWeightTensorCoreArgs a) {
  using T = GradWeightTensorCore;
  constexpr int kPerWord = 4 / int(sizeof(scalar_t));
  constexpr int kSteps = T::kChunk / (8 * kPerWord);  // mma k-steps per chunk
  constexpr int kWarps = T::kThreads / 32;
  constexpr int kGyRowsPerWarp = T::kTileO / kWarps, kGyIters = T::kChunk / 32;
  constexpr int kXRowsPerWarp = T::kTileC / kWarps, kXIters = (T::kMaxWindow + 31) / 32;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  scalar_t* gy_s = reinterpret_cast<scalar_t*>(shared_bytes);  // [kTileO][gy_pitch]
  scalar_t* x_s = gy_s + T::kTileO * a.gy_pitch;                // [kTileC][x_pitch]

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int warp_o = warp / T::kWarpsC, warp_c = warp % T::kWarpsC;
  const int g = lane / 4, t = lane % 4;
  const int K = static_cast<int>(s.kernel_size), stride = static_cast<int>(s.stride);
  const int dilation = static_cast<int>(s.dilation);
  const int64_t C_g = s.in_channels_per_group, O_g = s.out_channels_per_group;
  const int group = blockIdx.y / a.o_tiles;
  const int o0 = (blockIdx.y % a.o_tiles) * T::kTileO, c0 = blockIdx.x * T::kTileC;
  const int64_t split = blockIdx.z / a.tap_groups;
  const int k0 = (blockIdx.z % a.tap_groups) * T::kTaps;
  const int64_t q_begin = split * a.chunks_per_split;
  const int64_t q_end = min(a.total_chunks, q_begin + a.chunks_per_split);

  float acc[T::kTaps][T::kMT][T::kNT][4] = {};
  for (int64_t q = q_begin; q < q_end; ++q) {
    const int64_t n = q / a.chunks_per_row, l0 = (q % a.chunks_per_row) * T::kChunk;
    // Stage the chunk: every load of a thread is issued before its first shared store, so a stage
    // costs one memory round trip (v2: load -> store pairs in a loop waited for each load in turn,
    // ~40 round trips a stage; ncu: 9.9 of 16 cycles per issue on the L1TEX scoreboard).
    scalar_t gy_v[kGyRowsPerWarp][kGyIters], x_v[kXRowsPerWarp][kXIters];
#pragma unroll
    for (int r = 0; r < kGyRowsPerWarp; ++r) {
      const int64_t o = o0 + warp + r * kWarps;
      const scalar_t* src = gy + (n * s.out_channels + group * O_g + o) * s.out_length;
#pragma unroll
      for (int it = 0; it < kGyIters; ++it) {
        const int64_t l = l0 + lane + it * 32;
        gy_v[r][it] = (o < O_g && l < s.out_length) ? src[l] : scalar_t(0);
      }
    }
    const int64_t begin = l0 * stride + int64_t(k0) * dilation - s.pad_left;
#pragma unroll
    for (int r = 0; r < kXRowsPerWarp; ++r) {
      const int64_t c = c0 + warp + r * kWarps;
      const scalar_t* src = x + (n * s.in_channels + group * C_g + c) * s.in_length;
#pragma unroll
      for (int it = 0; it < kXIters; ++it) {
        const int col = lane + it * 32;
        const int64_t p = begin + col;
        x_v[r][it] = (c < C_g && col < a.window && p >= 0 && p < s.in_length) ? src[p] : scalar_t(0);
      }
    }
    __syncthreads();  // the previous chunk is no longer read
#pragma unroll
    for (int r = 0; r < kGyRowsPerWarp; ++r)
#pragma unroll
      for (int it = 0; it < kGyIters; ++it) {
        gy_s[(warp + r * kWarps) * a.gy_pitch + lane + it * 32] = operand_value<scalar_t>(gy_v[r][it]);
      }
#pragma unroll
    for (int r = 0; r < kXRowsPerWarp; ++r)
#pragma unroll
      for (int it = 0; it < kXIters; ++it) {
        const int col = lane + it * 32;
        if (col < a.window) x_s[(warp + r * kWarps) * a.x_pitch + col] = operand_value<scalar_t>(x_v[r][it]);
      }
    __syncthreads();

#pragma unroll
    for (int step = 0; step < kSteps; ++step) {
      const int w = step * 8 + t;  // this lane's first word of the step
      uint32_t af[T::kMT][4];
#pragma unroll
      for (int i = 0; i < T::kMT; ++i) {
        const scalar_t* row = gy_s + (warp_o * 32 + i * 16 + g) * a.gy_pitch;
        af[i][0] = *reinterpret_cast<const uint32_t*>(row + w * kPerWord);
        af[i][1] = *reinterpret_cast<const uint32_t*>(row + 8 * a.gy_pitch + w * kPerWord);
        af[i][2] = *reinterpret_cast<const uint32_t*>(row + (w + 4) * kPerWord);
        af[i][3] = *reinterpret_cast<const uint32_t*>(row + 8 * a.gy_pitch + (w + 4) * kPerWord);
      }
#pragma unroll
      for (int kt = 0; kt < T::kTaps; ++kt) {
        if (k0 + kt >= K) break;  // block-uniform
        const int shift = kt * dilation;
#pragma unroll
        for (int j = 0; j < T::kNT; ++j) {
          const scalar_t* row = x_s + (warp_c * 16 + j * 8 + g) * a.x_pitch + shift;
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
          for (int i = 0; i < T::kMT; ++i) MmaOp<scalar_t>::run(acc[kt][i][j], af[i], bf);
        }
      }
    }
  }

  const int64_t columns = C_g * K;
  float* out = workspace + split * s.out_channels * columns;
#pragma unroll
  for (int kt = 0; kt < T::kTaps; ++kt) {
    const int k = k0 + kt;
    if (k >= K) break;
#pragma unroll
    for (int i = 0; i < T::kMT; ++i)
#pragma unroll
      for (int j = 0; j < T::kNT; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int64_t o = o0 + warp_o * 32 + i * 16 + g + (r / 2) * 8;
          const int64_t c = c0 + warp_c * 16 + j * 8 + 2 * t + (r % 2);
          if (o < O_g && c < C_g) out[(group * O_g + o) * columns + c * K + k] = acc[kt][i][j][r];
        }
  }
}

}  // namespace custom_ops::conv1d::cuda
