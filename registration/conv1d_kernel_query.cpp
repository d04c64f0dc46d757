// custom::conv1d_cuda_kernel: which CUDA kernel custom::conv1d would run for a shape and dtype (under
// the current TF32 setting). For tests and benchmarks: it reads only shapes and dtypes, so it answers
// for tensors on any device, also in builds without CUDA.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/conv1d_cuda_dispatch.h"

#include <ATen/Context.h>
#include <torch/library.h>

namespace {

std::string conv1d_cuda_kernel(const at::Tensor& input, const at::Tensor& weight, c10::IntArrayRef stride,
                               c10::IntArrayRef padding, c10::IntArrayRef dilation, int64_t groups) {
  using namespace custom_ops::conv1d;
  const Geometry g = make_geometry(input, weight, std::nullopt, stride, padding, dilation, groups);
  const bool allow_tf32 = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
  const auto choice = cuda::select_kernel(g, input.scalar_type(), allow_tf32);
  return cuda::kernel_name(choice, input.scalar_type(), allow_tf32);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(custom, m) {
  m.def("conv1d_cuda_kernel(Tensor input, Tensor weight, int[1] stride=1, int[1] padding=0, int[1] dilation=1, "
        "int groups=1) -> str");
  m.impl("conv1d_cuda_kernel", c10::DispatchKey::CompositeExplicitAutograd, TORCH_FN(conv1d_cuda_kernel));
}
