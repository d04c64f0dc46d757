// The Hopper kernels for fp16: one translation unit per precision, so they compile in parallel.

#include "ops/conv1d/cuda/hopper/hopper_launch.cuh"

namespace custom_ops::conv1d::cuda {

void launch_hopper_fp16(const HopperPlan& plan, const at::Tensor& input, const WeightView& weights,
                       const at::Tensor& bias, at::Tensor& out, const Geometry& g) {
  launch_hopper_tiles<__half, HopperPrecision::kFP16>(plan, input, weights, bias, out, g);
}

}  // namespace custom_ops::conv1d::cuda
