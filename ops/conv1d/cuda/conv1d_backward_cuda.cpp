// CUDA backend of custom::conv1d_backward: runs the kernels that the backward dispatch table
// (conv1d_cuda_backward_dispatch.cpp) picks for each gradient.
//   grad_input: the transposed convolution, as `stride` forward convolutions of grad_output (one per
//     output phase, grad_input_phase), with the weights flipped along K and transposed within each
//     group (C_g <-> O_g), a view that the Hopper family reads in place (grad_input_phase_weights); they
//     run on the forward kernels under the same TF32 policy as the forward.
//     One input channel per group with several output channels (a single-channel front end) has its
//     own kernel instead, which reads grad_output once for all phases.
//   grad_weight: a split reduction with a fixed summation order: on sm_90a the Hopper kernel
//     (hopper/grad_weight_hopper_kernel.cuh), else conv1d_cuda_backward.cu's.
//   grad_bias: a sum of grad_output over batch and positions.
//   One input channel per group with many output channels (cuda::backward_unfolds): all three as the
//   gradients of the pointwise convolution of the input unfolded by taps, by this same function.
// No host synchronisation; everything runs on the current stream of the inputs' device.

#include "ops/conv1d/conv1d_kernels.h"
#include "ops/conv1d/cuda/conv1d_cuda_backward_dispatch.h"
#include "ops/conv1d/cuda/conv1d_cuda_dispatch.h"
#include "ops/conv1d/cuda/conv1d_cuda_launch.h"
#include "ops/conv1d/cuda/conv1d_interleave.h"
#include "ops/conv1d/cuda/conv1d_repack.h"
#include "ops/conv1d/cuda/conv1d_unfold.h"
#include "ops/conv1d/cuda/conv1d_weight_view.h"
#include "ops/conv1d/cuda/hopper/conv1d_hopper.h"
#include "ops/conv1d/cuda/hopper/grad_weight_hopper.h"

#include <ATen/Context.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

