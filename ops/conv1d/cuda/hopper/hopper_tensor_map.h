#pragma once
// TMA tensor maps of (N, C, L) tensors for the Hopper kernels (conv1d_hopper_common.cu).

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/hopper/conv1d_hopper_plan.h"

#include <ATen/core/Tensor.h>
#include <cuda.h>

#include <cstdint>

namespace custom_ops::conv1d::cuda::hopper {

// A tensor (N, groups * rows_per_group, >= length), rows contiguous and 16-byte aligned, as a 4-D tensor
// map (length, rows_per_group, groups, N) with a box of box_positions x box_rows, zero-filled outside;
// the box lands in 128-byte swizzled rows where asked.
CUtensorMap encode_rows_map(const at::Tensor& t, int64_t length, int64_t rows_per_group, int64_t groups,
                            uint32_t box_positions, uint32_t box_rows, bool swizzle_128);
// The forward's input (L, C_g, groups, N) with the plan's box.
CUtensorMap encode_input_map(const at::Tensor& input, const Geometry& g, const HopperPlan& plan);

}  // namespace custom_ops::conv1d::cuda::hopper
