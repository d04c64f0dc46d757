#include "ops/conv1d/conv1d_kernels.h"

#include <ATen/ops/empty.h>

namespace custom_ops::conv1d {

at::Tensor conv1d_meta(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                       c10::SymInt groups) {
  const SymGeometry g = make_geometry(input, weight, bias, stride, padding, dilation, std::move(groups));
  return at::empty_symint(output_shape(g), input.options());
}

at::Tensor conv1d_padding_meta(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
                               c10::string_view padding, c10::SymIntArrayRef dilation, c10::SymInt groups) {
  const SymGeometry g = make_geometry(input, weight, bias, stride, padding, dilation, std::move(groups));
  return at::empty_symint(output_shape(g), input.options());
}

Gradients conv1d_backward_meta(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                               c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                               c10::SymInt groups, GradientMask output_mask) {
  const SymGeometry g = make_backward_geometry(grad_output, input, weight, stride, padding, dilation, std::move(groups));
  at::Tensor grad_input, grad_weight, grad_bias;
  if (output_mask[0]) grad_input = at::empty_symint(input.sym_sizes(), input.options());
  if (output_mask[1]) grad_weight = at::empty_symint(weight.sym_sizes(), weight.options());
  if (output_mask[2]) grad_bias = at::empty_symint({g.out_channels}, weight.options());
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace custom_ops::conv1d
