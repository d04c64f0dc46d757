// custom::conv1d: the schemas, and the C++ API that calls them through the dispatcher.
//
// The schemas mirror aten::conv1d and aten::conv1d.padding one to one, so every F.conv1d call maps to
// custom::conv1d with the same arguments. Backend kernels register in conv1d_{cpu,cuda,meta}.cpp.

#include "custom_ops/conv1d.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

TORCH_LIBRARY(custom, m) {
  m.def(
      "conv1d(Tensor input, Tensor weight, Tensor? bias=None, SymInt[1] stride=1, SymInt[1] padding=0, "
      "SymInt[1] dilation=1, SymInt groups=1) -> Tensor");
  m.def(
      "conv1d.padding(Tensor input, Tensor weight, Tensor? bias=None, SymInt[1] stride=1, str padding=\"valid\", "
      "SymInt[1] dilation=1, SymInt groups=1) -> Tensor");
}

namespace custom_ops {

at::Tensor conv1d(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("custom::conv1d", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::SymIntArrayRef, c10::SymIntArrayRef, c10::SymIntArrayRef,
                                         c10::SymInt)>();
  return op.call(input, weight, bias, c10::fromIntArrayRefSlow(stride), c10::fromIntArrayRefSlow(padding),
                 c10::fromIntArrayRefSlow(dilation), c10::SymInt(groups));
}

at::Tensor conv1d_string_padding(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 c10::string_view padding, at::IntArrayRef dilation, int64_t groups) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("custom::conv1d", "padding")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::SymIntArrayRef, c10::string_view, c10::SymIntArrayRef,
                                         c10::SymInt)>();
  return op.call(input, weight, bias, c10::fromIntArrayRefSlow(stride), padding, c10::fromIntArrayRefSlow(dilation),
                 c10::SymInt(groups));
}

}  // namespace custom_ops
