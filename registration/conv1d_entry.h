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

}  // namespace custom_ops::conv1d
