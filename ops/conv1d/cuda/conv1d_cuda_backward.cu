// CUDA kernels of custom::conv1d_backward (grad_input runs on the forward kernels, see
// conv1d_backward_cuda.cpp, except for one input channel per group with several output channels:
// grad_input_one_channel_kernel, launched by grad_input_one_channel):
//   * grad_weight: split across blocks into a float32 (float64) workspace and summed over the splits in
//     a fixed order by a second kernel, so the result is bitwise the same on every run (no atomics),
//     deterministic mode or not. Which kernel fills the workspace is the backward table's choice
//     (select_grad_weight in conv1d_cuda_backward_dispatch.cpp): grad_weight_one_channel_kernel,
//     grad_weight_tensorcore_kernel (small or large tile) or grad_weight_split_kernel (CUDA cores).

#include "ops/conv1d/cuda/conv1d_cuda_launch.h"
#include "ops/conv1d/cuda/conv1d_grad_input_kernels.cuh"
#include "ops/conv1d/cuda/conv1d_grad_weight_kernels.cuh"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <numeric>

namespace custom_ops::conv1d::cuda {

// The backward table decides with these kernels' constants.
static_assert(GradInputOneChannel::kThreads == GradInputOneChannelLimits::kThreads &&
              GradInputOneChannel::kItems == GradInputOneChannelLimits::kItems &&
              GradInputOneChannel::kOutsPerStage == GradInputOneChannelLimits::kOutsPerStage &&
              GradInputOneChannel::kMaxStride == GradInputOneChannelLimits::kMaxStride);
template <typename Tile>
constexpr bool matches(const GradWeightTileLimits& limits) {
  return Tile::kTileO == limits.tile_o && Tile::kTileC == limits.tile_c && Tile::kTaps == limits.taps &&
         Tile::kChunk == GradWeightTileLimits::kChunk && Tile::kMaxWindow == GradWeightTileLimits::kMaxWindow;
}
static_assert(matches<GradWeightTileLarge>(kGradWeightTileLarge) && matches<GradWeightTileSmall>(kGradWeightTileSmall));

namespace {

BackwardShape backward_shape(const Geometry& g) {
  return {g.batch,          g.in_channels, g.in_length,      g.out_channels,
          g.out_length,     g.in_channels_per_group(), g.out_channels_per_group(),
          g.kernel_size,    g.stride,      g.dilation,       g.pad_left};
}

// grad_weight as a GEMM per group: rows o (kTileO a block), columns j = (c, k) (kTileJ a block),
// reduction over r = (n, l), in chunks of kChunk staged in shared memory; blockIdx.z is the split
// of the reduction, written to workspace[split][o][j].
constexpr int kTileO = 64, kTileJ = 64, kChunk = 16, kThreads = 256;  // 16 x 16 threads of 4 x 4

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    grad_weight_split_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ x,
                             acc_t* __restrict__ workspace, const BackwardShape s, int64_t chunks_per_split,
                             int o_tiles) {
  __shared__ acc_t gy_tile[kChunk][kTileO];
  __shared__ acc_t x_tile[kChunk][kTileJ];
  __shared__ int64_t chunk_n[kChunk], chunk_l[kChunk];
  __shared__ int64_t column_channel[kTileJ], column_offset[kTileJ];

  const int64_t columns = s.in_channels_per_group * s.kernel_size;
  const int group = blockIdx.y / o_tiles, o0 = (blockIdx.y % o_tiles) * kTileO;
  const int64_t j0 = int64_t(blockIdx.x) * kTileJ;
  const int64_t reduction = s.batch * s.out_length;
  const int64_t r_begin = int64_t(blockIdx.z) * chunks_per_split * kChunk;
  const int64_t r_end = min(reduction, r_begin + chunks_per_split * kChunk);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

  if (threadIdx.x < kTileJ) {
    const int64_t j = j0 + threadIdx.x;
    const int64_t c = j / s.kernel_size, k = j % s.kernel_size;
    column_channel[threadIdx.x] = j < columns ? int64_t(group) * s.in_channels_per_group + c : -1;
    column_offset[threadIdx.x] = k * s.dilation - s.pad_left;
  }
  // Blocked summation: each 16 chunks (256 positions) summed apart, then added to acc, so the running
  // sum does not drift over long reductions (as in the CPU backward).
  constexpr int kChunksPerBlock = 16;
  acc_t acc[4][4] = {}, part[4][4] = {};
  int chunk_in_block = 0;
  for (int64_t r0 = r_begin; r0 < r_end; r0 += kChunk) {
    __syncthreads();  // the previous chunk's tiles (and, first time, the column tables) are settled
    if (threadIdx.x < kChunk) {
      const int64_t r = r0 + threadIdx.x;
      chunk_n[threadIdx.x] = r < r_end ? r / s.out_length : -1;
      chunk_l[threadIdx.x] = r % s.out_length;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < kChunk * kTileO; e += kThreads) {
      const int rr = e % kChunk, oo = e / kChunk;  // consecutive threads: consecutive positions
      const int64_t n = chunk_n[rr], o = o0 + oo;
      gy_tile[rr][oo] = (n >= 0 && o < s.out_channels_per_group)
                            ? static_cast<acc_t>(gy[(n * s.out_channels + group * s.out_channels_per_group + o) *
                                                        s.out_length + chunk_l[rr]])
                            : acc_t(0);
    }
    for (int e = threadIdx.x; e < kChunk * kTileJ; e += kThreads) {
      const int rr = e % kChunk, jj = e / kChunk;
      const int64_t n = chunk_n[rr], c = column_channel[jj];
      const int64_t p = chunk_l[rr] * s.stride + column_offset[jj];
      x_tile[rr][jj] = (n >= 0 && c >= 0 && p >= 0 && p < s.in_length)
                           ? static_cast<acc_t>(x[(n * s.in_channels + c) * s.in_length + p])
                           : acc_t(0);
    }
    __syncthreads();
#pragma unroll
    for (int rr = 0; rr < kChunk; ++rr) {
      acc_t a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = gy_tile[rr][ty * 4 + i], b[i] = x_tile[rr][tx * 4 + i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) part[i][j] += a[i] * b[j];
    }
    if (++chunk_in_block == kChunksPerBlock || r0 + kChunk >= r_end) {
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += part[i][j], part[i][j] = 0;
      chunk_in_block = 0;
    }
  }
  acc_t* out = workspace + int64_t(blockIdx.z) * s.out_channels * columns;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t o = o0 + ty * 4 + i;
    if (o >= s.out_channels_per_group) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = j0 + tx * 4 + j;
      if (col < columns) out[(int64_t(group) * s.out_channels_per_group + o) * columns + col] = acc[i][j];
    }
  }
}

