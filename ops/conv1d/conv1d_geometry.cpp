#include "ops/conv1d/conv1d_geometry.h"

#include <c10/util/Exception.h>

#include <string>

namespace custom_ops::conv1d {
namespace {

constexpr const char* kOp = "custom::conv1d: ";

bool is_supported_dtype(c10::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

// Checks that need no sizes: presence, dtype, device, rank.
void check_tensors(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  check_defined(input, weight);
  TORCH_CHECK(input.dim() == 2 || input.dim() == 3, kOp,
              "expected 'input' to be 2-D (C, L) or 3-D (N, C, L), but got a ", input.dim(),
              "-D tensor of shape ", input.sym_sizes());
  TORCH_CHECK(weight.dim() == 3, kOp, "expected 'weight' to be 3-D (out_channels, in_channels/groups, K), but got a ",
              weight.dim(), "-D tensor of shape ", weight.sym_sizes());
  TORCH_CHECK(is_supported_dtype(input.scalar_type()), kOp,
              "expected 'input' to have a floating dtype (float32, float64, float16 or bfloat16), but got ",
              input.scalar_type());
  TORCH_CHECK(weight.scalar_type() == input.scalar_type(), kOp, "expected 'weight' to have the dtype of 'input' (",
              input.scalar_type(), "), but got ", weight.scalar_type());
  TORCH_CHECK(weight.device() == input.device(), kOp, "expected 'weight' on the device of 'input' (", input.device(),
              "), but got ", weight.device());
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->scalar_type() == input.scalar_type(), kOp, "expected 'bias' to have the dtype of 'input' (",
                input.scalar_type(), "), but got ", bias->scalar_type());
    TORCH_CHECK(bias->device() == input.device(), kOp, "expected 'bias' on the device of 'input' (", input.device(),
                "), but got ", bias->device());
  }
}

// Checked int64 arithmetic. Sizes and arguments each fit in int64, but their sums and products need not:
// unchecked, dilation 2^62 with K = 5 wraps the dilated kernel to 1 and the kernel then reads far outside
// the input. A symbolic value (torch.compile, torch.export) is not checked here; the real kernel checks
// the concrete value when it runs.
std::optional<int64_t> concrete(int64_t value) { return value; }
std::optional<int64_t> concrete(const c10::SymInt& value) { return value.maybe_as_int(); }

template <typename Int>
bool add_overflows(const Int& a, const Int& b) {
  const auto x = concrete(a), y = concrete(b);
  int64_t sum = 0;
  return x && y && __builtin_add_overflow(*x, *y, &sum);
}

template <typename Int>
bool mul_overflows(const Int& a, const Int& b) {
  const auto x = concrete(a), y = concrete(b);
  int64_t product = 0;
  return x && y && __builtin_mul_overflow(*x, *y, &product);
}

template <typename Int>
c10::ArrayRef<Int> sizes_of(const at::Tensor& t);
template <>
c10::ArrayRef<int64_t> sizes_of<int64_t>(const at::Tensor& t) { return t.sizes(); }
template <>
c10::ArrayRef<c10::SymInt> sizes_of<c10::SymInt>(const at::Tensor& t) { return t.sym_sizes(); }

// aten accepts an int or a one-element list for stride/padding/dilation of a 1-d convolution.
template <typename Int>
Int single(c10::ArrayRef<Int> values, const char* name) {
  TORCH_CHECK(values.size() == 1, kOp, "expected '", name, "' to have 1 element, but got ", values.size(),
              " elements: ", values);
  return values[0];
}

struct Padding {
  // Either explicit symmetric padding or a string mode.
  enum class Mode { kExplicit, kLeftRight, kValid, kSame } mode;
};

template <typename Int>
Conv1dGeometry<Int> geometry_impl(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, c10::ArrayRef<Int> stride_list,
                                  Padding::Mode mode, c10::ArrayRef<Int> padding_list, c10::ArrayRef<Int> dilation_list,
                                  Int groups) {
  check_tensors(input, weight, bias);
  Conv1dGeometry<Int> g;
  const auto in = sizes_of<Int>(input);
  const auto w = sizes_of<Int>(weight);
  g.batched = input.dim() == 3;
  g.batch = g.batched ? in[0] : Int(1);
  g.in_channels = in[input.dim() - 2];
  g.in_length = in[input.dim() - 1];
  g.out_channels = w[0];
  g.kernel_size = w[2];
  g.stride = single(stride_list, "stride");
  g.dilation = single(dilation_list, "dilation");
  g.groups = groups;

  TORCH_CHECK(g.groups > 0, kOp, "expected 'groups' to be positive, but got ", g.groups);
  TORCH_CHECK(g.stride > 0, kOp, "expected 'stride' to be positive, but got ", g.stride);
  TORCH_CHECK(g.dilation > 0, kOp, "expected 'dilation' to be positive, but got ", g.dilation);
  TORCH_CHECK(g.kernel_size > 0, kOp, "expected 'weight' to have a kernel size (dim 2) of at least 1, but got shape ",
              w);
  TORCH_CHECK(g.out_channels % g.groups == 0, kOp, "expected 'groups' (", g.groups,
              ") to divide the output channels (weight.size(0) = ", g.out_channels, ")");
  TORCH_CHECK(g.in_channels % g.groups == 0, kOp, "expected 'groups' (", g.groups,
              ") to divide the input channels (", g.in_channels, ")");
  // groups divides both channel counts, so it is at most their maximum; weight.size(1) * groups can still
  // overflow when both are 0 and 'groups' is huge.
  TORCH_CHECK(!mul_overflows(w[1], g.groups), kOp, "expected weight.size(1) * 'groups' to fit in int64, but got ",
              w[1], " * ", g.groups);
  TORCH_CHECK(g.in_channels == w[1] * g.groups, kOp, "expected 'input' to have weight.size(1) * groups = ", w[1],
              " * ", g.groups, " = ", w[1] * g.groups, " channels, but got ", g.in_channels,
              " channels (input shape ", in, ")");

  TORCH_CHECK(!mul_overflows(g.dilation, g.kernel_size - 1), kOp,
              "expected the dilated kernel ('dilation' * (K - 1) + 1) to fit in int64, but got 'dilation' = ",
              g.dilation, " with kernel size K = ", g.kernel_size, " (weight.size(2))");
  const Int dilated_kernel = g.dilation * (g.kernel_size - 1) + 1;
  switch (mode) {
    case Padding::Mode::kExplicit: {
      const Int p = single(padding_list, "padding");
      TORCH_CHECK(p >= 0, kOp, "expected 'padding' to be non-negative, but got ", p);
      g.pad_left = p;
      g.pad_right = p;
      break;
    }
    case Padding::Mode::kLeftRight: {  // custom::conv1d_backward: [left, right]
      TORCH_CHECK(padding_list.size() == 2, kOp, "expected 'padding' to have 2 elements (left, right), but got ",
                  padding_list.size(), " elements: ", padding_list);
      g.pad_left = padding_list[0];
      g.pad_right = padding_list[1];
      TORCH_CHECK(g.pad_left >= 0 && g.pad_right >= 0, kOp, "expected 'padding' to be non-negative, but got ",
                  padding_list);
      break;
    }
    case Padding::Mode::kValid:
      g.pad_left = 0;
      g.pad_right = 0;
      break;
    case Padding::Mode::kSame: {
      TORCH_CHECK(g.stride == 1, kOp, "padding='same' requires 'stride' = 1, but got stride ", g.stride);
      const Int total = dilated_kernel - 1;
      g.pad_left = total / 2;
      g.pad_right = total - g.pad_left;  // the odd extra element goes on the right, as in aten
      break;
    }
  }

  TORCH_CHECK(!add_overflows(g.pad_left, g.pad_right) && !add_overflows(g.in_length, g.pad_left + g.pad_right), kOp,
              "expected the padded input length (input length + 'padding' on the left + on the right) to fit in "
              "int64, but got ", g.in_length, " + ", g.pad_left, " + ", g.pad_right);
  const Int padded_length = g.in_length + g.pad_left + g.pad_right;
  TORCH_CHECK(dilated_kernel <= padded_length, kOp, "expected the dilated kernel ('dilation' * (K - 1) + 1 = ",
              dilated_kernel, ") to fit in the padded input (length ", g.in_length, " + padding ",
              g.pad_left + g.pad_right, " = ", padded_length, ")");
  if (bias.has_value() && bias->defined()) {
    const auto b = sizes_of<Int>(*bias);
    TORCH_CHECK(bias->dim() == 1 && b[0] == g.out_channels, kOp,
                "expected 'bias' of shape (out_channels,) = (", g.out_channels, ",), but got shape ", b);
  }
  g.out_length = (padded_length - dilated_kernel) / g.stride + 1;
  // A stride past the padded input leaves one output position, which reads the same inputs whatever the
  // stride: the kernels then see stride 1, so that their index arithmetic (rounding positions up by the
  // stride) cannot overflow for a stride near 2^63, which aten accepts. Otherwise stride < padded length,
  // and the check below leaves that arithmetic its headroom.
  if (concrete(g.out_length) == std::optional<int64_t>(1)) g.stride = Int(1);
  TORCH_CHECK(!add_overflows(padded_length, g.stride), kOp,
              "expected the padded input length + 'stride' to fit in int64, but got ", g.in_length, " + 'padding' [",
              g.pad_left, ", ", g.pad_right, "] + 'stride' ", g.stride);
  // The output's size in bytes must fit in int64 too, also per sample (an empty batch still has strides):
  // a huge 'padding' or an expanded input with a huge batch would otherwise overflow inside the
  // allocator's size or stride computation.
  const Int element_size = Int(static_cast<int64_t>(c10::elementSize(input.scalar_type())));
  TORCH_CHECK(!mul_overflows(g.out_channels, g.out_length) &&
                  !mul_overflows(g.out_channels * g.out_length, element_size) &&
                  !mul_overflows(g.out_channels * g.out_length * element_size, g.batch),
              kOp, "expected the output (batch ", g.batch, " x out_channels ", g.out_channels, " x output length ",
              g.out_length, ", ", element_size, " bytes each) to have a size in bytes that fits in int64; the output "
              "length comes from the input length ", g.in_length, ", 'padding' [", g.pad_left, ", ", g.pad_right,
              "], 'dilation' ", g.dilation, " and 'stride' ", g.stride);
  return g;
}

Padding::Mode parse_padding(c10::string_view padding) {
  if (padding == "valid") return Padding::Mode::kValid;
  if (padding == "same") return Padding::Mode::kSame;
  TORCH_CHECK(false, kOp, "expected 'padding' to be \"valid\" or \"same\", but got \"", std::string(padding), "\"");
}

}  // namespace

