#pragma once
// The copy that lets the Hopper kernels read inputs TMA cannot read in place (conv1d_repack.cu).

#include <ATen/core/Tensor.h>

namespace custom_ops::conv1d::cuda {

// A copy of `input` (N, C, L) whose rows TMA can read: rows L long, a whole number of 16-byte vectors
// apart, in a fresh (16-byte aligned) allocation, since a tensor map takes only row pitches that are
// multiples of 16 bytes. The pitch's extra positions are never read: the kernel's tensor map ends each
// row at L. Any strides; contiguous rows (stride(2) == 1) take a dedicated kernel, others aten's copy.
// Runs on the current stream; the caller holds the device guard of the input's device.
at::Tensor repack_rows_for_tma(const at::Tensor& input);

}  // namespace custom_ops::conv1d::cuda
