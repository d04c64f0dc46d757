#pragma once
// Shared helpers of the C++ tests: random inputs, poisoned outputs, and the float64 reference.

#include <custom_ops/conv1d.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace custom_ops::testing {

inline bool cuda_available() { return torch::cuda::is_available(); }

#define SKIP_WITHOUT_CUDA()                                           \
  do {                                                                \
    if (!::custom_ops::testing::cuda_available()) GTEST_SKIP() << "no CUDA GPU present"; \
  } while (0)

// Largest tolerated max|out - ref| / max|ref| for a dtype (float32 is full precision, TF32 off).
inline double tolerance(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kDouble: return 1e-12;
    case torch::kFloat: return 2e-6;
    case torch::kHalf: return 2e-3;
    case torch::kBFloat16: return 1e-2;
    default: return 0;
  }
}

inline double relative_max_error(const torch::Tensor& out, const torch::Tensor& ref) {
  const auto o = out.to(torch::kCPU, torch::kDouble);
  const auto r = ref.to(torch::kCPU, torch::kDouble);
  if (r.numel() == 0) return 0.0;
  const double scale = std::max(r.abs().max().item<double>(), 1e-30);
  const auto diff = (o - r).abs();
  // NaN anywhere (e.g. an element the kernel never wrote over the poison) must fail.
  if (diff.isnan().any().item<bool>()) return std::numeric_limits<double>::infinity();
  return diff.max().item<double>() / scale;
}

// Fills the caching allocator (CUDA) or heap (CPU) with a NaN block of the output's size and frees it,
// so an op that allocates its output next most likely gets that block back: unwritten elements show.
inline void poison_next_allocation(std::vector<int64_t> shape, const torch::TensorOptions& options) {
  auto poison = torch::full(shape, std::numeric_limits<double>::quiet_NaN(), options);
  (void)poison;
}

}  // namespace custom_ops::testing
