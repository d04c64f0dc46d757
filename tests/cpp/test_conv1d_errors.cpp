// Every invalid argument is rejected with a message that names the argument, what was expected and
// what came; on CUDA the next valid call still works.

#include "conv1d_test_util.h"

#include <functional>
#include <limits>

namespace custom_ops::testing {
namespace {

// Runs `call` and checks it throws a c10::Error whose message contains every fragment.
void expect_error(const std::function<void()>& call, const std::vector<std::string>& fragments) {
  try {
    call();
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    for (const auto& f : fragments) {
      EXPECT_NE(message.find(f), std::string::npos) << "message lacks '" << f << "': " << message;
    }
    return;
  }
  ADD_FAILURE() << "expected an error mentioning '" << fragments.front() << "'";
}

struct ErrorCase {
  std::string name;
  std::function<void(const torch::TensorOptions&)> call;
  std::vector<std::string> fragments;
};

constexpr int64_t kTwoTo62 = int64_t{1} << 62;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

std::vector<ErrorCase> error_cases() {
  using torch::randn;
  using O = torch::TensorOptions;
  const auto x = [](const O& o) { return randn({2, 4, 16}, o); };
  const auto w = [](const O& o) { return randn({6, 4, 3}, o); };
  return {
      {"input rank", [=](const O& o) { custom_ops::conv1d(randn({2, 4, 16, 1}, o), w(o)); },
       {"'input'", "2-D (C, L) or 3-D (N, C, L)", "4-D"}},
      {"weight rank", [=](const O& o) { custom_ops::conv1d(x(o), randn({6, 4}, o)); }, {"'weight'", "3-D", "2-D"}},
      {"channels", [=](const O& o) { custom_ops::conv1d(x(o), randn({6, 3, 3}, o)); },
       {"'input'", "weight.size(1) * groups = 3 * 1 = 3", "got 4 channels"}},
      {"groups zero", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, 0, 1, 0); },
       {"'groups'", "positive", "got 0"}},
      {"groups negative", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, 0, 1, -2); },
       {"'groups'", "positive", "got -2"}},
      {"groups vs in channels", [=](const O& o) { custom_ops::conv1d(randn({2, 3, 16}, o), randn({6, 1, 3}, o), {}, 1, 0, 1, 2); },
       {"'groups' (2)", "input channels (3)"}},
      {"groups vs out channels", [=](const O& o) { custom_ops::conv1d(x(o), randn({5, 2, 3}, o), {}, 1, 0, 1, 2); },
       {"'groups' (2)", "output channels (weight.size(0) = 5)"}},
      {"stride", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 0); }, {"'stride'", "positive", "got 0"}},
      {"stride length", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, {1, 1}); },
       {"'stride'", "1 element", "got 2"}},
      {"dilation", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, 0, -1); },
       {"'dilation'", "positive", "got -1"}},
      {"padding", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, -1); },
       {"'padding'", "non-negative", "got -1"}},
      {"kernel too long", [=](const O& o) { custom_ops::conv1d(randn({2, 4, 5}, o), w(o), {}, 1, 0, 3); },
       {"dilated kernel", "= 7", "length 5 + padding 0 = 5"}},
      {"bias shape", [=](const O& o) { custom_ops::conv1d(x(o), w(o), randn({5}, o)); },
       {"'bias'", "(out_channels,) = (6,)", "[5]"}},
      {"bias rank", [=](const O& o) { custom_ops::conv1d(x(o), w(o), randn({6, 1}, o)); },
       {"'bias'", "(6,)", "[6, 1]"}},
      {"weight dtype", [=](const O& o) { custom_ops::conv1d(x(o), w(o.dtype(torch::kDouble))); },
       {"'weight'", "dtype of 'input' (Float)", "Double"}},
      {"bias dtype", [=](const O& o) { custom_ops::conv1d(x(o), w(o), randn({6}, o.dtype(torch::kHalf))); },
       {"'bias'", "dtype of 'input' (Float)", "Half"}},
      {"integer dtype",
       [=](const O& o) {
         custom_ops::conv1d(torch::ones({2, 4, 16}, o.dtype(torch::kLong)), torch::ones({6, 4, 3}, o.dtype(torch::kLong)));
       },
       {"'input'", "floating dtype", "Long"}},
      {"bool dtype",
       [=](const O& o) {
         custom_ops::conv1d(torch::ones({2, 4, 16}, o.dtype(torch::kBool)), torch::ones({6, 4, 3}, o.dtype(torch::kBool)));
       },
       {"'input'", "floating dtype", "Bool"}},
      {"device", [=](const O& o) { custom_ops::conv1d(x(o), w(o.device(torch::kMeta))); },
       {"'weight'", "device of 'input'", "meta"}},
      {"bias device", [=](const O& o) { custom_ops::conv1d(x(o), w(o), randn({6}, o.device(torch::kMeta))); },
       {"'bias'", "device of 'input'", "meta"}},
      {"same with stride", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 2, "same"); },
       {"padding='same'", "'stride' = 1", "stride 2"}},
      {"unknown padding", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, "full"); },
       {"'padding'", "\"valid\" or \"same\"", "\"full\""}},
      {"undefined input", [=](const O& o) { custom_ops::conv1d(at::Tensor(), w(o)); }, {"'input'", "got None"}},
      {"undefined weight", [=](const O& o) { custom_ops::conv1d(x(o), at::Tensor()); }, {"'weight'", "got None"}},
      {"undefined input, string padding", [=](const O& o) { custom_ops::conv1d(at::Tensor(), w(o), {}, 1, "same"); },
       {"'input'", "got None"}},
      // Sums and products of sizes and arguments that overflow int64. Unchecked, dilation 2^62 wraps the
      // dilated kernel to 1 and the kernel reads far outside the input (a segfault).
      {"dilation overflow", [=](const O& o) { custom_ops::conv1d(randn({1, 2, 40}, o), randn({2, 2, 5}, o), {}, 3, 0, kTwoTo62); },
       {"'dilation'", "fit in int64", "4611686018427387904", "K = 5"}},
      {"dilation overflow, same", [=](const O& o) { custom_ops::conv1d(randn({1, 2, 40}, o), randn({2, 2, 5}, o), {}, 1, "same", kTwoTo62); },
       {"'dilation'", "fit in int64", "4611686018427387904"}},
      {"dilation max", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, 0, kInt64Max); },
       {"'dilation'", "fit in int64", "9223372036854775807"}},
      {"padding overflow", [=](const O& o) { custom_ops::conv1d(randn({1, 2, 40}, o), randn({2, 2, 5}, o), {}, 3, kTwoTo62); },
       {"'padding'", "fit in int64", "40 + 4611686018427387904 + 4611686018427387904"}},
      {"padding max", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, kInt64Max); },
       {"'padding'", "fit in int64", "9223372036854775807"}},
      {"output size overflow", [=](const O& o) { custom_ops::conv1d(randn({1, 2, 40}, o), randn({2, 2, 5}, o), {}, 3, kTwoTo62 / 2); },
       {"output", "fits in int64", "'padding' [2305843009213693952, 2305843009213693952]", "'stride' 3"}},
      {"output size overflow, batch",
       [=](const O& o) { custom_ops::conv1d(randn({1, 2, 8}, o).expand({kTwoTo62 / 16, 2, 8}), randn({64, 2, 1}, o)); },
       {"output", "fits in int64", "batch 288230376151711744"}},
      // Below about -2^62, SymInt holds an integer on the heap, which the dispatcher cannot pass on as int64.
      {"padding int64 min", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, kInt64Min); },
       {"'padding'", "non-negative", "-9223372036854775808"}},
      {"stride int64 min", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, kInt64Min); },
       {"'stride'", "positive", "-9223372036854775808"}},
      {"groups int64 min", [=](const O& o) { custom_ops::conv1d(x(o), w(o), {}, 1, 0, 1, kInt64Min); },
       {"'groups'", "positive", "-9223372036854775808"}},
      {"groups overflow", [=](const O& o) { custom_ops::conv1d(randn({1, 0, 40}, o), randn({0, 2, 5}, o), {}, 1, 0, 1, kTwoTo62); },
       {"'groups'", "fit in int64", "2 * 4611686018427387904"}},
  };
}

