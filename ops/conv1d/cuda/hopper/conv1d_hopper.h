#pragma once
// Host entry of the Hopper (sm_90a) tensor-core family (kernel: hopper_kernel.cuh, plan:
// conv1d_hopper_plan.h). One translation unit per precision instantiates its kernels.

#include "ops/conv1d/cuda/conv1d_weight_view.h"
#include "ops/conv1d/cuda/hopper/conv1d_hopper_plan.h"

#include <ATen/core/Tensor.h>

namespace custom_ops::conv1d::cuda {

// Runs the plan (from plan_hopper, for an input that hopper_input_layout_ok accepts) on the current
// stream: re-lays out the weights into the kernel's B blocks, then launches the persistent kernel.
// The weights as any view (the relayout reads them in place); bias contiguous or undefined; out
// contiguous (N, O, L_out).
void launch_hopper(const HopperPlan& plan, const at::Tensor& input, const WeightView& weights, const at::Tensor& bias,
                   at::Tensor& out, const Geometry& g);

// True when the device is an sm_90 GPU and this build carries sm_90a code for it (a build for other
// architectures only has empty Hopper kernels). Cached per device.
bool hopper_runs_on(int device_index);

}  // namespace custom_ops::conv1d::cuda
