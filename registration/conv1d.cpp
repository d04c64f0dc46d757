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
namespace {

// SymInt holds integers below about -2^62 only on the heap, and fromIntArrayRefSlow rejects them without
// naming the argument: named here (for the arguments' other values the backends' checks speak).
c10::SymIntArrayRef as_sym_ints(at::IntArrayRef values, const char* name, const char* expected) {
  for (const int64_t value : values) {
    TORCH_CHECK(c10::SymInt::check_range(value), "custom::conv1d: expected '", name, "' to be ", expected,
                ", but got ", value);
  }
  return c10::fromIntArrayRefSlow(values);
}

}  // namespace

at::Tensor conv1d(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("custom::conv1d", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::SymIntArrayRef, c10::SymIntArrayRef, c10::SymIntArrayRef,
                                         c10::SymInt)>();
  return op.call(input, weight, bias, as_sym_ints(stride, "stride", "positive"),
                 as_sym_ints(padding, "padding", "non-negative"), as_sym_ints(dilation, "dilation", "positive"),
                 c10::SymInt(groups));
}

at::Tensor conv1d_string_padding(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 c10::string_view padding, at::IntArrayRef dilation, int64_t groups) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("custom::conv1d", "padding")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::SymIntArrayRef, c10::string_view, c10::SymIntArrayRef,
                                         c10::SymInt)>();
  return op.call(input, weight, bias, as_sym_ints(stride, "stride", "positive"), padding,
                 as_sym_ints(dilation, "dilation", "positive"), c10::SymInt(groups));
}

}  // namespace custom_ops
