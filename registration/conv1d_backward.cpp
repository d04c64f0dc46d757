// custom::conv1d_backward: its schema, and the C++ API that calls it through the dispatcher.
//
// The gradients of custom::conv1d, as an operator of its own so that every backend (CPU, CUDA, Meta)
// registers a kernel for it and autograd (conv1d_autograd.cpp) calls it like any other op. padding is
// [left, right]: what the forward used, with "same" and "valid" already resolved. output_mask says
// which of (grad_input, grad_weight, grad_bias) to compute; the others come back undefined (None).

#include "custom_ops/conv1d.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(custom, m) {
  m.def(
      "conv1d_backward(Tensor grad_output, Tensor input, Tensor weight, SymInt[1] stride, SymInt[2] padding, "
      "SymInt[1] dilation, SymInt groups, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
}

namespace custom_ops {

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv1d_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                               const at::Tensor& weight, at::IntArrayRef stride,
                                                               at::IntArrayRef padding, at::IntArrayRef dilation,
                                                               int64_t groups, std::array<bool, 3> output_mask) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("custom::conv1d_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef,
                           c10::SymIntArrayRef, c10::SymIntArrayRef, c10::SymInt, std::array<bool, 3>)>();
  return op.call(grad_output, input, weight, c10::fromIntArrayRefSlow(stride), c10::fromIntArrayRefSlow(padding),
                 c10::fromIntArrayRefSlow(dilation), c10::SymInt(groups), output_mask);
}

}  // namespace custom_ops
