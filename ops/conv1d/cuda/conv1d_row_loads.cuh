#pragma once
// Row loads shared by the kernels that stage input rows in shared memory (the forward tensor-core
// kernel and the tensor-core grad_weight): 16 bytes of consecutive positions at a time.

#include <cstdint>

namespace custom_ops::conv1d::cuda {

// Elements of scalar_t in one 16-byte vector: the positions one staging item loads per row.
template <typename scalar_t>
constexpr int kStageVec = 16 / int(sizeof(scalar_t));

// kStageVec elements of one row from position p (zeros outside [0, length) or without a row): one
// 16-byte load where vector_loads allows it (rows contiguous and 16-byte aligned, p a whole vector) and
// the vector is in bounds, else element by element along stride_l.
template <typename scalar_t>
__device__ __forceinline__ uint4 load_row_vector(const scalar_t* row, int64_t p, int64_t length, int64_t stride_l,
                                                 bool vector_loads) {
  constexpr int kVec = kStageVec<scalar_t>;
  if (row == nullptr) return make_uint4(0, 0, 0, 0);
  if (vector_loads && p >= 0 && p + kVec <= length) return *reinterpret_cast<const uint4*>(row + p);
  union {
    uint4 v;
    scalar_t e[kVec];
  } u;
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const int64_t q = p + j;
    u.e[j] = (q >= 0 && q < length) ? row[q * stride_l] : scalar_t(0);
  }
  return u.v;
}

// The largest multiple of `multiple` not above value (value may be negative).
__device__ __forceinline__ int64_t floor_to_multiple(int64_t value, int64_t multiple) {
  const int64_t r = value % multiple;
  return value - (r < 0 ? r + multiple : r);
}

}  // namespace custom_ops::conv1d::cuda