// grad_weight[e] = sum over splits, in split order, of workspace[split][e].
template <typename scalar_t, typename acc_t>
__global__ void sum_splits_kernel(const acc_t* __restrict__ workspace, scalar_t* __restrict__ grad_weight,
                                  int64_t elements, int64_t splits) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < elements; e += int64_t(gridDim.x) * blockDim.x) {
    acc_t sum = 0;
    for (int64_t z = 0; z < splits; ++z) sum += workspace[z * elements + e];
    grad_weight[e] = static_cast<scalar_t>(sum);
  }
}

int grid_for(int64_t elements, int threads) {
  return static_cast<int>(std::min<int64_t>((elements + threads - 1) / threads, int64_t{1} << 20));
}

}  // namespace

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Splits of the reduction so that about `wanted` blocks run, each with at least `min_units` units.
// The count depends only on the shape and the device, so the summation order (and the result) is fixed.
int64_t choose_splits(int64_t base_blocks, int64_t units, int64_t min_units, int64_t wanted, int64_t max_splits) {
  const int64_t by_blocks = ceil_div(wanted, base_blocks);
  return std::clamp<int64_t>(std::min(by_blocks, std::max<int64_t>(1, units / min_units)), 1, max_splits);
}

template <typename scalar_t, typename acc_t>
void sum_splits(const at::Tensor& workspace, at::Tensor& grad_weight, int64_t splits, cudaStream_t stream) {
  const int64_t elements = grad_weight.numel();
  sum_splits_kernel<scalar_t, acc_t><<<grid_for(elements, 256), 256, 0, stream>>>(
      workspace.const_data_ptr<acc_t>(), grad_weight.mutable_data_ptr<scalar_t>(), elements, splits);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, int kTaps, int kOuts>
void grad_weight_one_channel_config(const at::Tensor& gy, const at::Tensor& x, at::Tensor& grad_weight,
                                    const Geometry& g, int64_t sms, cudaStream_t stream) {
  using acc_t = at::opmath_type<scalar_t>;
  const BackwardShape s = backward_shape(g);
  const int64_t tap_groups = ceil_div(g.kernel_size, kTaps);
  const int64_t chunks = g.groups * ceil_div(g.out_channels_per_group(), kOuts);
  const int64_t splits = choose_splits(chunks * tap_groups, g.out_length, 2048, 4 * sms, 65535);
  const int64_t positions_per_split = ceil_div(g.out_length, splits);
  const at::ScalarType acc_type = std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat;
  at::Tensor workspace = at::empty({splits, grad_weight.numel()}, x.options().dtype(acc_type));
  TORCH_CHECK(chunks < (int64_t{1} << 31) && tap_groups < 65536, "custom::conv1d_backward: expected fewer than ",
              "2^31 output channels and 2^19 taps, but got ", g.out_channels, " and ", g.kernel_size);
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(splits), static_cast<unsigned>(tap_groups));
  grad_weight_one_channel_kernel<scalar_t, acc_t, kTaps, kOuts><<<grid, kOneChannelThreads, 0, stream>>>(
      gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), workspace.mutable_data_ptr<acc_t>(), s,
      positions_per_split);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  sum_splits<scalar_t, acc_t>(workspace, grad_weight, splits, stream);
}

