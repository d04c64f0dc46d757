// CUDA backend of custom::conv1d_backward: which kernel computes each gradient.
//   grad_input: the transposed convolution, as `stride` forward convolutions of grad_output (one per
//     output phase, grad_input_by_phases), with the weights flipped along K and transposed within each
//     group (C_g <-> O_g); they run on the forward kernels (tensor cores, depthwise) under the same TF32
//     policy as the forward. One input channel per group with several output channels (a single-channel
//     front end) has its own kernel instead, which reads grad_output once for all phases.
//   grad_weight: a split reduction with a fixed summation order (conv1d_cuda_backward.cu): per channel
//     for one input channel per group, on tensor cores under the forward's TF32 policy, else CUDA cores.
//   grad_bias: a sum of grad_output over batch and positions.
// No host synchronisation; everything runs on the current stream of the inputs' device.

#include "ops/conv1d/conv1d_kernels.h"
#include "ops/conv1d/cuda/conv1d_cuda_launch.h"

#include <ATen/Context.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <numeric>

namespace custom_ops::conv1d {

namespace {

// grad_input as forward convolutions of grad_output, one per output phase rho in [0, stride):
//   grad_input[n, c, q*s + rho] = sum over taps k with k*d = rho + pl (mod s), and the group's o, of
//                                 W[o, c, k] * gy[n, o, q + (rho + pl - k*d) / s].
// Those taps are k0, k0 + s/g, k0 + 2s/g, ... (g = gcd(d, s)), and their gy offsets fall by d/g from one
// to the next: a stride-1 convolution with dilation d/g over q, with the taps' weights flipped and
// transposed within the group (C_g <-> O_g). At stride 1 there is one phase with every tap, and its
// output is grad_input itself; at larger strides each phase fills a strided slice of grad_input.
at::Tensor grad_input_by_phases(const at::Tensor& gy, const at::Tensor& w, const Geometry& g) {
  const int64_t s = g.stride, d = g.dilation, K = g.kernel_size;
  const int64_t gcd = std::gcd(s, d), tap_step = s / gcd, dilation = d / gcd;
  const int64_t O_g = g.out_channels_per_group(), C_g = g.in_channels_per_group();
  const at::Tensor w_groups = w.view({g.groups, O_g, C_g, K});
  const std::vector<int64_t> sizes = {g.batch, g.in_channels, g.in_length};
  at::Tensor grad_input = s == 1 ? at::Tensor() : at::empty(sizes, gy.options());
  for (int64_t rho = 0; rho < s; ++rho) {
    const int64_t phase_length = (g.in_length - rho + s - 1) / s;  // q with q*s + rho < L
    if (phase_length <= 0) continue;
    at::Tensor out = s == 1 ? grad_input : grad_input.slice(2, rho, g.in_length, s);
    int64_t k0 = 0;
    while (k0 < std::min(K, tap_step) && ((k0 * d - rho - g.pad_left) % s + s) % s != 0) ++k0;
    if (k0 >= std::min(K, tap_step)) {  // no tap reaches this phase (never at stride 1)
      out.zero_();
      continue;
    }
    const int64_t taps = (K - k0 + tap_step - 1) / tap_step;
    const int64_t first_offset = (rho + g.pad_left - k0 * d) / s;  // gy offset of tap k0 (exact)
    int64_t pad_left = (taps - 1) * dilation - first_offset;
    at::Tensor source = gy;
    if (pad_left < 0) {  // the window starts right of gy's start: drop the positions it never reads
      source = gy.narrow(2, std::min(-pad_left, g.out_length), g.out_length - std::min(-pad_left, g.out_length));
      pad_left = 0;
    }
    const at::Tensor phase_weight = w_groups.slice(3, k0, K, tap_step).flip({3}).transpose(1, 2).reshape({g.in_channels, O_g, taps});
    Geometry t;
    t.batched = true;
    t.batch = g.batch;
    t.in_channels = g.out_channels;
    t.in_length = source.size(2);
    t.out_channels = g.in_channels;
    t.kernel_size = taps;
    t.stride = 1;
    t.dilation = dilation;
    t.groups = g.groups;
    t.pad_left = pad_left;
    t.out_length = phase_length;
    t.pad_right = std::max<int64_t>(0, t.out_length + dilation * (taps - 1) - t.in_length - pad_left);
    if (t.in_length == 0) {  // every tap reads past gy's end
      if (s == 1) return at::zeros(sizes, gy.options());
      out.zero_();
      continue;
    }
    const at::Tensor phase = conv1d_forward_cuda(source, phase_weight.contiguous(), std::nullopt, t);
    if (s == 1) return phase;
    out.copy_(phase);
  }
  return grad_input;
}

}  // namespace

Gradients conv1d_backward_cuda(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                               const Geometry& g, GradientMask mask) {
  const c10::cuda::CUDAGuard device_guard(input.device());
  // The TF32 policy of aten's convolution (forward and backward alike).
  const bool allow_tf32 = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
  const at::Tensor gy = grad_output.contiguous();
  const at::Tensor w = weight.contiguous();
  at::Tensor grad_input, grad_weight, grad_bias;
  if (mask[0]) {
    if (g.batch * g.in_channels * g.in_length == 0) {
      grad_input = at::empty({g.batch, g.in_channels, g.in_length}, input.options());
    } else {
      grad_input = cuda::grad_input_one_channel(gy, w, g);
      if (!grad_input.defined()) grad_input = grad_input_by_phases(gy, w, g);
    }
  }
  if (mask[1]) {
    grad_weight = at::empty(weight.sizes(), weight.options());
    if (g.batch == 0) {
      grad_weight.zero_();
    } else {
      cuda::launch_grad_weight(gy, input.contiguous(), grad_weight, g, allow_tf32);
    }
  }
  if (mask[2]) grad_bias = at::sum(gy, at::IntArrayRef{0, 2});
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace custom_ops::conv1d
