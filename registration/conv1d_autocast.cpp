// Autocast for custom::conv1d, as aten's conv1d behaves under torch.autocast: on its "lower precision"
// list, so floating inputs (not float64) are cast to the autocast dtype of the device (float16 or
// bfloat16 on CUDA, bfloat16 on CPU by default) and the op runs in that dtype.

#include "registration/conv1d_op_handles.h"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

namespace custom_ops::conv1d {
namespace {

template <c10::DeviceType kDevice, c10::DispatchKey kAutocastKey>
at::Tensor conv1d_autocast(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                           c10::SymInt groups) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(kAutocastKey);
  const at::ScalarType dtype = at::autocast::get_autocast_dtype(kDevice);
  return ops::conv1d(at::autocast::cached_cast(dtype, input, kDevice), at::autocast::cached_cast(dtype, weight, kDevice),
                     at::autocast::cached_cast(dtype, bias, kDevice), stride, padding, dilation, std::move(groups));
}

template <c10::DeviceType kDevice, c10::DispatchKey kAutocastKey>
at::Tensor conv1d_padding_autocast(const at::Tensor& input, const at::Tensor& weight,
                                   const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
                                   c10::string_view padding, c10::SymIntArrayRef dilation, c10::SymInt groups) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(kAutocastKey);
  const at::ScalarType dtype = at::autocast::get_autocast_dtype(kDevice);
  return ops::conv1d_padding(at::autocast::cached_cast(dtype, input, kDevice),
                             at::autocast::cached_cast(dtype, weight, kDevice),
                             at::autocast::cached_cast(dtype, bias, kDevice), stride, padding, dilation,
                             std::move(groups));
}

}  // namespace
}  // namespace custom_ops::conv1d

TORCH_LIBRARY_IMPL(custom, AutocastCUDA, m) {
  using namespace custom_ops::conv1d;
  m.impl("conv1d", &conv1d_autocast<c10::DeviceType::CUDA, c10::DispatchKey::AutocastCUDA>);
  m.impl("conv1d.padding", &conv1d_padding_autocast<c10::DeviceType::CUDA, c10::DispatchKey::AutocastCUDA>);
}

TORCH_LIBRARY_IMPL(custom, AutocastCPU, m) {
  using namespace custom_ops::conv1d;
  m.impl("conv1d", &conv1d_autocast<c10::DeviceType::CPU, c10::DispatchKey::AutocastCPU>);
  m.impl("conv1d.padding", &conv1d_padding_autocast<c10::DeviceType::CPU, c10::DispatchKey::AutocastCPU>);
}