void check_defined(const at::Tensor& input, const at::Tensor& weight) {
  TORCH_CHECK(input.defined(), kOp, "expected 'input' to be a tensor, but got None (an undefined tensor)");
  TORCH_CHECK(weight.defined(), kOp, "expected 'weight' to be a tensor, but got None (an undefined tensor)");
}

namespace {
// SymInt keeps integers below about -2^62 as heap-held constants, which the dispatcher cannot pass to the
// backends' int64 signatures (it fails without naming the argument).
void check_inline_int(const c10::SymInt& value, const char* name, const char* expected) {
  if (value.is_heap_allocated() && !value.is_symbolic()) {
    TORCH_CHECK(false, kOp, "expected '", name, "' to be ", expected, ", but got ", *value.maybe_as_int());
  }
}
}  // namespace

void check_integer_arguments(c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                             const c10::SymInt& groups) {
  for (const auto& v : stride) check_inline_int(v, "stride", "positive");
  for (const auto& v : padding) check_inline_int(v, "padding", "non-negative");
  for (const auto& v : dilation) check_inline_int(v, "dilation", "positive");
  check_inline_int(groups, "groups", "positive");
}

bool dilated_kernel_overflows(const c10::SymInt& dilation, const c10::SymInt& kernel_size) {
  return mul_overflows(dilation, kernel_size - 1);
}

