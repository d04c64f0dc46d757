// custom_ops::conv1d against aten's conv1d in float64, over a sweep of shapes and parameters, on CPU
// and CUDA, in every dtype.

#include "conv1d_test_util.h"

#include <ATen/Context.h>
#ifdef CUSTOM_OPS_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <sstream>
#include <variant>

namespace custom_ops::testing {
namespace {

struct Case {
  int64_t batch, in_channels, out_channels, kernel_size, length;
  int64_t stride = 1;
  std::variant<int64_t, std::string> padding = int64_t{0};
  int64_t dilation = 1, groups = 1;
  bool bias = true;
  bool batched = true;
  bool contiguous = true;
};

std::string describe(const Case& c) {
  std::ostringstream s;
  s << "N" << c.batch << "_C" << c.in_channels << "_O" << c.out_channels << "_K" << c.kernel_size << "_L" << c.length
    << "_s" << c.stride << "_p";
  if (std::holds_alternative<int64_t>(c.padding)) s << std::get<int64_t>(c.padding);
  else s << std::get<std::string>(c.padding);
  s << "_d" << c.dilation << "_g" << c.groups << (c.bias ? "_bias" : "") << (c.batched ? "" : "_unbatched")
    << (c.contiguous ? "" : "_strided");
  return s.str();
}

const std::vector<Case>& sweep() {
  static const std::vector<Case> cases = {
      {2, 4, 8, 3, 17},                                             // odd length
      {3, 5, 7, 1, 9, 1, int64_t{0}, 1, 1, false},                  // pointwise, no bias
      {2, 6, 4, 5, 33, 2, int64_t{2}},                              // stride and padding
      {2, 3, 5, 3, 40, 3, int64_t{1}, 2},                           // stride, dilation
      {1, 8, 8, 4, 31, 1, std::string("same"), 3},                  // "same", odd total padding (right side)
      {2, 8, 8, 3, 16, 1, std::string("same")},                     // "same", even total padding
      {2, 6, 9, 4, 21, 1, std::string("valid"), 2, 3},              // "valid", groups
      {2, 16, 16, 4, 100, 1, int64_t{3}, 1, 16},                    // depthwise, causal-style padding
      {2, 8, 24, 7, 50, 1, int64_t{3}, 1, 8},                       // depthwise multiplier 3
      {3, 12, 40, 3, 130, 1, int64_t{1}, 1, 2, true, true, false},  // non-contiguous input, two tiles along O
      {1, 5, 6, 3, 19, 1, int64_t{1}, 1, 1, true, false},           // unbatched (C, L)
      {0, 4, 6, 3, 10, 1, int64_t{1}},                              // empty batch
      {2, 3, 33, 9, 300, 1, int64_t{4}},                            // channels past a tile, length past a tile
      {1, 2, 3, 5, 5},                                              // kernel as long as the input
      {2, 7, 5, 2, 1100, 4, int64_t{0}, 5, 1, true, true, false},   // long, strided, dilated, non-contiguous
      {1, 1, 1, 64, 2000, 1, int64_t{63}},                          // long kernel, single channel
      {2, 12, 136, 3, 300, 1, int64_t{1}},                          // >= 64 channels a group, partial tiles
      {1, 16, 160, 5, 77, 2, int64_t{2}, 1, 2, true, true, false},  // 80 channels a group, strided input
      {2, 200, 96, 3, 517, 1, int64_t{1}},                          // many reduction chunks (tensor cores)
      {2, 40, 64, 31, 301, 1, int64_t{15}, 1, 1, false},            // long kernel, no bias
  };
  return cases;
}

torch::Tensor make_input(const Case& c, const torch::TensorOptions& options) {
  if (c.contiguous) {
    auto x = torch::randn({c.batch, c.in_channels, c.length}, options);
    return c.batched ? x : x.select(0, 0).clone();
  }
  // Non-contiguous: channels-last storage viewed as (N, C, L), then every other position.
  auto storage = torch::randn({c.batch, 2 * c.length, c.in_channels}, options);
  auto x = storage.transpose(1, 2).slice(2, 0, 2 * c.length, 2);
  return c.batched ? x : x.select(0, 0);
}

void check_case(const Case& c, torch::ScalarType dtype, torch::Device device) {
  SCOPED_TRACE(describe(c) + " " + std::string(c10::toString(dtype)) + " " + device.str());
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  const auto x = make_input(c, options);
  const auto w = torch::randn({c.out_channels, c.in_channels / c.groups, c.kernel_size}, options);
  const auto b = c.bias ? std::optional<torch::Tensor>(torch::randn({c.out_channels}, options)) : std::nullopt;
  if (!c.contiguous) ASSERT_FALSE(x.is_contiguous());

  // Reference: aten's conv1d in float64 on the CPU, fed the very same (rounded) values.
  const auto to64 = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble); };
  const std::optional<torch::Tensor> b64 = b ? std::optional<torch::Tensor>(to64(*b)) : std::nullopt;
  torch::Tensor ref, out;
  if (std::holds_alternative<int64_t>(c.padding)) {
    const int64_t p = std::get<int64_t>(c.padding);
    ref = at::conv1d(to64(x), to64(w), b64, c.stride, p, c.dilation, c.groups);
    const auto shape = ref.sizes().vec();
    poison_next_allocation(shape, options);
    out = custom_ops::conv1d(x, w, b, c.stride, p, c.dilation, c.groups);
  } else {
    const auto& p = std::get<std::string>(c.padding);
    ref = at::conv1d(to64(x), to64(w), b64, c.stride, p, c.dilation, c.groups);
    poison_next_allocation(ref.sizes().vec(), options);
    out = custom_ops::conv1d(x, w, b, c.stride, p, c.dilation, c.groups);
  }
  ASSERT_EQ(out.sizes(), ref.sizes());
  ASSERT_EQ(out.scalar_type(), dtype);
  ASSERT_EQ(out.device().type(), device.type());
  EXPECT_LE(relative_max_error(out, ref), tolerance(dtype));
}

