#pragma once
// Calls into the dispatcher for the custom::conv1d family with the schemas' own argument types
// (SymInt), for the wrappers that sit on top of the backends (autograd, autocast): symbolic shapes
// (torch.compile, torch.export) pass through them unchanged.

#include "ops/conv1d/conv1d_kernels.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace custom_ops::conv1d::ops {

inline at::Tensor conv1d(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                         c10::SymInt groups) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("custom::conv1d", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::SymIntArrayRef, c10::SymIntArrayRef, c10::SymIntArrayRef,
                                         c10::SymInt)>();
  return op.call(input, weight, bias, stride, padding, dilation, std::move(groups));
}

inline at::Tensor conv1d_padding(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
                                 c10::string_view padding, c10::SymIntArrayRef dilation, c10::SymInt groups) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("custom::conv1d", "padding")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::SymIntArrayRef, c10::string_view, c10::SymIntArrayRef,
                                         c10::SymInt)>();
  return op.call(input, weight, bias, stride, padding, dilation, std::move(groups));
}

inline Gradients conv1d_backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                 c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                                 c10::SymInt groups, GradientMask output_mask) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("custom::conv1d_backward", "")
                       .typed<Gradients(const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef,
                                        c10::SymIntArrayRef, c10::SymIntArrayRef, c10::SymInt, GradientMask)>();
  return op.call(grad_output, input, weight, stride, padding, dilation, std::move(groups), output_mask);
}

}  // namespace custom_ops::conv1d::ops