// Four or more output channels per group share each thread's input loads; depthwise takes as many
// taps as it has (4, else 8 a pass).
template <typename scalar_t>
void grad_weight_one_channel(const at::Tensor& gy, const at::Tensor& x, at::Tensor& grad_weight, const Geometry& g,
                             int64_t sms, cudaStream_t stream) {
  if (g.out_channels_per_group() >= 4) return grad_weight_one_channel_config<scalar_t, 16, 4>(gy, x, grad_weight, g, sms, stream);
  if (g.kernel_size <= 4) return grad_weight_one_channel_config<scalar_t, 4, 1>(gy, x, grad_weight, g, sms, stream);
  grad_weight_one_channel_config<scalar_t, 8, 1>(gy, x, grad_weight, g, sms, stream);
}

// The tile the backward table chose (select_grad_weight: the staged window fits).
template <typename scalar_t, typename Tile>
void grad_weight_tensorcore_tile(const at::Tensor& gy, const at::Tensor& x, at::Tensor& grad_weight, const Geometry& g,
                                 int64_t sms, cudaStream_t stream) {
  constexpr int kPerWord = 4 / int(sizeof(scalar_t)), kVec = kStageVec<scalar_t>;
  const int64_t taps_read = std::min<int64_t>(g.kernel_size, Tile::kTaps);
  const int64_t window = (Tile::kChunk - 1) * g.stride + (taps_read - 1) * g.dilation + 1;
  auto pitch = [&](int64_t elements) {  // whole vectors; words = 4 (mod 32): a fragment load hits 32 banks
    const int64_t words = ceil_div(elements, kVec) * kVec / kPerWord;
    return (words + ((4 - words % 32) + 32) % 32) * kPerWord;
  };
  GradWeightTensorCoreArgs a;
  a.gy_pitch = static_cast<int>(pitch(Tile::kChunk));
  const int64_t x_pitch = pitch(window + kVec - 1);  // + the alignment of the window's start
  const int64_t shared_bytes = (Tile::kTileO * a.gy_pitch + Tile::kTileC * x_pitch) * int64_t(sizeof(scalar_t));
  const int64_t o_tiles = ceil_div(g.out_channels_per_group(), Tile::kTileO);
  const int64_t c_tiles = ceil_div(g.in_channels_per_group(), Tile::kTileC);
  TORCH_INTERNAL_ASSERT(window <= Tile::kMaxWindow && g.groups * o_tiles < 65536 && c_tiles < (int64_t{1} << 31),
                        "custom::conv1d_backward: the grad_weight tile does not fit the shape the table gave it");
  a.window = static_cast<int>(window);
  a.x_pitch = static_cast<int>(x_pitch);
  a.o_tiles = static_cast<int>(o_tiles);
  a.tap_groups = static_cast<int>(ceil_div(g.kernel_size, Tile::kTaps));
  a.chunks_per_row = ceil_div(g.out_length, Tile::kChunk);
  a.total_chunks = g.batch * a.chunks_per_row;
  a.gy_vector_loads = rows_are_16_byte_vectors(gy);
  a.x_vector_loads = rows_are_16_byte_vectors(x);
  const int64_t base_blocks = c_tiles * g.groups * o_tiles * a.tap_groups;
  const int64_t splits_wanted = choose_splits(base_blocks, a.total_chunks, 4, 4 * sms, 65535 / a.tap_groups);
  a.chunks_per_split = ceil_div(a.total_chunks, splits_wanted);
  const int64_t splits = ceil_div(a.total_chunks, a.chunks_per_split);
  at::Tensor workspace = at::empty({splits, grad_weight.numel()}, x.options().dtype(at::kFloat));
  const auto kernel = grad_weight_tensorcore_kernel<scalar_t, Tile>;
  resident_blocks_per_sm(reinterpret_cast<const void*>(kernel), Tile::kThreads, shared_bytes);  // opts in above 48 KB
  const dim3 grid(static_cast<unsigned>(c_tiles), static_cast<unsigned>(g.groups * o_tiles),
                  static_cast<unsigned>(splits * a.tap_groups));
  kernel<<<grid, Tile::kThreads, shared_bytes, stream>>>(gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                                         workspace.mutable_data_ptr<float>(), backward_shape(g), a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  sum_splits<scalar_t, float>(workspace, grad_weight, splits, stream);
}

template <typename scalar_t>
void grad_weight_cuda_cores(const at::Tensor& gy, const at::Tensor& x, at::Tensor& grad_weight, const Geometry& g,
                            int64_t sms, cudaStream_t stream) {
  using acc_t = at::opmath_type<scalar_t>;
  const BackwardShape s = backward_shape(g);
  const int64_t columns = s.in_channels_per_group * s.kernel_size;
  const int o_tiles = static_cast<int>(ceil_div(s.out_channels_per_group, kTileO));
  const int64_t j_tiles = ceil_div(columns, kTileJ);
  TORCH_CHECK(j_tiles < (int64_t{1} << 31) && g.groups * o_tiles < 65536, "custom::conv1d_backward: expected fewer than ",
              "65536 (groups x 64-channel tiles), but got ", g.groups * o_tiles);
  const int64_t chunks = ceil_div(s.batch * s.out_length, kChunk);
  const int64_t splits = choose_splits(g.groups * o_tiles * j_tiles, chunks, 8, 4 * sms, 65535);
  const int64_t chunks_per_split = ceil_div(chunks, splits);
  const at::ScalarType acc_type = std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat;
  at::Tensor workspace = at::empty({splits, grad_weight.numel()}, x.options().dtype(acc_type));
  const dim3 grid(static_cast<unsigned>(j_tiles), static_cast<unsigned>(g.groups * o_tiles), static_cast<unsigned>(splits));
  grad_weight_split_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
      gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), workspace.mutable_data_ptr<acc_t>(), s,
      chunks_per_split, o_tiles);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  sum_splits<scalar_t, acc_t>(workspace, grad_weight, splits, stream);
}

}  // namespace

