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

}  // namespace custom_ops::conv1d
