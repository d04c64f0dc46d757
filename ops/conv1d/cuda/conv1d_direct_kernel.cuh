#pragma once
// General CUDA kernel of custom::conv1d: a tiled implicit GEMM on CUDA cores, for every dtype, stride,
// padding, dilation, group count and kernel size. It is the fallback the fast kernels stand on.
//
// View the convolution of one (batch n, group g) as a matrix product:
//   Y[o, l] = sum_r W[o, r] * X[r, l],   r = c * K + k  (the "reduction" index, C_g * K of them)
// where W is the weight of the group, contiguous as (O_g, C_g * K), and X[r, l] = x[n, c, l*stride +
// k*dilation - pad_left] (zero outside the input) is never materialised. A block owns a tile of
// kTileO output channels x kTileL positions and walks the reduction in chunks of kChunk rows: it stages
// the weight chunk (transposed) and the gathered input chunk in shared memory, then every thread
// updates a kRegsO x kRegsL register tile of accumulators. The global loads of the next chunk are
// issued before the current chunk is computed, so their latency hides behind the arithmetic. Shared
// memory is bounded by the tile, whatever the stride, dilation or kernel size. Blocks loop over tiles
// (a persistent grid), positions fastest, so neighbouring blocks share weights and input halos in L2.
//
// Thread (o_lane, l_lane) owns channels o(i) and positions l(j) interleaved in 16-byte groups:
//   l(j) = (j / kVecL) * (kThreadsL * kVecL) + l_lane * kVecL + j % kVecL
// so its shared-memory reads are 16-byte vectors and a warp's reads are contiguous (no bank
// conflicts), and its stores of kVecL consecutive outputs coalesce across the warp.

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

// Tile shape: threads along O and L, accumulators per thread along O and L, reduction rows per chunk.
// MinBlocks: blocks per SM the register allocation must allow (__launch_bounds__).
template <int ThreadsO, int ThreadsL, int RegsO, int RegsL, int Chunk, int MinBlocks>
struct DirectConvConfig {
  static constexpr int kThreadsO = ThreadsO, kThreadsL = ThreadsL, kRegsO = RegsO, kRegsL = RegsL;
  static constexpr int kChunk = Chunk, kMinBlocks = MinBlocks;
  static constexpr int kThreads = kThreadsO * kThreadsL;
  static constexpr int kTileO = kThreadsO * kRegsO;
  static constexpr int kTileL = kThreadsL * kRegsL;
  static_assert(kThreadsL % 32 == 0 || 32 % kThreadsL == 0, "a warp spans whole rows of l_lanes");
  static_assert(kChunk <= kThreads, "one thread per reduction row builds the row table");
};

// 16-byte (or narrower) vector of N accumulators in shared memory.
template <typename T, int N>
struct SharedVec;
template <typename T>
struct SharedVec<T, 1> {
  __device__ static void load(T* dst, const T* src) { dst[0] = src[0]; }
};
template <>
struct SharedVec<float, 2> {
  __device__ static void load(float* dst, const float* src) {
    const float2 v = *reinterpret_cast<const float2*>(src);
    dst[0] = v.x, dst[1] = v.y;
  }
};
template <>
struct SharedVec<float, 4> {
  __device__ static void load(float* dst, const float* src) {
    const float4 v = *reinterpret_cast<const float4*>(src);
    dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
  }
};
template <>
struct SharedVec<double, 2> {
  __device__ static void load(double* dst, const double* src) {
    const double2 v = *reinterpret_cast<const double2*>(src);
    dst[0] = v.x, dst[1] = v.y;
  }
};

constexpr int vector_width(int regs, int bytes) { return regs < 16 / bytes ? regs : 16 / bytes; }