Geometry make_geometry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, int64_t groups) {
  return geometry_impl<int64_t>(input, weight, bias, stride, Padding::Mode::kExplicit, padding, dilation, groups);
}

Geometry make_geometry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       c10::IntArrayRef stride, c10::string_view padding, c10::IntArrayRef dilation, int64_t groups) {
  return geometry_impl<int64_t>(input, weight, bias, stride, parse_padding(padding), {}, dilation, groups);
}

SymGeometry make_geometry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                          c10::SymInt groups) {
  return geometry_impl<c10::SymInt>(input, weight, bias, stride, Padding::Mode::kExplicit, padding, dilation,
                                    std::move(groups));
}

SymGeometry make_geometry(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          c10::SymIntArrayRef stride, c10::string_view padding, c10::SymIntArrayRef dilation,
                          c10::SymInt groups) {
  return geometry_impl<c10::SymInt>(input, weight, bias, stride, parse_padding(padding), {}, dilation,
                                    std::move(groups));
}

namespace {

template <typename Int>
Conv1dGeometry<Int> backward_geometry_impl(const at::Tensor& grad_output, const at::Tensor& input,
                                           const at::Tensor& weight, c10::ArrayRef<Int> stride,
                                           c10::ArrayRef<Int> padding, c10::ArrayRef<Int> dilation, Int groups) {
  constexpr const char* kBackward = "custom::conv1d_backward: ";
  TORCH_CHECK(grad_output.defined(), kBackward, "expected 'grad_output' to be a tensor, but got None (an undefined tensor)");
  Conv1dGeometry<Int> g = geometry_impl<Int>(input, weight, std::nullopt, stride, Padding::Mode::kLeftRight, padding,
                                             dilation, std::move(groups));
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type(), kBackward,
              "expected 'grad_output' to have the dtype of 'input' (", input.scalar_type(), "), but got ",
              grad_output.scalar_type());
  TORCH_CHECK(grad_output.device() == input.device(), kBackward, "expected 'grad_output' on the device of 'input' (",
              input.device(), "), but got ", grad_output.device());
  const auto expected = output_shape(g);
  TORCH_CHECK(sizes_of<Int>(grad_output).equals(expected), kBackward, "expected 'grad_output' of the output's shape ",
              c10::ArrayRef<Int>(expected), ", but got shape ", sizes_of<Int>(grad_output));
  return g;
}

}  // namespace

Geometry make_backward_geometry(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                int64_t groups) {
  return backward_geometry_impl<int64_t>(grad_output, input, weight, stride, padding, dilation, groups);
}

SymGeometry make_backward_geometry(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                   c10::SymIntArrayRef stride, c10::SymIntArrayRef padding,
                                   c10::SymIntArrayRef dilation, c10::SymInt groups) {
  return backward_geometry_impl<c10::SymInt>(grad_output, input, weight, stride, padding, dilation, std::move(groups));
}

std::vector<int64_t> output_shape(const Geometry& g) {
  if (g.batched) return {g.batch, g.out_channels, g.out_length};
  return {g.out_channels, g.out_length};
}

std::vector<c10::SymInt> output_shape(const SymGeometry& g) {
  if (g.batched) return {g.batch, g.out_channels, g.out_length};
  return {g.out_channels, g.out_length};
}

}  // namespace custom_ops::conv1d
