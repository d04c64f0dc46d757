#pragma once
// Memory-bound kernel of custom::conv1d for one input channel per group (depthwise, and depthwise with a
// channel multiplier such as a 1 -> 512 front end): any kernel size, padding, stride and dilation.
//
// A block owns (batch n, group, a run of output channels of that group, kTileL positions). It stages
// the input window of the tile (positions l0 * stride - pad_left ... plus the halo) in shared memory
// once, with 16-byte loads, and then computes the run of output channels from it, so the input is read
// from memory once per tile whatever the channel multiplier. Thread i computes positions
// i, i + kThreads, ... (kPerThread of them): a warp's shared-memory reads and global stores are then
// consecutive. Accumulation in float32 (float64 for double); bias added before the single store.

#include <cstdint>

namespace custom_ops::conv1d::cuda {

template <typename scalar_t>
struct DepthwiseArgs {
  const scalar_t* __restrict__ input;   // (N, C, L), any strides
  const scalar_t* __restrict__ weight;  // contiguous (O, 1, K)
  const scalar_t* __restrict__ bias;    // (O,) or nullptr
  scalar_t* __restrict__ output;        // contiguous (N, O, L_out)
  int64_t input_stride_n, input_stride_c, input_stride_l;
  int64_t in_length, out_length;
  int64_t out_channels, groups, out_channels_per_group;
  int64_t kernel_size, stride, dilation, pad_left;
  int64_t channel_runs, run_length;     // runs of output channels per group, channels per run
  int64_t length_tiles, total_tiles;
  int window;                           // staged positions per tile (a multiple of 16 bytes)
  bool vector_loads;                    // input rows contiguous and 16-byte aligned
};

template <int Threads, int PerThread>
struct DepthwiseConfig {
  static constexpr int kThreads = Threads, kPerThread = PerThread, kTileL = Threads * PerThread;
};

template <typename scalar_t, typename acc_t, typename Config>
__global__ void __launch_bounds__(Config::kThreads) conv1d_depthwise_kernel(const DepthwiseArgs<scalar_t> args) {
  constexpr int kThreads = Config::kThreads, kPerThread = Config::kPerThread, kTileL = Config::kTileL;
  constexpr int kVec = 16 / sizeof(scalar_t);
  extern __shared__ __align__(16) unsigned char window_bytes[];
  // The window is kept in the accumulation type: each element is converted once, not once per tap.
  acc_t* window = reinterpret_cast<acc_t*>(window_bytes);
  const int K = static_cast<int>(args.kernel_size), dilation = static_cast<int>(args.dilation);
  const int stride = static_cast<int>(args.stride), step = kThreads * stride;

  for (int64_t tile = blockIdx.x; tile < args.total_tiles; tile += gridDim.x) {
    int64_t rest = tile;
    const int64_t l0 = (rest % args.length_tiles) * kTileL;
    rest /= args.length_tiles;
    const int64_t run = rest % args.channel_runs;
    rest /= args.channel_runs;
    const int64_t group = rest % args.groups;
    const int64_t n = rest / args.groups;

    const int64_t begin = l0 * args.stride - args.pad_left;
    const int64_t r = begin % kVec;
    const int64_t aligned = begin - (r < 0 ? r + kVec : r);
    const int delta = static_cast<int>(begin - aligned);
    const scalar_t* x = args.input + n * args.input_stride_n + group * args.input_stride_c;

    __syncthreads();  // the previous tile's window is no longer read
    for (int v = threadIdx.x; v * kVec < args.window; v += kThreads) {
      const int64_t p = aligned + int64_t(v) * kVec;
      union {
        uint4 raw;
        scalar_t e[kVec];
      } u;
      if (args.vector_loads && p >= 0 && p + kVec <= args.in_length) {
        u.raw = *reinterpret_cast<const uint4*>(x + p);
      } else {
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const int64_t q = p + j;
          u.e[j] = (q >= 0 && q < args.in_length) ? x[q * args.input_stride_l] : scalar_t(0);
        }
      }
#pragma unroll
      for (int j = 0; j < kVec; ++j) window[v * kVec + j] = static_cast<acc_t>(u.e[j]);
    }
    __syncthreads();

    const int64_t o_begin = run * args.run_length;
    const int64_t o_end = o_begin + args.run_length < args.out_channels_per_group ? o_begin + args.run_length
                                                                                    : args.out_channels_per_group;
    for (int64_t o = o_begin; o < o_end; ++o) {
      const int64_t oc = group * args.out_channels_per_group + o;
      const scalar_t* w = args.weight + oc * args.kernel_size;
      acc_t acc[kPerThread];
      const acc_t bias = args.bias ? static_cast<acc_t>(args.bias[oc]) : acc_t(0);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) acc[j] = bias;
      const acc_t* base = window + delta + threadIdx.x * stride;  // 32-bit offsets: the window is small
      for (int k = 0; k < K; ++k) {
        const acc_t wk = static_cast<acc_t>(w[k]);
        const acc_t* tap = base + k * dilation;
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) acc[j] += wk * tap[j * step];
      }
      scalar_t* y = args.output + (n * args.out_channels + oc) * args.out_length + l0 + threadIdx.x;
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        if (l0 + threadIdx.x + j * kThreads < args.out_length) y[j * kThreads] = static_cast<scalar_t>(acc[j]);
      }
    }
  }
}

}  // namespace custom_ops::conv1d::cuda