template <typename scalar_t, typename acc_t, typename Config>
__global__ void __launch_bounds__(Config::kThreads, Config::kMinBlocks)
    conv1d_direct_kernel(const DirectConvArgs<scalar_t> args) {
  constexpr int kThreads = Config::kThreads, kTileO = Config::kTileO, kTileL = Config::kTileL;
  constexpr int kThreadsO = Config::kThreadsO, kThreadsL = Config::kThreadsL;
  constexpr int kRegsO = Config::kRegsO, kRegsL = Config::kRegsL, kChunk = Config::kChunk;
  constexpr int kVecO = vector_width(kRegsO, sizeof(acc_t)), kVecL = vector_width(kRegsL, sizeof(acc_t));
  static_assert(kRegsO % kVecO == 0 && kRegsL % kVecL == 0, "whole vectors per thread");
  constexpr int kPad = 16 / sizeof(acc_t);  // keeps rows 16-byte aligned and spreads the staging stores
  // Staging loads per thread and chunk (the last round may be partial).
  constexpr int kWeightElems = kChunk * kTileO, kInputElems = kChunk * kTileL;
  constexpr int kWeightLoads = (kWeightElems + kThreads - 1) / kThreads;
  constexpr int kInputLoads = (kInputElems + kThreads - 1) / kThreads;

  __shared__ __align__(16) acc_t weight_tile[kChunk][kTileO + kPad];  // transposed: [r][o]
  __shared__ __align__(16) acc_t input_tile[kChunk][kTileL];
  // Per reduction row of a chunk: input offset of its channel (-1 past the reduction) and its tap's
  // shift k * dilation - pad_left. Double-buffered: the next chunk's table is built while the current
  // one is still being read.
  __shared__ int64_t row_offset[2][kChunk];
  __shared__ int64_t row_shift[2][kChunk];

  const int o_lane = threadIdx.x / kThreadsL;
  const int l_lane = threadIdx.x % kThreadsL;
  // The reduction (C_g * K) fits in 32 bits (checked on the host); positions and offsets are 64-bit.
  const int K = static_cast<int>(args.kernel_size);
  const int64_t C_g = args.in_channels_per_group, O_g = args.out_channels_per_group;
  const int reduction = static_cast<int>(C_g * K);
  const int chunks = (reduction + kChunk - 1) / kChunk;

  auto build_row_table = [&](int chunk) {
    if (threadIdx.x < kChunk) {
      const int r = chunk * kChunk + threadIdx.x;
      const int c = r / K, k = r - c * K;
      row_offset[chunk & 1][threadIdx.x] = r < reduction ? c * args.input_stride_c : -1;
      row_shift[chunk & 1][threadIdx.x] = int64_t(k) * args.dilation - args.pad_left;
    }
  };

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

    // Global loads of one chunk into registers, kept in the input dtype: converting them here would
    // make the thread wait for each load at once (for 16-bit types), instead of at the next chunk's
    // staging. Weights: consecutive threads read consecutive r of one output channel. Input:
    // consecutive threads read consecutive positions of one (c, k) row.
    scalar_t weight_next[kWeightLoads], input_next[kInputLoads];
    auto fetch = [&](int chunk) {
      const int r0 = chunk * kChunk;
#pragma unroll
      for (int q = 0; q < kWeightLoads; ++q) {
        const int i = threadIdx.x + q * kThreads;
        if (kWeightElems % kThreads != 0 && i >= kWeightElems) break;
        const int r = r0 + i % kChunk;
        const int64_t o = o0 + i / kChunk;
        weight_next[q] = (r < reduction && o < O_g) ? w[o * reduction + r] : scalar_t(0);
      }
#pragma unroll
      for (int q = 0; q < kInputLoads; ++q) {
        const int i = threadIdx.x + q * kThreads;
        if (kInputElems % kThreads != 0 && i >= kInputElems) break;
        const int rr = i / kTileL, ll = i % kTileL;
        const int64_t offset = row_offset[chunk & 1][rr];
        const int64_t p = (l0 + ll) * args.stride + row_shift[chunk & 1][rr];
        input_next[q] = (offset >= 0 && p >= 0 && p < args.in_length) ? x[offset + p * args.input_stride_l]
                                                                       : scalar_t(0);
      }
    };

    acc_t acc[kRegsO][kRegsL];
#pragma unroll
    for (int i = 0; i < kRegsO; ++i)
#pragma unroll
      for (int j = 0; j < kRegsL; ++j) acc[i][j] = acc_t(0);

    __syncthreads();  // the previous tile's last chunk is no longer being read
    build_row_table(0);
    __syncthreads();
    fetch(0);
    for (int chunk = 0; chunk < chunks; ++chunk) {
      __syncthreads();  // everyone is done computing on the previous chunk
#pragma unroll
      for (int q = 0; q < kWeightLoads; ++q) {
        const int i = threadIdx.x + q * kThreads;
        if (kWeightElems % kThreads != 0 && i >= kWeightElems) break;
        weight_tile[i % kChunk][i / kChunk] = static_cast<acc_t>(weight_next[q]);
      }
#pragma unroll
      for (int q = 0; q < kInputLoads; ++q) {
        const int i = threadIdx.x + q * kThreads;
        if (kInputElems % kThreads != 0 && i >= kInputElems) break;
        input_tile[i / kTileL][i % kTileL] = static_cast<acc_t>(input_next[q]);
      }
      if (chunk + 1 < chunks) build_row_table(chunk + 1);
      __syncthreads();
      if (chunk + 1 < chunks) fetch(chunk + 1);  // in flight while this chunk is computed
#pragma unroll
      for (int rr = 0; rr < kChunk; ++rr) {
        acc_t a[kRegsO], b[kRegsL];
#pragma unroll
        for (int v = 0; v < kRegsO / kVecO; ++v) {
          SharedVec<acc_t, kVecO>::load(a + v * kVecO, &weight_tile[rr][v * kThreadsO * kVecO + o_lane * kVecO]);
        }
#pragma unroll
        for (int v = 0; v < kRegsL / kVecL; ++v) {
          SharedVec<acc_t, kVecL>::load(b + v * kVecL, &input_tile[rr][v * kThreadsL * kVecL + l_lane * kVecL]);
        }
#pragma unroll
        for (int i = 0; i < kRegsO; ++i)
#pragma unroll
          for (int j = 0; j < kRegsL; ++j) acc[i][j] += a[i] * b[j];
      }
    }

    // Epilogue: bias while the outputs are still in registers.
#pragma unroll
    for (int i = 0; i < kRegsO; ++i) {
      const int64_t o = o0 + (i / kVecO) * kThreadsO * kVecO + o_lane * kVecO + i % kVecO;
      if (o >= O_g) continue;
      const int64_t oc = group * O_g + o;
      const acc_t bias = args.bias ? static_cast<acc_t>(args.bias[oc]) : acc_t(0);
      scalar_t* y = args.output + (n * args.out_channels + oc) * args.out_length;
#pragma unroll
      for (int j = 0; j < kRegsL; ++j) {
        const int64_t l = l0 + (j / kVecL) * kThreadsL * kVecL + l_lane * kVecL + j % kVecL;
        if (l < args.out_length) y[l] = static_cast<scalar_t>(acc[i][j] + bias);
      }
    }
  }
}

}  // namespace custom_ops::conv1d::cuda
