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
//
// Short filters at unit stride and dilation (K <= 4, the causal-conv1d shapes) take a sliding-window
// variant instead (conv1d_depthwise_sliding_kernel): ncu showed the kernel above issue-bound (77-81% of
// issue slots busy, DRAM 30-62%) at K + 1 instructions per output for the K scalar shared loads and
// FMAs. There thread i owns kPerThread consecutive outputs, reads their inputs and halo with a few
// 16-byte shared loads into registers and slides the K taps over them (K compile-time), and tiles
// are shifted so that every window starts on a 16-byte boundary.

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
  int tile_shift;                       // sliding variant: tile t starts at output t * kTileL - tile_shift
};

template <int Threads, int PerThread>
struct DepthwiseConfig {
  static constexpr int kThreads = Threads, kPerThread = PerThread, kTileL = Threads * PerThread;
};

// window[i] = x[first + i] for i < args.window (first a whole number of 16-byte vectors from the row
// start; zeros outside the input), in the accumulation type, loaded 16 bytes at a time where allowed.
template <int kThreads, typename scalar_t, typename acc_t>
__device__ __forceinline__ void stage_window(acc_t* window, const scalar_t* x, int64_t first,
                                             const DepthwiseArgs<scalar_t>& args) {
  constexpr int kVec = 16 / sizeof(scalar_t);
  for (int v = threadIdx.x; v * kVec < args.window; v += kThreads) {
    const int64_t p = first + int64_t(v) * kVec;
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
}

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
    stage_window<kThreads>(window, x, aligned, args);
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

// ---------------------------------------------------------------------------------------------------
// Sliding-window variant: stride 1, dilation 1, K = kTaps. Tile t covers outputs
// [t * kTileL - tile_shift, ...), with tile_shift chosen so that its first input position
// (l0 - pad_left) is a whole number of 16-byte vectors: the staging stores and the window reads are
// then all aligned vectors.
// ---------------------------------------------------------------------------------------------------
template <typename scalar_t, typename acc_t, typename Config, int kTaps>
__global__ void __launch_bounds__(Config::kThreads)
    conv1d_depthwise_sliding_kernel(const DepthwiseArgs<scalar_t> args) {
  constexpr int kThreads = Config::kThreads, kPerThread = Config::kPerThread, kTileL = Config::kTileL;
  constexpr int kVec = 16 / sizeof(scalar_t);           // input elements per 16-byte global load
  constexpr int kReadVec = 16 / sizeof(acc_t);          // window elements per 16-byte shared load
  constexpr int kSpan = (kPerThread + kTaps - 1 + kReadVec - 1) / kReadVec * kReadVec;  // read per thread
  static_assert(kPerThread % kReadVec == 0, "each thread's window starts on a 16-byte boundary");
  static_assert(kSpan <= 16, "depthwise_sliding_window() leaves the last thread 16 positions to read");
  extern __shared__ __align__(16) unsigned char window_bytes[];
  acc_t* window = reinterpret_cast<acc_t*>(window_bytes);  // [args.window], then the outputs [kTileL]
  acc_t* out_tile = window + args.window;

  for (int64_t tile = blockIdx.x; tile < args.total_tiles; tile += gridDim.x) {
    int64_t rest = tile;
    const int64_t l0 = (rest % args.length_tiles) * kTileL - args.tile_shift;
    rest /= args.length_tiles;
    const int64_t run = rest % args.channel_runs;
    rest /= args.channel_runs;
    const int64_t group = rest % args.groups;
    const int64_t n = rest / args.groups;
    const int64_t begin = l0 - args.pad_left;  // a multiple of kVec (tile_shift)
    const scalar_t* x = args.input + n * args.input_stride_n + group * args.input_stride_c;

    __syncthreads();  // the previous tile's window and outputs are no longer read
    stage_window<kThreads>(window, x, begin, args);
    __syncthreads();

    // This thread's inputs: positions begin + kPerThread * threadIdx.x + [0, kSpan).
    acc_t in[kSpan];
#pragma unroll
    for (int i = 0; i < kSpan; i += kReadVec) {
      *reinterpret_cast<uint4*>(&in[i]) = *reinterpret_cast<const uint4*>(&window[threadIdx.x * kPerThread + i]);
    }
    // Outputs of the tile that exist: [i_begin, i_end) of [0, kTileL).
    const int i_begin = l0 < 0 ? int(-l0) : 0;
    const int i_end = args.out_length - l0 < kTileL ? int(args.out_length - l0) : kTileL;
    const int64_t o_begin = run * args.run_length;
    const int64_t o_end = o_begin + args.run_length < args.out_channels_per_group ? o_begin + args.run_length
                                                                                    : args.out_channels_per_group;
    for (int64_t o = o_begin; o < o_end; ++o) {
      const int64_t oc = group * args.out_channels_per_group + o;
      acc_t w[kTaps];
#pragma unroll
      for (int k = 0; k < kTaps; ++k) w[k] = static_cast<acc_t>(args.weight[oc * kTaps + k]);
      const acc_t bias = args.bias ? static_cast<acc_t>(args.bias[oc]) : acc_t(0);
      acc_t acc[kPerThread];
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        acc[j] = bias;
#pragma unroll
        for (int k = 0; k < kTaps; ++k) acc[j] += w[k] * in[j + k];
      }
      // Through shared memory to the output, so that a warp's stores are consecutive: stored straight
      // from registers (kPerThread apart per lane) they took 8x the memory transactions (v9, 2.3x slower).
      if (o != o_begin) __syncthreads();  // the previous channel's outputs have been stored
#pragma unroll
      for (int j = 0; j < kPerThread; j += kReadVec) {
        *reinterpret_cast<uint4*>(&out_tile[threadIdx.x * kPerThread + j]) = *reinterpret_cast<const uint4*>(&acc[j]);
      }
      __syncthreads();
      // 32-bit offsets within the tile: 64-bit index math per output was most of the issued
      // instructions (ncu, v10: issue slots 66-75% busy).
      scalar_t* y = args.output + (n * args.out_channels + oc) * args.out_length + l0;
      if (i_begin == 0 && i_end == kTileL) {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) {
          const int i = threadIdx.x + j * kThreads;
          y[i] = static_cast<scalar_t>(out_tile[i]);
        }
      } else {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) {
          const int i = threadIdx.x + j * kThreads;
          if (i >= i_begin && i < i_end) y[i] = static_cast<scalar_t>(out_tile[i]);
        }
      }
    }
  }
}

}  // namespace custom_ops::conv1d::cuda