class Conv1dSweep : public ::testing::TestWithParam<torch::ScalarType> {};

TEST_P(Conv1dSweep, MatchesAtenFloat64OnCpu) {
  torch::manual_seed(1234);
  for (const auto& c : sweep()) check_case(c, GetParam(), torch::kCPU);
}

TEST_P(Conv1dSweep, MatchesAtenFloat64OnCuda) {
  SKIP_WITHOUT_CUDA();
  // Full float32 precision here; the TF32 policy has its own test.
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);
  torch::manual_seed(1234);
  for (const auto& c : sweep()) check_case(c, GetParam(), torch::kCUDA);
  at::globalContext().setAllowTF32CuDNN(tf32);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Conv1dSweep,
                         ::testing::Values(torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

TEST(Conv1dCuda, Float32WithTf32AllowedStaysWithinTf32Error) {
  SKIP_WITHOUT_CUDA();
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(true);
  torch::manual_seed(7);
  const auto x = torch::randn({4, 64, 1000}, torch::kCUDA);
  const auto w = torch::randn({128, 64, 3}, torch::kCUDA);
  const auto out = custom_ops::conv1d(x, w, {}, 1, 1);
  const auto ref = at::conv1d(x.cpu().to(torch::kDouble), w.cpu().to(torch::kDouble), {}, 1, 1);
  EXPECT_LE(relative_max_error(out, ref), 5e-3);  // TF32: 10-bit mantissa products
  at::globalContext().setAllowTF32CuDNN(tf32);
}

// Shapes the Hopper family takes on an sm_90 GPU (rows 16-byte aligned): resident and streamed weights,
// one and two position tiles per consumer, partial channel chunks and tiles, strides, dilation, groups,
// short rows, long kernels. Elsewhere they run on the other kernels and must match all the same; under
// compute-sanitizer they are the Hopper kernels' memcheck/racecheck/initcheck/synccheck cases.
TEST(Conv1dCuda, HopperFamilyShapesMatchAtenFloat64) {
  SKIP_WITHOUT_CUDA();
  const std::vector<Case> cases = {
      {2, 64, 128, 3, 1024, 1, int64_t{1}},              // resident weights, two 64-position tiles
      {2, 512, 256, 3, 256, 1, int64_t{1}},              // streamed weights, two channel tiles
      {3, 37, 70, 5, 616, 1, int64_t{4}, 3},             // partial chunk and tile, dilation, padding
      {2, 32, 128, 4, 904, 2, int64_t{1}, 1, 1, false},  // stride 2, no bias
      {16, 64, 64, 3, 64, 1, int64_t{1}},                // short rows: sub-tiles of two batch items
      {1, 16, 48, 31, 704, 1, int64_t{15}},              // long kernel
      {2, 64, 64, 5, 1000, 1, int64_t{2}, 1, 8},         // groups
  };
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  torch::manual_seed(2026);
  for (const bool allow_tf32 : {false, true}) {
    at::globalContext().setAllowTF32CuDNN(allow_tf32);
    for (const auto& c : cases) {
      SCOPED_TRACE(allow_tf32 ? "TF32 allowed" : "TF32 off");
      if (allow_tf32) {  // TF32: 10-bit mantissa products
        const auto x = make_input(c, torch::TensorOptions().device(torch::kCUDA));
        const auto w = torch::randn({c.out_channels, c.in_channels / c.groups, c.kernel_size}, torch::kCUDA);
        const int64_t p = std::get<int64_t>(c.padding);
        const auto ref = at::conv1d(x.cpu().to(torch::kDouble), w.cpu().to(torch::kDouble), {}, c.stride, p,
                                    c.dilation, c.groups);
        const auto out = custom_ops::conv1d(x, w, {}, c.stride, p, c.dilation, c.groups);
        EXPECT_LE(relative_max_error(out, ref), 5e-3);
        continue;
      }
      for (const auto dtype : {torch::kFloat, torch::kHalf, torch::kBFloat16}) check_case(c, dtype, torch::kCUDA);
    }
  }
  at::globalContext().setAllowTF32CuDNN(tf32);
}

#ifdef CUSTOM_OPS_WITH_CUDA
TEST(Conv1dCuda, RunsOnTheCurrentStream) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(3);
  const auto x = torch::randn({2, 16, 4096}, torch::kCUDA);
  const auto w = torch::randn({32, 16, 5}, torch::kCUDA);
  const auto ref = at::conv1d(x.cpu().to(torch::kDouble), w.cpu().to(torch::kDouble), {}, 1, 2);
  auto side = c10::cuda::getStreamFromPool();
  torch::Tensor out;
  {
    c10::cuda::CUDAStreamGuard guard(side);
    out = custom_ops::conv1d(x, w, {}, 1, 2);
  }
  side.synchronize();
  EXPECT_LE(relative_max_error(out, ref), 5e-3);
}
#endif

TEST(Conv1dCpu, LongSequenceWithLargeStrideAndDilation) {
  torch::manual_seed(11);
  const auto x = torch::randn({1, 3, 200001}, torch::kDouble);
  const auto w = torch::randn({4, 3, 6}, torch::kDouble);
  const auto b = torch::randn({4}, torch::kDouble);
  const auto out = custom_ops::conv1d(x, w, b, 7, 5, 13);
  EXPECT_LE(relative_max_error(out, at::conv1d(x, w, b, 7, 5, 13)), 1e-12);
}

}  // namespace
}  // namespace custom_ops::testing
