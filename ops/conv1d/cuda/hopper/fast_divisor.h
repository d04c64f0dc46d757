#pragma once
// Division by a divisor fixed for a launch, as one multiply-high and a shift (the round-up method of
// Granlund and Montgomery, as CUTLASS's FastDivmod). The Hopper kernels decode every tile index into
// its coordinates; as 64-bit divisions, done in software, that took ~1,000 cycles a tile on the
// consumers' critical path (NOTES, the timeline of the sixth session). Plain C++ with host/device
// functions, so that a CPU test checks the same arithmetic.
//
// Exact for dividends and divisors in [0, 2^31) (divisors >= 1).

#include <cstdint>

#ifndef CUSTOM_OPS_HOST_DEVICE
#if defined(__CUDACC__)
#define CUSTOM_OPS_HOST_DEVICE __host__ __device__
#else
#define CUSTOM_OPS_HOST_DEVICE
#endif
#endif

namespace custom_ops::conv1d::cuda {

constexpr int64_t kFastDivisionLimit = int64_t{1} << 31;

struct FastDivisor {
  uint32_t divisor = 1, multiplier = 0, shift = 0;

  FastDivisor() = default;
  explicit FastDivisor(uint32_t d) : divisor(d) {
    if (d <= 1) return;  // division by 1: the dividend itself
    uint32_t ceil_log2 = 0;
    while ((uint64_t{1} << ceil_log2) < d) ++ceil_log2;
    const uint32_t p = 31 + ceil_log2;  // multiplier = ceil(2^p / d) < 2^32
    multiplier = static_cast<uint32_t>(((uint64_t{1} << p) + d - 1) / d);
    shift = p - 32;
  }

  CUSTOM_OPS_HOST_DEVICE uint32_t div(uint32_t dividend) const {
    if (divisor == 1) return dividend;
#if defined(__CUDA_ARCH__)
    return __umulhi(dividend, multiplier) >> shift;
#else
    return static_cast<uint32_t>((uint64_t{dividend} * multiplier) >> 32) >> shift;
#endif
  }
};

}  // namespace custom_ops::conv1d::cuda
