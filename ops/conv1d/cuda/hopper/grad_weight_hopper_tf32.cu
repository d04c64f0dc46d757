// The Hopper grad_weight kernel for tf32: one translation unit per precision, so they compile in parallel.

#include "ops/conv1d/cuda/hopper/grad_weight_hopper_launch.cuh"

namespace custom_ops::conv1d::cuda {

void launch_grad_weight_hopper_tf32(const GradWeightHopperPlan& plan, const at::Tensor& grad_output,
                                    const at::Tensor& input, at::Tensor& grad_weight, at::Tensor* grad_bias,
                                    const Geometry& g) {
  launch_grad_weight_hopper_instance<float>(plan, grad_output, input, grad_weight, grad_bias, g);
}

}  // namespace custom_ops::conv1d::cuda
