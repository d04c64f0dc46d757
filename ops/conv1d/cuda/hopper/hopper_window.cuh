#pragma once
// Where a TMA box of an input window starts, shared by the Hopper kernels (forward and grad_weight).

#include <cstdint>

namespace custom_ops::conv1d::cuda::hopper {

// TMA boxes start on a 16-byte boundary along the row (kVector elements), so a window begins up to one
// vector before the first position the taps read; `shift` is that distance.
template <int kVector>
__device__ __forceinline__ int64_t window_start(int64_t first, int& shift) {
  const int64_t aligned = (first >= 0 ? first : first - (kVector - 1)) / kVector * kVector;
  shift = static_cast<int>(first - aligned);
  return aligned;
}

}  // namespace custom_ops::conv1d::cuda::hopper
