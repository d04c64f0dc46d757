#pragma once
// Launchers of the CUDA kernels of custom::conv1d, one translation unit per kernel family (so they
// compile in parallel). Each dispatches on the dtype and launches on the current stream; the caller
// (conv1d_cuda.cpp) holds the device guard and has allocated the output.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/conv1d_cuda_backward_dispatch.h"
#include "ops/conv1d/cuda/conv1d_cuda_dispatch.h"

namespace custom_ops::conv1d::cuda {

// input: (N, C, L) any strides; weight contiguous; bias contiguous or undefined; out contiguous.
void launch_tensorcore(KernelChoice choice, const at::Tensor& input, const at::Tensor& weight,
                       const at::Tensor& bias, at::Tensor& out, const Geometry& g, bool allow_tf32);
void launch_depthwise(KernelChoice choice, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
                      at::Tensor& out, const Geometry& g);
void launch_direct(KernelChoice choice, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
                   at::Tensor& out, const Geometry& g);

// custom::conv1d_backward's grad_weight (conv1d_cuda_backward.cu) with the kernel the backward table chose
// (select_grad_weight): contiguous tensors, a batch of at least one; (O, C_g, K) reduced
// deterministically (fixed split order, no atomics).
void launch_grad_weight(GradWeightChoice choice, const at::Tensor& grad_output, const at::Tensor& input,
                        at::Tensor& grad_weight, const Geometry& g);

// custom::conv1d_backward's grad_input where each group has one input channel and several output
// channels (conv1d_cuda_backward.cu), for the shapes select_grad_input gives it: contiguous grad_output
// and weight; returns grad_input (N, C, L).
at::Tensor grad_input_one_channel(const at::Tensor& grad_output, const at::Tensor& weight, const Geometry& g);

// True when every (n, c) row of the (N, C, L) input is contiguous and starts on a 16-byte boundary, so
// the kernels may read it with 16-byte vector loads.
bool rows_are_16_byte_vectors(const at::Tensor& input);

// Blocks of `kernel` that fit on one SM of the current device at once (at least 1). Also raises the
// kernel's dynamic shared-memory limit to `dynamic_shared_bytes` where that exceeds 48 KB; call it
// before launching with that much. Cached: a driver query only the first time for each key.
int resident_blocks_per_sm(const void* kernel, int threads, size_t dynamic_shared_bytes);

}  // namespace custom_ops::conv1d::cuda
