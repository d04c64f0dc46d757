#pragma once
// Launch template of the Hopper grad_weight kernel: one instantiation per precision
// (grad_weight_hopper_<precision>.cu).

#include "ops/conv1d/cuda/conv1d_cuda_launch.h"
#include "ops/conv1d/cuda/hopper/grad_weight_hopper.h"
#include "ops/conv1d/cuda/hopper/grad_weight_hopper_kernel.cuh"
#include "ops/conv1d/cuda/hopper/hopper_tensor_map.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>

namespace custom_ops::conv1d::cuda {

template <typename Element>
void launch_grad_weight_hopper_instance(const GradWeightHopperPlan& plan, const at::Tensor& grad_output,
                                        const at::Tensor& input, at::Tensor& grad_weight, at::Tensor* grad_bias,
                                        const Geometry& g) {
  using Traits = hopper::GradWeightTraits<Element>;
  TORCH_INTERNAL_ASSERT(plan.stages <= GradWeightHopperPlan::kMaxStages &&
                        plan.taps_per_group <= Traits::kMaxTaps &&
                        GradWeightHopperPlan::consumers_alternate(plan.precision) == Traits::kAlternate);
  // Alternate stages: each stage always serves one consumer, and the stages' room carries one consumer's
  // sums to the other at the end (grad_weight_hopper_plan.cpp).
  TORCH_INTERNAL_ASSERT(!Traits::kAlternate || (plan.stages % 2 == 0 && plan.exchange_bytes > 0 &&
                                                 plan.shared_bytes - 2048 >= plan.exchange_bytes));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const cudaDeviceProp* props = at::cuda::getCurrentDeviceProperties();
  const int64_t splits = grad_weight_hopper_splits(plan, props->multiProcessorCount);
  // One slot a tap of the key's tap group (the kernel writes and the reduction reads no more).
  const int64_t key_floats =
      int64_t(plan.taps_per_group) * GradWeightHopperPlan::kChannels * GradWeightHopperPlan::kOutChannels;
  at::Tensor partials = at::empty({splits * plan.keys * key_floats}, grad_output.options().dtype(at::kFloat));

  // grad_bias's partial row sums: one row of 128 output channels per (split, group, channel tile).
  const int64_t bias_keys = g.groups * plan.o_tiles;
  at::Tensor bias_partials;
  if (grad_bias != nullptr) {
    bias_partials = at::empty({splits * bias_keys * GradWeightHopperPlan::kOutChannels},
                              grad_output.options().dtype(at::kFloat));
  }

  hopper::GradWeightParams params{};
  params.partials = partials.mutable_data_ptr<float>();
  params.bias_partials = grad_bias != nullptr ? bias_partials.mutable_data_ptr<float>() : nullptr;
  params.bias_keys = static_cast<int>(bias_keys);
  params.l_blocks = plan.l_blocks;
  params.tiles = plan.tiles;
  params.tiles_per_split = (plan.tiles + splits - 1) / splits;
  params.keys = static_cast<int>(plan.keys);
  params.c_tiles = plan.c_tiles;
  params.o_tiles = plan.o_tiles;
  params.tap_groups = plan.tap_groups;
  params.taps_per_group = plan.taps_per_group;
  params.stride = static_cast<int>(g.stride);
  params.dilation = static_cast<int>(g.dilation);
  params.kernel_size = static_cast<int>(g.kernel_size);
  params.pad_left = static_cast<int>(g.pad_left);
  params.window_pitch = plan.window_pitch;
  params.stages = plan.stages;
  params.gradient_stage_bytes = static_cast<uint32_t>(plan.gradient_stage_bytes);
  params.input_stage_bytes = static_cast<uint32_t>(plan.input_stage_bytes);
  params.stage_bytes = static_cast<uint32_t>(plan.stage_bytes);

  const CUtensorMap gradient_map = hopper::encode_rows_map(
      grad_output, g.out_length, g.out_channels_per_group(), g.groups, uint32_t(Traits::kSwizzleRowPositions),
      uint32_t(GradWeightHopperPlan::kOutChannels), true);
  const CUtensorMap input_map = hopper::encode_rows_map(input, g.in_length, g.in_channels_per_group(), g.groups,
                                                        uint32_t(plan.window_pitch),
                                                        uint32_t(GradWeightHopperPlan::kChannels), false);
  const auto kernel = hopper::grad_weight_hopper_kernel<Traits>;
  TORCH_CHECK(int64_t(props->sharedMemPerBlockOptin) >= plan.shared_bytes, "custom::conv1d: the Hopper grad_weight "
              "kernel needs ", plan.shared_bytes, " bytes of shared memory per block, the device offers ",
              props->sharedMemPerBlockOptin);
  resident_blocks_per_sm(reinterpret_cast<const void*>(kernel), Traits::kThreads, plan.shared_bytes);
  const int64_t grid = splits * plan.keys;
  kernel<<<static_cast<unsigned>(grid), Traits::kThreads, plan.shared_bytes, stream>>>(gradient_map, input_map, params);
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  hopper::GradWeightReduceShape shape{};
  shape.elements = grad_weight.numel();
  shape.splits = splits;
  shape.keys = static_cast<int>(plan.keys);
  shape.c_tiles = plan.c_tiles;
  shape.o_tiles = plan.o_tiles;
  shape.tap_groups = plan.tap_groups;
  shape.taps_per_group = plan.taps_per_group;
  shape.in_channels_per_group = static_cast<int>(g.in_channels_per_group());
  shape.out_channels_per_group = static_cast<int>(g.out_channels_per_group());
  shape.kernel_size = static_cast<int>(g.kernel_size);
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((shape.elements + threads - 1) / threads, 8 * props->multiProcessorCount);
  hopper::grad_weight_reduce<Element><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
      params.partials, reinterpret_cast<Element*>(grad_weight.mutable_data_ptr()), shape);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (grad_bias != nullptr) {
    const int64_t bias_blocks = std::min<int64_t>((g.out_channels + threads - 1) / threads, props->multiProcessorCount);
    hopper::grad_bias_reduce<Element><<<static_cast<unsigned>(bias_blocks), threads, 0, stream>>>(
        params.bias_partials, reinterpret_cast<Element*>(grad_bias->mutable_data_ptr()), splits, g.out_channels,
        static_cast<int>(g.out_channels_per_group()), params.bias_keys);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

}  // namespace custom_ops::conv1d::cuda