namespace custom_ops::conv1d {

namespace {

// grad_input as forward convolutions of grad_output, one per output phase (grad_input_phase). At stride
// 1 there is one phase with every tap, and its output is grad_input itself; at larger strides each
// phase fills a strided slice of grad_input: up to kMaxInterleavedPhases phases, their outputs are kept
// and interleaved into grad_input in one pass (peak memory: grad_input twice), beyond that each is
// copied into its slice as it comes.
at::Tensor grad_input_by_phases(const at::Tensor& gy, const at::Tensor& w, const Geometry& g) {
  const int64_t s = g.stride;
  const std::vector<int64_t> sizes = {g.batch, g.in_channels, g.in_length};
  const bool interleave = s > 1 && s <= cuda::kMaxInterleavedPhases;
  at::Tensor grad_input = s == 1 ? at::Tensor() : at::empty(sizes, gy.options());
  std::vector<at::Tensor> outputs(interleave ? s : 0);  // undefined: a phase of zeros
  for (int64_t rho = 0; rho < std::min(s, g.in_length); ++rho) {  // phases past L are empty (any stride valid)
    const cuda::GradInputPhase phase = cuda::grad_input_phase(g, rho);
    if (phase.empty) continue;
    if (phase.zero) {
      if (s == 1) return at::zeros(sizes, gy.options());
      if (!interleave) grad_input.slice(2, rho, g.in_length, s).zero_();
      continue;
    }
    const at::Tensor source =
        phase.source_offset == 0 ? gy : gy.narrow(2, phase.source_offset, g.out_length - phase.source_offset);
    const at::Tensor out =
        conv1d_forward_cuda(source, cuda::grad_input_phase_weights(w, g, phase), std::nullopt, phase.geometry);
    if (s == 1) return out;
    if (interleave) {
      outputs[rho] = out.contiguous();
    } else {
      grad_input.slice(2, rho, g.in_length, s).copy_(out);
    }
  }
  if (interleave) cuda::interleave_phases(outputs, grad_input);
  return grad_input;
}

// `t` itself where TMA can read its rows in place, else a copy of it with 16-byte aligned row pitches.
at::Tensor tma_readable(const at::Tensor& t) {
  return cuda::kernel_target(t, true).input_tma_ok ? t : cuda::repack_rows_for_tma(t);
}

// The backward through the input unfolded by taps (cuda::backward_unfolds): the gradients of
// conv1d(columns, weight viewed as (O, K, 1), groups), with columns = unfold_taps(input), then
// grad_input = fold_taps(grad_columns). The unfolded input only where grad_weight needs it: grad_columns
// needs grad_output and the weights alone (an empty tensor of the input's dtype and device stands in).
Gradients backward_unfolded(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                            const Geometry& g, GradientMask mask) {
  const Geometry p = cuda::unfolded_geometry(g);
  const at::Tensor columns = mask[1] ? cuda::unfold_taps(input.contiguous(), g) : at::empty({0}, input.options());
  const at::Tensor pointwise_weight = weight.contiguous().view({g.out_channels, g.kernel_size, 1});
  auto [grad_columns, grad_weight, grad_bias] = conv1d_backward_cuda(grad_output, columns, pointwise_weight, p, mask);
  return {mask[0] ? cuda::fold_taps(grad_columns.contiguous(), g) : at::Tensor(),
          mask[1] ? grad_weight.view(weight.sizes()) : at::Tensor(), grad_bias};
}

}  // namespace

Gradients conv1d_backward_cuda(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                               const Geometry& g, GradientMask mask) {
  const c10::cuda::CUDAGuard device_guard(input.device());
  // The TF32 policy of aten's convolution (forward and backward alike).
  const bool allow_tf32 = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
  const bool hopper = cuda::hopper_runs_on(input.device().index()) && cuda::hopper_kernels_enabled();
  if (cuda::backward_unfolds(g, input.scalar_type(), allow_tf32, hopper)) {
    // The pointwise geometry has K >= 2 channels a group: the call below does not come back here.
    return backward_unfolded(grad_output, input, weight, g, mask);
  }
  const cuda::GradWeightChoice weight_choice =
      mask[1] ? cuda::select_grad_weight(g, input.scalar_type(), allow_tf32, hopper) : cuda::GradWeightChoice::kZero;
  at::Tensor gy = grad_output.contiguous();
  // TMA reads rows only at 16-byte aligned pitches (grad_output of L_out = L - K + 1 mostly has none):
  // where the Hopper grad_weight reads grad_output, one repacked copy serves the grad_input phases too
  // (for a freshly allocated grad_output exactly where cuda::grad_output_repacked says so, which the
  // kernel query names).
  if (weight_choice == cuda::GradWeightChoice::kHopper) gy = tma_readable(gy);
  const at::Tensor w = weight.contiguous();
  at::Tensor grad_input, grad_weight, grad_bias;
  if (mask[0]) {
    switch (cuda::select_grad_input(g, input.scalar_type())) {
      case cuda::GradInputChoice::kNone:
        grad_input = at::empty({g.batch, g.in_channels, g.in_length}, input.options());
        break;
      case cuda::GradInputChoice::kOneChannel: grad_input = cuda::grad_input_one_channel(gy, w, g); break;
      case cuda::GradInputChoice::kPhases: grad_input = grad_input_by_phases(gy, w, g); break;
    }
  }
  if (mask[1]) {
    if (weight_choice == cuda::GradWeightChoice::kZero) {
      grad_weight = at::zeros(weight.sizes(), weight.options());
    } else if (weight_choice == cuda::GradWeightChoice::kHopper) {
      const auto plan = cuda::plan_grad_weight_hopper(g, input.scalar_type(), allow_tf32);
      TORCH_INTERNAL_ASSERT(plan.has_value());
      const at::Tensor x = tma_readable(input);
      grad_weight = at::empty(weight.sizes(), weight.options());
      // grad_bias from the same pass over grad_output (the backward table's fused_with_grad_weight).
      if (mask[2]) grad_bias = at::empty({g.out_channels}, gy.options());
      cuda::launch_grad_weight_hopper(*plan, gy, x, grad_weight, mask[2] ? &grad_bias : nullptr, g);
    } else {
      grad_weight = at::empty(weight.sizes(), weight.options());
      cuda::launch_grad_weight(weight_choice, gy, input.contiguous(), grad_weight, g);
    }
  }
  if (mask[2] && !grad_bias.defined()) grad_bias = at::sum(gy, at::IntArrayRef{0, 2});
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace custom_ops::conv1d
