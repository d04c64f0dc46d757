// Autograd for custom::conv1d (both overloads): a torch::autograd::Function registered for the
// Autograd dispatch key, so gradients flow the same way from Python, from C++ and inside TorchScript.
// The backward is the operator custom::conv1d_backward, asked only for the gradients autograd needs.
//
// Double backward is not supported: custom::conv1d_backward has no derivative, and differentiating
// through it raises "derivative for custom::conv1d_backward is not implemented".

#include "ops/conv1d/conv1d_geometry.h"
#include "registration/conv1d_op_handles.h"

#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <string>

namespace custom_ops::conv1d {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class Conv1dFunction : public torch::autograd::Function<Conv1dFunction> {
 public:
  // padding_mode: empty for integer padding (pad_left == pad_right), else "valid" or "same"; the
  // resolved [pad_left, pad_right] is what the backward needs either way.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, c10::SymInt stride, c10::SymInt pad_left,
                            c10::SymInt pad_right, c10::SymInt dilation, c10::SymInt groups,
                            const std::string& padding_mode) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    at::Tensor out = padding_mode.empty()
                         ? ops::conv1d(input, weight, bias, {stride}, {pad_left}, {dilation}, groups)
                         : ops::conv1d_padding(input, weight, bias, {stride}, padding_mode, {dilation}, groups);
    ctx->save_for_backward({input, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["pad_left"] = pad_left;
    ctx->saved_data["pad_right"] = pad_right;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    // needs_input_grad counts tensor inputs only: input 0, weight 1, bias 2 when there is one.
    const GradientMask mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                            has_bias && ctx->needs_input_grad(2)};
    const c10::SymInt stride = ctx->saved_data["stride"].toSymInt();
    const c10::SymInt dilation = ctx->saved_data["dilation"].toSymInt();
    const std::vector<c10::SymInt> padding{ctx->saved_data["pad_left"].toSymInt(),
                                           ctx->saved_data["pad_right"].toSymInt()};
    auto [grad_input, grad_weight, grad_bias] =
        ops::conv1d_backward(grad_outputs[0], saved[0], saved[1], {stride}, padding, {dilation},
                             ctx->saved_data["groups"].toSymInt(), mask);
    // One entry per argument of forward (after ctx); non-tensors get none.
    return {grad_input, grad_weight, grad_bias, at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor conv1d_autograd(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                           c10::SymInt groups) {
  check_defined(input, weight);  // before autograd reads their devices, which an undefined tensor has not
  check_integer_arguments(stride, padding, dilation, groups);
  if (stride.size() != 1 || padding.size() != 1 || dilation.size() != 1) {
    // Malformed arguments: the backend's validation raises the error (nothing to differentiate).
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::conv1d(input, weight, bias, stride, padding, dilation, std::move(groups));
  }
  return Conv1dFunction::apply(input, weight, bias, stride[0], padding[0], padding[0], dilation[0], std::move(groups),
                               std::string());
}

at::Tensor conv1d_padding_autograd(const at::Tensor& input, const at::Tensor& weight,
                                   const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
                                   c10::string_view padding, c10::SymIntArrayRef dilation, c10::SymInt groups) {
  check_defined(input, weight);  // before autograd reads their devices, which an undefined tensor has not
  check_integer_arguments(stride, {}, dilation, groups);
  if (stride.size() != 1 || dilation.size() != 1 || weight.dim() != 3 || (padding != "same" && padding != "valid") ||
      dilated_kernel_overflows(dilation[0], weight.sym_size(2))) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::conv1d_padding(input, weight, bias, stride, padding, dilation, std::move(groups));
  }
  // As the forward resolves it (conv1d_geometry.cpp): "same" puts the odd extra element on the right.
  const c10::SymInt total = padding == "same" ? dilation[0] * (weight.sym_size(2) - 1) : c10::SymInt(0);
  const c10::SymInt left = total / 2;
  return Conv1dFunction::apply(input, weight, bias, stride[0], left, total - left, dilation[0], std::move(groups),
                               std::string(padding));
}

}  // namespace
}  // namespace custom_ops::conv1d

TORCH_LIBRARY_IMPL(custom, Autograd, m) {
  using namespace custom_ops::conv1d;
  m.impl("conv1d", &conv1d_autograd);
  m.impl("conv1d.padding", &conv1d_padding_autograd);
  m.impl("conv1d_backward", torch::autograd::autogradNotImplementedFallback());
}
