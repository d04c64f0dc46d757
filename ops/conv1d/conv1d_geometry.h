#pragma once
// Shape logic and argument validation for custom::conv1d, shared by the CPU, CUDA and Meta kernels.
//
// Every check lives here, so the three backends reject exactly the same inputs with the same messages.
// The geometry is templated on the integer type: int64_t for the real kernels, c10::SymInt for the Meta
// kernel (FakeTensor, torch.compile, torch.export with symbolic shapes).

#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/string_view.h>

#include <optional>

namespace custom_ops::conv1d {

template <typename Int>
struct Conv1dGeometry {
  bool batched = true;  // false: input was (C, L) and the output is (O, L_out)
  Int batch;            // N (1 for unbatched input)
  Int in_channels;      // C
  Int in_length;        // L
  Int out_channels;     // O
  Int kernel_size;      // K
  Int stride;
  Int pad_left;         // aten's "same" puts the odd extra element on the right
  Int pad_right;
  Int dilation;
  Int groups;
  Int out_length;       // L_out

  Int in_channels_per_group() const { return in_channels / groups; }
  Int out_channels_per_group() const { return out_channels / groups; }
};

using Geometry = Conv1dGeometry<int64_t>;
using SymGeometry = Conv1dGeometry<c10::SymInt>;

// Raises an error naming 'input' or 'weight' when it is undefined (None from Python). The wrappers that
// run before the backends (autograd) call it first, since they touch the tensors' devices.
void check_defined(const at::Tensor& input, const at::Tensor& weight);

// Raises an error naming the argument for an integer below about -2^62, which SymInt holds on the heap and
// the backends' int64 signatures cannot receive. The autograd wrapper, which sees every call first
// (outside inference mode), calls it.
void check_integer_arguments(c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                             const c10::SymInt& groups);

// Whether dilation * (kernel_size - 1) overflows int64 (false when either is symbolic). The autograd
// wrapper asks before resolving "same" padding, and leaves the error to the backend's validation.
bool dilated_kernel_overflows(const c10::SymInt& dilation, const c10::SymInt& kernel_size);

// Integer padding (aten::conv1d) and string padding (aten::conv1d.padding: "valid" or "same").
Geometry make_geometry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, int64_t groups);
Geometry make_geometry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       c10::IntArrayRef stride, c10::string_view padding, c10::IntArrayRef dilation, int64_t groups);
SymGeometry make_geometry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                          c10::SymInt groups);
SymGeometry make_geometry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          c10::SymIntArrayRef stride, c10::string_view padding, c10::SymIntArrayRef dilation,
                          c10::SymInt groups);

// custom::conv1d_backward: padding is [left, right] (what the forward used, "same" resolved), and
// grad_output must have the output's shape, dtype and device.
Geometry make_backward_geometry(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                int64_t groups);
SymGeometry make_backward_geometry(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                   c10::SymIntArrayRef stride, c10::SymIntArrayRef padding,
                                   c10::SymIntArrayRef dilation, c10::SymInt groups);

// Output shape: (N, O, L_out), or (O, L_out) for unbatched input.
std::vector<int64_t> output_shape(const Geometry& g);
std::vector<c10::SymInt> output_shape(const SymGeometry& g);

}  // namespace custom_ops::conv1d
