#pragma once
// grad_input from its stride phases in one pass (conv1d_interleave.cu).

#include <ATen/core/Tensor.h>

#include <vector>

namespace custom_ops::conv1d::cuda {

// Phases a call interleaves at most; larger strides keep one strided copy per phase.
constexpr int64_t kMaxInterleavedPhases = 8;

// grad_input[n, c, l] = phases[l % s][n, c, l / s] for s = phases.size() (2 to kMaxInterleavedPhases),
// where an undefined phase stands for zeros. grad_input is contiguous (N, C, L); phase rho is contiguous
// (N, C, ceil((L - rho) / s)), of grad_input's dtype and device. One pass writes every element once, in
// order: one strided copy per phase (aten's) wrote each of grad_input's sectors s times, a few elements
// each time. Runs on the current stream; the caller holds the device guard.
void interleave_phases(const std::vector<at::Tensor>& phases, at::Tensor& grad_input);

}  // namespace custom_ops::conv1d::cuda
