// CUDA kernels of custom::conv1d_backward that the forward kernels cannot serve:
//   * grad_input for strides > 1 (stride 1 runs the forward kernels on flipped weights, see
//     conv1d_backward_cuda.cpp): one thread per input element, gathering the outputs it fed;
//   * grad_weight: a tiled reduction over (batch, positions) on CUDA cores, split across blocks into a
//     float32 (float64) workspace and summed over the splits in a fixed order by a second kernel, so
//     the result is bitwise the same on every run (no atomics), deterministic mode or not.

#include "ops/conv1d/cuda/conv1d_cuda_launch.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>

namespace custom_ops::conv1d::cuda {
namespace {

struct BackwardShape {
  int64_t batch, in_channels, in_length, out_channels, out_length;
  int64_t in_channels_per_group, out_channels_per_group, kernel_size, stride, dilation, pad_left;
};

BackwardShape backward_shape(const Geometry& g) {
  return {g.batch,          g.in_channels, g.in_length,      g.out_channels,
          g.out_length,     g.in_channels_per_group(), g.out_channels_per_group(),
          g.kernel_size,    g.stride,      g.dilation,       g.pad_left};
}

// grad_input[n, c, i] = sum over taps k with (i + pl - k*d) = l*s, 0 <= l < L_out, and the group's o
// of W[o, c, k] * gy[n, o, l]. gy (N, O, L_out), w (O, C_g, K), grad_input (N, C, L): contiguous.
template <typename scalar_t, typename acc_t>
__global__ void grad_input_gather_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ w,
                                         scalar_t* __restrict__ grad_input, const BackwardShape s) {
  const int64_t total = s.batch * s.in_channels * s.in_length;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t position = i % s.in_length, row = i / s.in_length;
    const int64_t c = row % s.in_channels, n = row / s.in_channels;
    const int64_t group = c / s.in_channels_per_group, cg = c % s.in_channels_per_group;
    acc_t acc = 0;
    for (int64_t k = 0; k < s.kernel_size; ++k) {
      const int64_t t = position + s.pad_left - k * s.dilation;
      if (t < 0) break;  // t only decreases with k
      if (t % s.stride != 0) continue;
      const int64_t l = t / s.stride;
      if (l >= s.out_length) continue;
      for (int64_t og = 0; og < s.out_channels_per_group; ++og) {
        const int64_t o = group * s.out_channels_per_group + og;
        acc += static_cast<acc_t>(w[(o * s.in_channels_per_group + cg) * s.kernel_size + k]) *
               static_cast<acc_t>(gy[(n * s.out_channels + o) * s.out_length + l]);
      }
    }
    grad_input[i] = static_cast<scalar_t>(acc);
  }
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
  acc_t acc[4][4] = {};
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
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
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

void launch_grad_input_gather(const at::Tensor& grad_output, const at::Tensor& weight, at::Tensor& grad_input,
                              const Geometry& g) {
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_input.scalar_type(), "custom::conv1d_backward (CUDA grad_input)", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    grad_input_gather_kernel<scalar_t, acc_t><<<grid_for(grad_input.numel(), 256), 256, 0, stream>>>(
        grad_output.const_data_ptr<scalar_t>(), weight.const_data_ptr<scalar_t>(),
        grad_input.mutable_data_ptr<scalar_t>(), backward_shape(g));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void launch_grad_weight(const at::Tensor& grad_output, const at::Tensor& input, at::Tensor& grad_weight,
                        const Geometry& g) {
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const BackwardShape s = backward_shape(g);
  const int64_t columns = s.in_channels_per_group * s.kernel_size;
  const int o_tiles = static_cast<int>((s.out_channels_per_group + kTileO - 1) / kTileO);
  const int64_t j_tiles = (columns + kTileJ - 1) / kTileJ;
  const int64_t tiles = g.groups * o_tiles * j_tiles;
  TORCH_CHECK(j_tiles < (int64_t{1} << 31) && g.groups * o_tiles < 65536, "custom::conv1d_backward: expected fewer than ",
              "65536 (groups x 64-channel tiles), but got ", g.groups * o_tiles);
  // Splits of the reduction: enough blocks for ~4 per SM, each at least 8 chunks long. The count
  // depends only on the shape and the device, so the summation order (and the result) is fixed.
  const int64_t chunks = (s.batch * s.out_length + kChunk - 1) / kChunk;
  const int64_t wanted_blocks = int64_t(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 4;
  const int64_t splits = std::clamp<int64_t>((wanted_blocks + tiles - 1) / tiles, 1,
                                             std::min<int64_t>(65535, std::max<int64_t>(1, chunks / 8)));
  const int64_t chunks_per_split = (chunks + splits - 1) / splits;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d_backward (CUDA grad_weight)", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::ScalarType acc_type = std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat;
    at::Tensor workspace = at::empty({splits, g.out_channels * columns}, input.options().dtype(acc_type));
    const dim3 grid(static_cast<unsigned>(j_tiles), static_cast<unsigned>(g.groups * o_tiles), static_cast<unsigned>(splits));
    grad_weight_split_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
        grad_output.const_data_ptr<scalar_t>(), input.const_data_ptr<scalar_t>(), workspace.mutable_data_ptr<acc_t>(),
        s, chunks_per_split, o_tiles);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const int64_t elements = g.out_channels * columns;
    sum_splits_kernel<scalar_t, acc_t><<<grid_for(elements, 256), 256, 0, stream>>>(
        workspace.const_data_ptr<acc_t>(), grad_weight.mutable_data_ptr<scalar_t>(), elements, splits);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace custom_ops::conv1d::cuda
