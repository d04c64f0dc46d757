#pragma once
// General CUDA kernel of custom::conv1d: a tiled implicit GEMM on CUDA cores, for every dtype, stride,
// padding, dilation, group count and kernel size. It is the fallback the fast kernels stand on.
//
// View the convolution of one (batch n, group g) as a matrix product:
//   Y[o, l] = sum_r W[o, r] * X[r, l],   r = c * K + k  (the "reduction" index, C_g * K of them)
// where W is the weight of the group, contiguous as (O_g, C_g * K), and X[r, l] = x[n, c, l*stride +
// k*dilation - pad_left] (zero outside the input) is never materialised. A block owns a tile of
// kTileO output channels x kTileL positions and walks the reduction in chunks of kChunkR: it stages the
// weight chunk (transposed) and the gathered input chunk in shared memory, then every thread updates a
// kRegsO x kRegsL register tile of accumulators. Shared memory is bounded by the tile, whatever the
// stride, dilation or kernel size. Blocks loop over tiles (a persistent grid), positions fastest, so
// neighbouring blocks share weights and input halos in L2.

#include <cstdint>

namespace custom_ops::conv1d::cuda {

template <typename scalar_t>
struct DirectConvArgs {
  const scalar_t* __restrict__ input;   // (N, C, L), any strides
  const scalar_t* __restrict__ weight;  // contiguous (O, C_g, K)
  const scalar_t* __restrict__ bias;    // (O,) or nullptr
  scalar_t* __restrict__ output;        // contiguous (N, O, L_out)
  int64_t input_stride_n, input_stride_c, input_stride_l;
  int64_t in_length, out_length;
  int64_t in_channels_per_group, out_channels_per_group, out_channels, groups;
  int64_t kernel_size, stride, dilation, pad_left;
  int64_t out_tiles, length_tiles, total_tiles;  // tiles per group along O, along L, and in all
};

template <int kThreadsO, int kThreadsL, int kRegsO, int kRegsL, int kChunkR>
struct DirectConvConfig {
  static constexpr int kThreads = kThreadsO * kThreadsL;
  static constexpr int kTileO = kThreadsO * kRegsO;
  static constexpr int kTileL = kThreadsL * kRegsL;
  static constexpr int kThreadsOv = kThreadsO, kThreadsLv = kThreadsL, kRegsOv = kRegsO, kRegsLv = kRegsL;
  static constexpr int kChunk = kChunkR;
};

template <typename scalar_t, typename acc_t, typename Config>
__global__ void __launch_bounds__(Config::kThreads)
    conv1d_direct_kernel(const DirectConvArgs<scalar_t> args) {
  constexpr int kThreads = Config::kThreads, kTileO = Config::kTileO, kTileL = Config::kTileL;
  constexpr int kThreadsL = Config::kThreadsLv, kRegsO = Config::kRegsOv, kRegsL = Config::kRegsLv;
  constexpr int kChunk = Config::kChunk;
  __shared__ acc_t weight_tile[kChunk][kTileO];  // transposed: one reduction row holds all channels
  __shared__ acc_t input_tile[kChunk][kTileL];
  __shared__ int64_t row_offset[kChunk];  // input offset of the row's channel, -1 past the reduction
  __shared__ int64_t row_shift[kChunk];   // k * dilation - pad_left

  // Within a warp all threads share o_lane (kThreadsL >= 32): weight reads are broadcasts and input
  // reads are consecutive, so neither has bank conflicts.
  const int o_lane = threadIdx.x / kThreadsL;
  const int l_lane = threadIdx.x % kThreadsL;
  // The reduction (C_g * K) fits in 32 bits (checked on the host); positions and offsets are 64-bit.
  const int K = static_cast<int>(args.kernel_size);
  const int64_t C_g = args.in_channels_per_group, O_g = args.out_channels_per_group;
  const int reduction = static_cast<int>(C_g * K);

  for (int64_t tile = blockIdx.x; tile < args.total_tiles; tile += gridDim.x) {
    int64_t rest = tile;
    const int64_t l_tile = rest % args.length_tiles;
    rest /= args.length_tiles;
    const int64_t o_tile = rest % args.out_tiles;
    rest /= args.out_tiles;
    const int64_t group = rest % args.groups;
    const int64_t n = rest / args.groups;
    const int64_t l0 = l_tile * kTileL;
    const int64_t o0 = o_tile * kTileO;  // within the group
    const scalar_t* x = args.input + n * args.input_stride_n + group * C_g * args.input_stride_c;
    const scalar_t* w = args.weight + (group * O_g) * reduction;

    acc_t acc[kRegsO][kRegsL];
#pragma unroll
    for (int i = 0; i < kRegsO; ++i)
#pragma unroll
      for (int j = 0; j < kRegsL; ++j) acc[i][j] = acc_t(0);

    for (int r0 = 0; r0 < reduction; r0 += kChunk) {
      // Where each reduction row of the chunk reads: channel offset and tap shift, computed once per
      // chunk so the gather below needs no division.
      if (threadIdx.x < kChunk) {
        const int r = r0 + threadIdx.x;
        const int c = r / K, k = r - c * K;
        row_offset[threadIdx.x] = r < reduction ? c * args.input_stride_c : -1;
        row_shift[threadIdx.x] = k * args.dilation - args.pad_left;
      }
      // Weight chunk: consecutive threads read consecutive r of one output channel (coalesced).
      for (int i = threadIdx.x; i < kChunk * kTileO; i += kThreads) {
        const int rr = i % kChunk, oo = i / kChunk;
        const int r = r0 + rr;
        const int64_t o = o0 + oo;
        weight_tile[rr][oo] = (r < reduction && o < O_g) ? static_cast<acc_t>(w[o * reduction + r]) : acc_t(0);
      }
      __syncthreads();
      // Input chunk: consecutive threads read consecutive positions of one (c, k) row.
      for (int i = threadIdx.x; i < kChunk * kTileL; i += kThreads) {
        const int rr = i / kTileL, ll = i % kTileL;
        const int64_t p = (l0 + ll) * args.stride + row_shift[rr];
        acc_t v = acc_t(0);
        if (row_offset[rr] >= 0 && p >= 0 && p < args.in_length) {
          v = static_cast<acc_t>(x[row_offset[rr] + p * args.input_stride_l]);
        }
        input_tile[rr][ll] = v;
      }
      __syncthreads();
#pragma unroll
      for (int rr = 0; rr < kChunk; ++rr) {
        acc_t a[kRegsO], b[kRegsL];
#pragma unroll
        for (int i = 0; i < kRegsO; ++i) a[i] = weight_tile[rr][o_lane * kRegsO + i];
#pragma unroll
        for (int j = 0; j < kRegsL; ++j) b[j] = input_tile[rr][l_lane + j * kThreadsL];
#pragma unroll
        for (int i = 0; i < kRegsO; ++i)
#pragma unroll
          for (int j = 0; j < kRegsL; ++j) acc[i][j] += a[i] * b[j];
      }
      __syncthreads();
    }

    // Epilogue: bias while the outputs are still in registers; consecutive lanes write consecutive
    // positions.
#pragma unroll
    for (int i = 0; i < kRegsO; ++i) {
      const int64_t o = o0 + o_lane * kRegsO + i;
      if (o >= O_g) continue;
      const int64_t oc = group * O_g + o;
      const acc_t b = args.bias ? static_cast<acc_t>(args.bias[oc]) : acc_t(0);
      scalar_t* y = args.output + (n * args.out_channels + oc) * args.out_length;
#pragma unroll
      for (int j = 0; j < kRegsL; ++j) {
        const int64_t l = l0 + l_lane + j * kThreadsL;
        if (l < args.out_length) y[l] = static_cast<scalar_t>(acc[i][j] + b);
      }
    }
  }
}

}  // namespace custom_ops::conv1d::cuda
