#pragma once
// Adapts the two schema overloads of custom::conv1d (integer and string padding) to one backend kernel,
// so that every backend registers the same two entry points and shares the validation and the
// unbatched-input handling.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/conv1d_kernels.h"

namespace custom_ops::conv1d {

using ForwardKernel = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                     const Geometry&);

template <ForwardKernel kernel>
at::Tensor run_forward(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       const Geometry& g) {
  const at::Tensor batched_input = g.batched ? input : input.unsqueeze(0);
  at::Tensor out = kernel(batched_input, weight, bias, g);
  return g.batched ? out : out.squeeze(0);
}

// custom::conv1d
template <ForwardKernel kernel>
at::Tensor conv1d_entry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                        c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                        int64_t groups) {
  const Geometry g = make_geometry(input, weight, bias, stride, padding, dilation, groups);
  return run_forward<kernel>(input, weight, bias, g);
}

// custom::conv1d.padding
template <ForwardKernel kernel>
at::Tensor conv1d_padding_entry(const at::Tensor& input, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias, c10::IntArrayRef stride,
                                c10::string_view padding, c10::IntArrayRef dilation, int64_t groups) {
  const Geometry g = make_geometry(input, weight, bias, stride, padding, dilation, groups);
  return run_forward<kernel>(input, weight, bias, g);
}

using BackwardKernel = Gradients (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, const Geometry&,
                                     GradientMask);

// custom::conv1d_backward
template <BackwardKernel kernel>
Gradients conv1d_backward_entry(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                int64_t groups, GradientMask output_mask) {
  const Geometry g = make_backward_geometry(grad_output, input, weight, stride, padding, dilation, groups);
  if (g.batched) return kernel(grad_output, input, weight, g, output_mask);
  auto [grad_input, grad_weight, grad_bias] = kernel(grad_output.unsqueeze(0), input.unsqueeze(0), weight, g, output_mask);
  return {grad_input.defined() ? grad_input.squeeze(0) : grad_input, grad_weight, grad_bias};
}

}  // namespace custom_ops::conv1d
