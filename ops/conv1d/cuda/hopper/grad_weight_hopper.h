#pragma once
// Host entry of the Hopper grad_weight kernel (kernel: grad_weight_hopper_kernel.cuh, plan:
// grad_weight_hopper_plan.h). One translation unit per precision instantiates it.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/hopper/grad_weight_hopper_plan.h"

#include <ATen/core/Tensor.h>

namespace custom_ops::conv1d::cuda {

// Runs the plan on the current stream: grad_output (N, O, L_out) and input (N, C, L) with rows TMA can
// read in place (hopper_input_layout_ok), grad_weight (O, C_g, K) contiguous, written whole; and, where
// grad_bias is given ((O,), grad_output's dtype), grad_bias from the same pass over grad_output.
void launch_grad_weight_hopper(const GradWeightHopperPlan& plan, const at::Tensor& grad_output,
                               const at::Tensor& input, at::Tensor& grad_weight, at::Tensor* grad_bias,
                               const Geometry& g);

}  // namespace custom_ops::conv1d::cuda
