#pragma once
// Backend kernels of custom::conv1d. Each takes a validated geometry (see conv1d_geometry.h) and a
// batched (N, C, L) input of any strides, and returns a new contiguous (N, O, L_out) output.

#include "ops/conv1d/conv1d_geometry.h"

#include <array>
#include <tuple>

namespace custom_ops::conv1d {

// custom::conv1d_backward: (grad_input, grad_weight, grad_bias); each computed only where output_mask
// asks for it, else an undefined tensor. Batched (N, O, L_out) grad_output and (N, C, L) input of any
// strides, with the geometry of the forward call.
using Gradients = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using GradientMask = std::array<bool, 3>;

at::Tensor conv1d_forward_cpu(const at::Tensor& input, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias, const Geometry& g);

Gradients conv1d_backward_cpu(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                              const Geometry& g, GradientMask mask);

#ifdef CUSTOM_OPS_WITH_CUDA
Gradients conv1d_backward_cuda(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                               const Geometry& g, GradientMask mask);
at::Tensor conv1d_forward_cuda(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, const Geometry& g);
#endif

}  // namespace custom_ops::conv1d

namespace custom_ops::conv1d {

// Meta: shapes only, with symbolic sizes (FakeTensor, torch.compile, torch.export). One per overload,
// since the Meta kernel sees the schema's SymInt arguments directly.
at::Tensor conv1d_meta(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                       c10::SymInt groups);
Gradients conv1d_backward_meta(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                               c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                               c10::SymInt groups, GradientMask output_mask);
at::Tensor conv1d_padding_meta(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
                               c10::string_view padding, c10::SymIntArrayRef dilation, c10::SymInt groups);

}  // namespace custom_ops::conv1d
