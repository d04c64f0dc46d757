// CUDA backend of custom::conv1d_backward: which kernel computes each gradient.
//   grad_input, stride 1: the transposed convolution is a forward convolution of grad_output with the
//     weights flipped along K and transposed within each group (C_g <-> O_g), padded by
//     dilation * (K - 1) - pad_left; it runs on the forward kernels (tensor cores, depthwise), under the
//     same TF32 policy as the forward. Strides > 1 (and padding wider than the dilated kernel): a gather
//     kernel (conv1d_cuda_backward.cu).
//   grad_weight: a split reduction with a fixed summation order (conv1d_cuda_backward.cu).
//   grad_bias: a sum of grad_output over batch and positions.
// No host synchronisation; everything runs on the current stream of the inputs' device.

#include "ops/conv1d/conv1d_kernels.h"
#include "ops/conv1d/cuda/conv1d_cuda_launch.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <c10/cuda/CUDAGuard.h>

namespace custom_ops::conv1d {

namespace {

// The geometry of grad_input as a forward convolution of grad_output (stride 1 only).
Geometry transposed_geometry(const Geometry& g) {
  Geometry t;
  t.batched = true;
  t.batch = g.batch;
  t.in_channels = g.out_channels;
  t.in_length = g.out_length;
  t.out_channels = g.in_channels;
  t.kernel_size = g.kernel_size;
  t.stride = 1;
  t.dilation = g.dilation;
  t.groups = g.groups;
  t.pad_left = g.dilation * (g.kernel_size - 1) - g.pad_left;
  t.out_length = g.in_length;
  t.pad_right = t.out_length + t.dilation * (t.kernel_size - 1) - t.in_length - t.pad_left;
  return t;
}

}  // namespace

Gradients conv1d_backward_cuda(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                               const Geometry& g, GradientMask mask) {
  const c10::cuda::CUDAGuard device_guard(input.device());
  const at::Tensor gy = grad_output.contiguous();
  const at::Tensor w = weight.contiguous();
  at::Tensor grad_input, grad_weight, grad_bias;
  if (mask[0]) {
    if (g.stride == 1 && g.dilation * (g.kernel_size - 1) >= g.pad_left) {
      const int64_t O_g = g.out_channels_per_group(), C_g = g.in_channels_per_group();
      const at::Tensor flipped =
          w.view({g.groups, O_g, C_g, g.kernel_size}).transpose(1, 2).flip({3}).reshape({g.in_channels, O_g, g.kernel_size});
      grad_input = conv1d_forward_cuda(gy, flipped.contiguous(), std::nullopt, transposed_geometry(g));
    } else {
      grad_input = at::empty({g.batch, g.in_channels, g.in_length}, input.options());
      if (grad_input.numel() > 0) cuda::launch_grad_input_gather(gy, w, grad_input, g);
    }
  }
  if (mask[1]) {
    grad_weight = at::empty(weight.sizes(), weight.options());
    if (g.batch == 0) {
      grad_weight.zero_();
    } else {
      cuda::launch_grad_weight(gy, input.contiguous(), grad_weight, g);
    }
  }
  if (mask[2]) grad_bias = at::sum(gy, at::IntArrayRef{0, 2});
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace custom_ops::conv1d
