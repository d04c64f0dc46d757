// custom::conv1d_cuda_kernel: which CUDA kernel custom::conv1d would run for a shape and dtype (under
// the current TF32 setting); custom::conv1d_cuda_backward_kernels: which kernels custom::conv1d_backward
// would run for each gradient. For tests and benchmarks: they read only shapes and dtypes, so they
// answer for tensors on any device, also in builds without CUDA.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/conv1d_cuda_backward_dispatch.h"
#include "ops/conv1d/cuda/conv1d_cuda_dispatch.h"

#include <ATen/Context.h>
#include <torch/library.h>

#ifdef CUSTOM_OPS_WITH_CUDA
#include "ops/conv1d/cuda/hopper/conv1d_hopper.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace {

// Whether the Hopper family would run: on the input's GPU, else on the current GPU, else nowhere; or, with
// `arch` given (e.g. 90 or 80), on a GPU of that architecture with a build for it.
bool device_runs_hopper(const at::Tensor& input, std::optional<int64_t> arch) {
  if (arch.has_value()) return *arch == 90;
#ifdef CUSTOM_OPS_WITH_CUDA
  if (input.is_cuda()) return custom_ops::conv1d::cuda::hopper_runs_on(input.device().index());
  if (at::cuda::is_available()) return custom_ops::conv1d::cuda::hopper_runs_on(c10::cuda::current_device());
#endif
  return false;
}

std::string conv1d_cuda_kernel(const at::Tensor& input, const at::Tensor& weight, c10::IntArrayRef stride,
                               c10::IntArrayRef padding, c10::IntArrayRef dilation, int64_t groups,
                               std::optional<int64_t> arch) {
  using namespace custom_ops::conv1d;
  const Geometry g = make_geometry(input, weight, std::nullopt, stride, padding, dilation, groups);
  const bool allow_tf32 = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
  const cuda::KernelTarget target = cuda::kernel_target(input, device_runs_hopper(input, arch));
  const auto choice = cuda::select_kernel(g, input.scalar_type(), allow_tf32, target);
  return cuda::kernel_name(choice, input.scalar_type(), allow_tf32);
}

// [grad_input, grad_weight, grad_bias]: the kernel (or, for grad_input by phases, the forward kernel of
// each stride phase) that computes each gradient.
std::vector<std::string> conv1d_cuda_backward_kernels(const at::Tensor& input, const at::Tensor& weight,
                                                      c10::IntArrayRef stride, c10::IntArrayRef padding,
                                                      c10::IntArrayRef dilation, int64_t groups,
                                                      std::optional<int64_t> arch) {
  using namespace custom_ops::conv1d;
  const Geometry g = make_geometry(input, weight, std::nullopt, stride, padding, dilation, groups);
  const bool allow_tf32 = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
  const c10::ScalarType dtype = input.scalar_type();
  return cuda::backward_kernel_names(g, dtype, allow_tf32, device_runs_hopper(input, arch));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(custom, m) {
  m.def("conv1d_cuda_kernel(Tensor input, Tensor weight, int[1] stride=1, int[1] padding=0, int[1] dilation=1, "
        "int groups=1, int? arch=None) -> str");
  m.impl("conv1d_cuda_kernel", c10::DispatchKey::CompositeExplicitAutograd, TORCH_FN(conv1d_cuda_kernel));
  m.def("conv1d_cuda_backward_kernels(Tensor input, Tensor weight, int[1] stride=1, int[1] padding=0, "
        "int[1] dilation=1, int groups=1, int? arch=None) -> str[]");
  m.impl("conv1d_cuda_backward_kernels", c10::DispatchKey::CompositeExplicitAutograd,
         TORCH_FN(conv1d_cuda_backward_kernels));
  // Switches the Hopper family on or off for this process (tests run the other kernels on an H100 with
  // it); returns the previous setting.
  m.def("conv1d_cuda_use_hopper(bool enabled) -> bool", &custom_ops::conv1d::cuda::set_hopper_kernels_enabled);
}
