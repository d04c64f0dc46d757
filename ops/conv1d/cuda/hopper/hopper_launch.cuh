#pragma once
// Launch template of the Hopper kernels: one instantiation per (precision, tile) in the per-precision
// translation units (conv1d_hopper_<precision>.cu).

#include "ops/conv1d/cuda/conv1d_cuda_launch.h"
#include "ops/conv1d/cuda/hopper/conv1d_hopper.h"
#include "ops/conv1d/cuda/hopper/hopper_kernel.cuh"
#include "ops/conv1d/cuda/hopper/hopper_tensor_map.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>

namespace custom_ops::conv1d::cuda {

template <typename Element, HopperPrecision kPrecision, int TileN, int MTiles>
void launch_hopper_instance(const HopperPlan& plan, const at::Tensor& input, const WeightView& weights,
                            const at::Tensor& bias, at::Tensor& out, const Geometry& g) {
  using Traits = hopper::HopperTraits<Element, kPrecision, TileN, MTiles>;
  TORCH_INTERNAL_ASSERT(plan.tile_n == TileN && plan.m_tiles == MTiles && plan.chunk_channels == Traits::kChunk &&
                        plan.stages <= hopper::kMaxStages &&
                        (plan.staging_slots == 1 || plan.staging_slots == 2 || plan.staging_slots == 4));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const int64_t O_g = g.out_channels_per_group();
  const HopperTileCounts counts = hopper_tile_counts(g, plan);
  TORCH_INTERNAL_ASSERT(counts.subtiles < kFastDivisionLimit && counts.total_tiles < kMaxHopperTiles);
  const int o_tiles = static_cast<int>(counts.o_tiles);

  // Weights -> B blocks in the order the consumers read them.
  hopper::RelayoutShape shape{};
  shape.o_tiles = o_tiles;
  shape.chunks = plan.chunks;
  shape.tap_groups = plan.tap_groups;
  shape.parts = plan.weight_parts;
  shape.taps_per_stage = plan.taps_per_stage;
  shape.tile_n = TileN;
  shape.chunk_channels = plan.chunk_channels;
  shape.in_channels_per_group = static_cast<int>(g.in_channels_per_group());
  shape.out_channels_per_group = static_cast<int>(O_g);
  shape.kernel_size = static_cast<int>(g.kernel_size);
  shape.weight_offset = weights.offset;
  shape.group_stride = weights.group_stride;
  shape.out_stride = weights.out_stride;
  shape.in_stride = weights.in_stride;
  shape.tap_stride = weights.tap_stride;
  const int64_t keys = g.groups * o_tiles;
  shape.total_rows = keys * plan.stages_per_tile() * plan.weight_stage_bytes / 16;
  at::Tensor blocks = at::empty({shape.total_rows * 16}, input.options().dtype(at::kByte));
  {
    const int threads = 256;
    const int64_t grid = std::min<int64_t>((shape.total_rows + threads - 1) / threads, 65535);
    hopper::relayout_weights<Element, Traits::kSplit><<<static_cast<unsigned>(grid), threads, 0, stream>>>(
        reinterpret_cast<const Element*>(weights.storage.const_data_ptr()), reinterpret_cast<uint4*>(blocks.mutable_data_ptr()),
        shape);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  hopper::HopperParams params{};
  params.weights = static_cast<const uint8_t*>(blocks.const_data_ptr());
  params.bias = bias.defined() ? bias.const_data_ptr() : nullptr;
  params.output = out.mutable_data_ptr();
  params.out_length = g.out_length;
  params.out_channels = g.out_channels;
  params.out_channels_per_group = static_cast<int>(O_g);
  params.o_tiles = FastDivisor(static_cast<uint32_t>(o_tiles));
  params.subtiles_per_row = FastDivisor(static_cast<uint32_t>(counts.subtiles_per_row));
  params.subtiles = static_cast<uint32_t>(counts.subtiles);
  params.tiles_per_key = FastDivisor(static_cast<uint32_t>(counts.tiles_per_key));
  params.row_tiles = FastDivisor(static_cast<uint32_t>(std::max<int64_t>(1, plan.row_tiling.row_tiles)));
  params.row_tiled = plan.row_tiling.row_tiles > 0;
  params.tile_step = static_cast<int>(plan.row_tiling.step);
  params.total_tiles = static_cast<int>(counts.total_tiles);
  params.stride = static_cast<int>(g.stride);
  params.dilation = static_cast<int>(g.dilation);
  params.pad_left = static_cast<int>(g.pad_left);
  params.kernel_size = static_cast<int>(g.kernel_size);
  params.chunks = plan.chunks;
  params.tap_groups = plan.tap_groups;
  params.taps_per_stage = plan.taps_per_stage;
  params.window_pitch = plan.window_pitch;
  params.stages = plan.stages;
  params.resident_weights = plan.resident_weights ? 1 : 0;
  params.staging_slots = plan.staging_slots;
  params.staging_slot_shift = plan.staging_slots == 4 ? 2 : plan.staging_slots == 2 ? 1 : 0;
  params.input_stage_bytes = static_cast<uint32_t>(plan.input_stage_bytes);
  params.weight_stage_bytes = static_cast<uint32_t>(plan.weight_stage_bytes);
  params.resident_bytes =
      plan.resident_weights ? static_cast<uint32_t>(plan.stages_per_tile() * plan.weight_stage_bytes) : 0u;
  // A stage without bytes would complete its barrier phase before the copies land (and hang the ring).
  TORCH_INTERNAL_ASSERT(params.input_stage_bytes > 0 && (params.resident_weights ? params.resident_bytes
                                                                                   : params.weight_stage_bytes) > 0);
  const auto kernel = hopper::conv1d_hopper_kernel<Traits>;
  const cudaDeviceProp* props = at::cuda::getCurrentDeviceProperties();
  TORCH_CHECK(int64_t(props->sharedMemPerBlockOptin) >= plan.shared_bytes, "custom::conv1d: the Hopper kernel needs ",
              plan.shared_bytes, " bytes of shared memory per block, the device offers ", props->sharedMemPerBlockOptin);
  resident_blocks_per_sm(reinterpret_cast<const void*>(kernel), Traits::kThreads, plan.shared_bytes);
  const int64_t grid = std::min<int64_t>(params.total_tiles, props->multiProcessorCount);
  const CUtensorMap input_map = hopper::encode_input_map(input, g, plan);
  hopper::timeline_reset(stream);
  kernel<<<static_cast<unsigned>(grid), Traits::kThreads, plan.shared_bytes, stream>>>(input_map, params);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  hopper::timeline_dump(stream);
}

// The tile shapes a plan can name, for one precision.
template <typename Element, HopperPrecision kPrecision>
void launch_hopper_tiles(const HopperPlan& plan, const at::Tensor& input, const WeightView& weights,
                         const at::Tensor& bias, at::Tensor& out, const Geometry& g) {
  constexpr bool kSplit = kPrecision == HopperPrecision::k3xTF32;
  if constexpr (kSplit) {  // one 64-position tile per consumer, at most 64 channels (see plan_hopper)
    if (plan.tile_n == 64) return launch_hopper_instance<Element, kPrecision, 64, 1>(plan, input, weights, bias, out, g);
    if (plan.tile_n == 32) return launch_hopper_instance<Element, kPrecision, 32, 1>(plan, input, weights, bias, out, g);
  } else {
    const int tile = plan.tile_n * 10 + plan.m_tiles;
    switch (tile) {
      case 1282: return launch_hopper_instance<Element, kPrecision, 128, 2>(plan, input, weights, bias, out, g);
      case 1281: return launch_hopper_instance<Element, kPrecision, 128, 1>(plan, input, weights, bias, out, g);
      case 642: return launch_hopper_instance<Element, kPrecision, 64, 2>(plan, input, weights, bias, out, g);
      case 641: return launch_hopper_instance<Element, kPrecision, 64, 1>(plan, input, weights, bias, out, g);
      case 322: return launch_hopper_instance<Element, kPrecision, 32, 2>(plan, input, weights, bias, out, g);
      case 321: return launch_hopper_instance<Element, kPrecision, 32, 1>(plan, input, weights, bias, out, g);
      default: break;
    }
  }
  TORCH_INTERNAL_ASSERT(false, "custom::conv1d: no Hopper kernel for a tile of ", plan.tile_n, " channels x ",
                        plan.m_tiles, " position tiles");
}

}  // namespace custom_ops::conv1d::cuda