void launch_grad_weight(GradWeightChoice choice, const at::Tensor& grad_output, const at::Tensor& input,
                        at::Tensor& grad_weight, const Geometry& g) {
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d_backward (CUDA grad_weight)", [&] {
    switch (choice) {
      case GradWeightChoice::kZero:
        grad_weight.zero_();
        return;
      case GradWeightChoice::kOneChannel:
        return grad_weight_one_channel<scalar_t>(grad_output, input, grad_weight, g, sms, stream);
      case GradWeightChoice::kTensorCoreSmall:
      case GradWeightChoice::kTensorCoreLarge:
        if constexpr (!std::is_same_v<scalar_t, double>) {
          if (choice == GradWeightChoice::kTensorCoreSmall) {
            return grad_weight_tensorcore_tile<scalar_t, GradWeightTileSmall>(grad_output, input, grad_weight, g, sms, stream);
          }
          return grad_weight_tensorcore_tile<scalar_t, GradWeightTileLarge>(grad_output, input, grad_weight, g, sms, stream);
        }
        TORCH_INTERNAL_ASSERT(false, "custom::conv1d_backward: no tensor-core grad_weight for float64");
      case GradWeightChoice::kCudaCores:
        return grad_weight_cuda_cores<scalar_t>(grad_output, input, grad_weight, g, sms, stream);
      case GradWeightChoice::kHopper:  // launched by conv1d_backward_cuda (hopper/grad_weight_hopper.h)
        break;
    }
    TORCH_INTERNAL_ASSERT(false, "custom::conv1d_backward: launch_grad_weight was asked for the Hopper kernel");
  });
}