TEST(Conv1dErrors, EveryInvalidArgumentIsNamedOnCpu) {
  for (const auto& c : error_cases()) {
    SCOPED_TRACE(c.name);
    expect_error([&] { c.call(torch::TensorOptions()); }, c.fragments);
  }
}

TEST(Conv1dErrors, EveryInvalidArgumentIsNamedOnMeta) {
  for (const auto& c : error_cases()) {
    if (c.name == "device" || c.name == "bias device") continue;  // those mix Meta in on purpose
    SCOPED_TRACE(c.name);
    expect_error([&] { c.call(torch::TensorOptions().device(torch::kMeta)); }, c.fragments);
  }
}

TEST(Conv1dErrors, EveryInvalidArgumentIsNamedOnCudaAndTheNextCallWorks) {
  SKIP_WITHOUT_CUDA();
  for (const auto& c : error_cases()) {
    SCOPED_TRACE(c.name);
    expect_error([&] { c.call(torch::TensorOptions().device(torch::kCUDA)); }, c.fragments);
  }
  // CPU input with CUDA weight: mixed real devices.
  expect_error([] { custom_ops::conv1d(torch::randn({2, 4, 16}), torch::randn({6, 4, 3}, torch::kCUDA)); },
               {"'weight'", "device of 'input' (cpu)", "cuda"});
  // No sticky error: a valid call right after computes the right numbers.
  const auto x = torch::randn({2, 4, 16}, torch::kCUDA);
  const auto w = torch::randn({6, 4, 3}, torch::kCUDA);
  const auto out = custom_ops::conv1d(x, w, {}, 1, 1);
  const auto ref = at::conv1d(x.cpu().to(torch::kDouble), w.cpu().to(torch::kDouble), {}, 1, 1);
  EXPECT_LE(relative_max_error(out, ref), 5e-3);
}

TEST(Conv1dErrors, AStridePastTheInputGivesOnePosition) {
  // Legal, as in aten: one output position whatever the stride, also at the int64 limit.
  const auto x = torch::randn({2, 4, 16}, torch::kDouble);
  const auto w = torch::randn({6, 4, 3}, torch::kDouble);
  const auto ref = at::conv1d(x, w, {}, 100, 1);
  for (const int64_t stride : {int64_t{1} << 31, kTwoTo62, kInt64Max}) {
    const auto out = custom_ops::conv1d(x, w, {}, stride, 1);
    ASSERT_EQ(out.sizes(), ref.sizes()) << stride;
    EXPECT_LE(relative_max_error(out, ref), 1e-12) << stride;
  }
}

TEST(Conv1dErrors, EmptyBatchGivesEmptyOutput) {
  const auto out = custom_ops::conv1d(torch::randn({0, 4, 16}), torch::randn({6, 4, 3}), torch::randn({6}), 2, 1);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{0, 6, 8}));
}

}  // namespace
}  // namespace custom_ops::testing
