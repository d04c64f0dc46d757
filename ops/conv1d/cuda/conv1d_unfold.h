#pragma once
// The input unfolded by taps (im2col) and its adjoint (col2im), for the backward of one input channel per
// group (cuda::backward_unfolds in conv1d_cuda_backward_dispatch.h; conv1d_unfold.cu).

#include "ops/conv1d/conv1d_geometry.h"

#include <ATen/core/Tensor.h>

namespace custom_ops::conv1d::cuda {

// columns[n, c * K + k, j] = input[n, c, j * s + k * d - pad_left], zero where that is outside the row:
// input (N, C, L) contiguous, columns (N, C * K, L_out) contiguous, of the input's dtype. Then
// conv1d(input, w) = conv1d(columns, w viewed as (O, K, 1), groups) for a weight w of (O, 1, K).
at::Tensor unfold_taps(const at::Tensor& input, const Geometry& g);

// The adjoint of unfold_taps: grad_input[n, c, p] = the sum, over the taps k in order, of
// grad_columns[n, c * K + k, j] where p = j * s + k * d - pad_left for a 0 <= j < L_out (accumulated in
// float32, float64 for double). grad_columns (N, C * K, L_out) contiguous; grad_input (N, C, L).
at::Tensor fold_taps(const at::Tensor& grad_columns, const Geometry& g);

}  // namespace custom_ops::conv1d::cuda