at::Tensor grad_input_one_channel(const at::Tensor& grad_output, const at::Tensor& weight, const Geometry& g) {
  using P = GradInputOneChannel;
  const auto layout = grad_input_one_channel_layout(g, grad_output.scalar_type());
  TORCH_INTERNAL_ASSERT(layout.has_value(),
                        "custom::conv1d_backward: the one-channel grad_input kernel was given a shape it does not serve");
  const int64_t window = layout->window, window_offset = layout->window_offset, q_tiles = layout->q_tiles;
  const int64_t shared_bytes = layout->shared_bytes, blocks = layout->blocks;
  at::Tensor grad_input = at::empty({g.batch, g.in_channels, g.in_length}, grad_output.options());
  GradInputOneChannelArgs a;
  a.batch = g.batch;
  a.channels = g.in_channels;
  a.in_length = g.in_length;
  a.out_length = g.out_length;
  a.out_channels_per_group = g.out_channels_per_group();
  a.kernel_size = static_cast<int>(g.kernel_size);
  a.stride = static_cast<int>(g.stride);
  a.dilation = static_cast<int>(g.dilation);
  a.pad_left = static_cast<int>(g.pad_left);
  const int64_t gcd = std::gcd(g.stride, g.dilation);
  a.tap_step = static_cast<int>(g.stride / gcd);
  a.tap_dilation = static_cast<int>(g.dilation / gcd);
  a.q_tiles = q_tiles;
  a.window = static_cast<int>(window);
  a.window_offset = static_cast<int>(window_offset);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_input.scalar_type(), "custom::conv1d_backward (CUDA grad_input)", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    grad_input_one_channel_kernel<scalar_t, acc_t><<<static_cast<unsigned>(blocks), P::kThreads, shared_bytes, stream>>>(
        grad_output.const_data_ptr<scalar_t>(), weight.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(), a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_input;
}

}  // namespace custom_ops::conv1d::cuda
