// unfold_taps and fold_taps (conv1d_unfold.h). A block takes kItems x kThreads consecutive positions of
// every row it is given (blockIdx.y, then steps of gridDim.y): the unfold's thread writes its positions
// of the K rows of columns that one input row makes, the fold's thread sums the taps that reach its
// positions of one input row, in tap order. No division per element: the fold splits each position
// into a quotient and remainder by the stride once, and every tap's offset once per block.

#include "ops/conv1d/cuda/conv1d_unfold.h"

#include "ops/conv1d/cuda/conv1d_cuda_backward_dispatch.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>

namespace custom_ops::conv1d::cuda {

namespace {

constexpr int kThreads = 256, kItems = 4;
constexpr int64_t kMaxGridRows = 65535;  // gridDim.y

struct UnfoldShape {
  int64_t rows;  // N * C (input rows)
  int in_length, out_length, taps, stride, dilation, pad_left;
};

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    unfold_taps_kernel(const scalar_t* __restrict__ input, scalar_t* __restrict__ columns, const UnfoldShape s) {
  const int first = blockIdx.x * (kThreads * kItems) + threadIdx.x;
  for (int64_t row = blockIdx.y; row < s.rows; row += gridDim.y) {
    const scalar_t* x = input + row * s.in_length;
    for (int k = 0; k < s.taps; ++k) {
      scalar_t* out = columns + (row * s.taps + k) * s.out_length;
      const int offset = k * s.dilation - s.pad_left;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int j = first + i * kThreads;
        if (j >= s.out_length) break;
        const int64_t p = int64_t(j) * s.stride + offset;
        out[j] = (p >= 0 && p < s.in_length) ? x[p] : scalar_t(0);
      }
    }
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    fold_taps_kernel(const scalar_t* __restrict__ columns, scalar_t* __restrict__ grad_input, const UnfoldShape s) {
  using acc_t = at::opmath_type<scalar_t>;
  // Tap k reaches position p = j * s + k * d - pad_left: with p + pad_left = a_div * s + a_mod and
  // k * d = tap_div * s + tap_mod, exactly where a_mod == tap_mod, from j = a_div - tap_div.
  __shared__ int tap_div[kUnfoldedMaxTaps], tap_mod[kUnfoldedMaxTaps];
  for (int k = threadIdx.x; k < s.taps; k += kThreads) {
    tap_div[k] = k * s.dilation / s.stride;
    tap_mod[k] = k * s.dilation % s.stride;
  }
  __syncthreads();
  const int first = blockIdx.x * (kThreads * kItems) + threadIdx.x;
  int a_div[kItems], a_mod[kItems];
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int a = first + i * kThreads + s.pad_left;
    a_div[i] = a / s.stride;
    a_mod[i] = a - a_div[i] * s.stride;
  }
  for (int64_t row = blockIdx.y; row < s.rows; row += gridDim.y) {
    const scalar_t* rows_of_taps = columns + row * s.taps * s.out_length;
    scalar_t* out = grad_input + row * s.in_length;
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int p = first + i * kThreads;
      if (p < s.in_length) {  // not a break: a_div and a_mod stay registers of the unrolled loop
        acc_t sum = 0;
        for (int k = 0; k < s.taps; ++k) {
          const int j = a_div[i] - tap_div[k];
          if (tap_mod[k] == a_mod[i] && j >= 0 && j < s.out_length) {
            sum += static_cast<acc_t>(rows_of_taps[int64_t(k) * s.out_length + j]);
          }
        }
        out[p] = static_cast<scalar_t>(sum);
      }
    }
  }
}

UnfoldShape unfold_shape(const Geometry& g) {
  // backward_unfolds keeps positions, taps and offsets within int (and the taps within the fold's table).
  TORCH_INTERNAL_ASSERT(g.in_channels_per_group() == 1 && g.kernel_size <= kUnfoldedMaxTaps &&
                        g.in_length + g.pad_left < (int64_t{1} << 31) && g.out_length < (int64_t{1} << 31) &&
                        (g.kernel_size - 1) * g.dilation < (int64_t{1} << 31));
  UnfoldShape s;
  s.rows = g.batch * g.in_channels;
  s.in_length = static_cast<int>(g.in_length);
  s.out_length = static_cast<int>(g.out_length);
  s.taps = static_cast<int>(g.kernel_size);
  s.stride = static_cast<int>(g.stride);
  s.dilation = static_cast<int>(g.dilation);
  s.pad_left = static_cast<int>(g.pad_left);
  return s;
}

dim3 grid_for(int64_t positions, int64_t rows) {
  const int64_t per_block = int64_t(kThreads) * kItems;
  return dim3(static_cast<unsigned>((positions + per_block - 1) / per_block),
              static_cast<unsigned>(std::min(rows, kMaxGridRows)));
}

}  // namespace

at::Tensor unfold_taps(const at::Tensor& input, const Geometry& g) {
  TORCH_INTERNAL_ASSERT(input.dim() == 3 && input.is_contiguous() && input.size(0) == g.batch &&
                        input.size(1) == g.in_channels && input.size(2) == g.in_length);
  const UnfoldShape s = unfold_shape(g);
  at::Tensor columns = at::empty({g.batch, g.in_channels * g.kernel_size, g.out_length}, input.options());
  if (columns.numel() == 0) return columns;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "unfold_taps", [&] {
    unfold_taps_kernel<scalar_t><<<grid_for(s.out_length, s.rows), kThreads, 0, stream>>>(
        input.const_data_ptr<scalar_t>(), columns.mutable_data_ptr<scalar_t>(), s);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return columns;
}

at::Tensor fold_taps(const at::Tensor& grad_columns, const Geometry& g) {
  TORCH_INTERNAL_ASSERT(grad_columns.dim() == 3 && grad_columns.is_contiguous() && grad_columns.size(0) == g.batch &&
                        grad_columns.size(1) == g.in_channels * g.kernel_size && grad_columns.size(2) == g.out_length);
  const UnfoldShape s = unfold_shape(g);
  at::Tensor grad_input = at::empty({g.batch, g.in_channels, g.in_length}, grad_columns.options());
  if (grad_input.numel() == 0) return grad_input;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_columns.scalar_type(), "fold_taps", [&] {
    fold_taps_kernel<scalar_t><<<grid_for(s.in_length, s.rows), kThreads, 0, stream>>>(
        grad_columns.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(), s);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_input;
}

}  // namespace custom_ops::conv1d::cuda
