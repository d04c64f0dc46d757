// interleave_phases (conv1d_interleave.h). A block writes kItems x blockDim.x consecutive positions of
// grad_input's rows (a row at a time, the same positions of every row it takes); each thread reads its
// positions' elements from their phases, whose reads are contiguous across the warp phase by phase. The
// element is moved as raw bytes of its size: the kernel is the same for every dtype of that size.

#include "ops/conv1d/cuda/conv1d_interleave.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>

namespace custom_ops::conv1d::cuda {

namespace {

constexpr int kThreads = 256, kItems = 4;
constexpr int64_t kMaxGridRows = 65535;  // gridDim.y

struct InterleaveShape {
  int64_t rows, length;  // grad_input's N * C and L
  int stride;
  const void* phases[kMaxInterleavedPhases];  // nullptr: a phase of zeros
  int64_t phase_length[kMaxInterleavedPhases];
};

// The stride S as a constant (positions split by a shift or a multiply), each thread's phases and
// indices worked out once, before the rows; the phases' pointers and lengths from shared memory (a
// kernel parameter indexed by a per-thread value is read one address at a time).
template <int S, typename word_t>
__global__ void __launch_bounds__(kThreads) interleave_kernel(word_t* __restrict__ out, const InterleaveShape s) {
  __shared__ const word_t* phases[S];
  __shared__ int64_t phase_length[S];
  if (threadIdx.x < S) {
    phases[threadIdx.x] = static_cast<const word_t*>(s.phases[threadIdx.x]);
    phase_length[threadIdx.x] = s.phase_length[threadIdx.x];
  }
  __syncthreads();
  const int64_t first = (int64_t(blockIdx.x) * kItems) * kThreads + threadIdx.x;
  const word_t* phase[kItems];
  int64_t length[kItems], index[kItems];
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int64_t l = first + int64_t(k) * kThreads;
    const int rho = static_cast<int>(l % S);
    phase[k] = phases[rho];
    length[k] = phase_length[rho];
    index[k] = l / S;
  }
  for (int64_t row = blockIdx.y; row < s.rows; row += gridDim.y) {
    word_t* out_row = out + row * s.length;
#pragma unroll
    for (int k = 0; k < kItems; ++k) {
      const int64_t l = first + int64_t(k) * kThreads;
      if (l >= s.length) break;
      out_row[l] = phase[k] != nullptr ? phase[k][row * length[k] + index[k]] : word_t(0);
    }
  }
}

template <typename word_t>
void launch(const InterleaveShape& shape, at::Tensor& grad_input) {
  const int64_t per_block = int64_t(kItems) * kThreads;
  const dim3 grid(static_cast<unsigned>((shape.length + per_block - 1) / per_block),
                  static_cast<unsigned>(std::min(shape.rows, kMaxGridRows)));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  word_t* out = static_cast<word_t*>(grad_input.mutable_data_ptr());
  switch (shape.stride) {
    case 2: interleave_kernel<2, word_t><<<grid, kThreads, 0, stream>>>(out, shape); break;
    case 3: interleave_kernel<3, word_t><<<grid, kThreads, 0, stream>>>(out, shape); break;
    case 4: interleave_kernel<4, word_t><<<grid, kThreads, 0, stream>>>(out, shape); break;
    case 5: interleave_kernel<5, word_t><<<grid, kThreads, 0, stream>>>(out, shape); break;
    case 6: interleave_kernel<6, word_t><<<grid, kThreads, 0, stream>>>(out, shape); break;
    case 7: interleave_kernel<7, word_t><<<grid, kThreads, 0, stream>>>(out, shape); break;
    default: interleave_kernel<8, word_t><<<grid, kThreads, 0, stream>>>(out, shape); break;
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void interleave_phases(const std::vector<at::Tensor>& phases, at::Tensor& grad_input) {
  const int64_t s = static_cast<int64_t>(phases.size());
  TORCH_INTERNAL_ASSERT(s >= 2 && s <= kMaxInterleavedPhases && grad_input.dim() == 3 && grad_input.is_contiguous());
  InterleaveShape shape{};
  shape.rows = grad_input.size(0) * grad_input.size(1);
  shape.length = grad_input.size(2);
  shape.stride = static_cast<int>(s);
  for (int64_t rho = 0; rho < s; ++rho) {
    const at::Tensor& phase = phases[rho];
    const int64_t length = shape.length > rho ? (shape.length - rho + s - 1) / s : 0;
    shape.phase_length[rho] = length;
    if (!phase.defined()) continue;
    TORCH_INTERNAL_ASSERT(phase.is_contiguous() && phase.scalar_type() == grad_input.scalar_type() &&
                          phase.size(0) * phase.size(1) == shape.rows && phase.size(2) == length);
    shape.phases[rho] = phase.const_data_ptr();
  }
  if (grad_input.numel() == 0) return;
  switch (grad_input.element_size()) {
    case 2: launch<uint16_t>(shape, grad_input); break;
    case 4: launch<uint32_t>(shape, grad_input); break;
    case 8: launch<uint64_t>(shape, grad_input); break;
    default: TORCH_INTERNAL_ASSERT(false, "interleave_phases: elements of ", grad_input.element_size(), " bytes");
  }
}

}  // namespace custom_ops::conv1d::cuda
