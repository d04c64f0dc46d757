#pragma once
// Public C++ API of the custom_ops plugin.
//
// custom_ops::conv1d is a drop-in for at::conv1d / torch::nn::functional::conv1d. It calls
// custom::conv1d through the PyTorch dispatcher, so it runs on whichever backend (CPU, CUDA, Meta)
// holds its inputs, exactly like a call from Python or from a TorchScript model.
//
//   #include <custom_ops/conv1d.h>
//   at::Tensor y = custom_ops::conv1d(x, w, b, /*stride=*/{1}, /*padding=*/{1});
//   at::Tensor z = custom_ops::conv1d(x, w, b, /*stride=*/{1}, "same");

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <array>
#include <optional>
#include <tuple>
#include <type_traits>

namespace custom_ops {

// Integer padding: the same padding on both sides (aten::conv1d).
at::Tensor conv1d(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias = {},
                  at::IntArrayRef stride = 1, at::IntArrayRef padding = 0, at::IntArrayRef dilation = 1,
                  int64_t groups = 1);

// String padding: "valid" (none) or "same" (output length = input length; needs stride 1), as
// aten::conv1d.padding.
at::Tensor conv1d_string_padding(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 c10::string_view padding, at::IntArrayRef dilation = 1, int64_t groups = 1);

// The same as an overload of conv1d. A template, so that a literal 0 for padding (a null pointer
// constant, hence convertible to a string) still picks the integer overload above.
template <typename PaddingMode,
          std::enable_if_t<std::is_convertible_v<const PaddingMode&, c10::string_view> &&
                               !std::is_arithmetic_v<PaddingMode> && !std::is_null_pointer_v<PaddingMode>,
                           int> = 0>
at::Tensor conv1d(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                  at::IntArrayRef stride, const PaddingMode& padding, at::IntArrayRef dilation = 1,
                  int64_t groups = 1) {
  return conv1d_string_padding(input, weight, bias, stride, c10::string_view(padding), dilation, groups);
}

// Gradients of conv1d (custom::conv1d_backward): (grad_input, grad_weight, grad_bias), each computed
// only where output_mask asks (else undefined). padding is [left, right], as the forward applied it.
// Autograd calls this for you: conv1d's outputs carry gradients in Python, C++ and TorchScript.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv1d_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                               const at::Tensor& weight, at::IntArrayRef stride,
                                                               at::IntArrayRef padding, at::IntArrayRef dilation,
                                                               int64_t groups, std::array<bool, 3> output_mask);

}  // namespace custom_ops
