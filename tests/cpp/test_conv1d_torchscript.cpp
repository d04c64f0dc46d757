// A TorchScript archive that calls custom::conv1d survives save and torch::jit::load in C++.
// (Archives saved from Python are loaded by the C++ inference example, which the Python tests run.)

#include "conv1d_test_util.h"

#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/script.h>

#include <sstream>

namespace custom_ops::testing {
namespace {

// Compiling TorchScript source in C++ (no Python): the name `custom` resolves to our operator
// namespace, so `custom.conv1d(...)` is custom::conv1d, as `torch.custom.conv1d` is in Python.
struct CustomOpsResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction& fn,
                                                         const torch::jit::SourceRange& loc) override {
    if (name == "custom") return std::make_shared<torch::jit::BuiltinModule>("custom");
    return torch::jit::nativeResolver()->resolveValue(name, fn, loc);
  }
};

torch::jit::Module scripted_model() {
  torch::jit::Module m("TwoConvs");
  m.register_parameter("w1", torch::randn({8, 4, 3}, torch::kDouble), false);
  m.register_parameter("b1", torch::randn({8}, torch::kDouble), false);
  m.register_parameter("w2", torch::randn({8, 1, 5}, torch::kDouble), false);
  m.define(R"JIT(
    def forward(self, x):
        h = custom.conv1d(x, self.w1, self.b1, [1], [1], [1], 1)
        h = torch.relu(h)
        return custom.conv1d(h, self.w2, None, [1], "same", [2], 8)
  )JIT",
           std::make_shared<CustomOpsResolver>());
  return m;
}

torch::Tensor reference(const torch::jit::Module& m, const torch::Tensor& x) {
  const auto w1 = m.attr("w1").toTensor(), b1 = m.attr("b1").toTensor(), w2 = m.attr("w2").toTensor();
  const auto h = torch::relu(at::conv1d(x, w1, b1, 1, 1, 1, 1));
  return at::conv1d(h, w2, {}, 1, "same", 2, 8);
}

TEST(Conv1dTorchScript, SaveAndLoadInCpp) {
  torch::manual_seed(5);
  auto model = scripted_model();
  std::stringstream archive;
  model.save(archive);
  auto loaded = torch::jit::load(archive);
  const auto x = torch::randn({2, 4, 37}, torch::kDouble);
  const auto out = loaded.forward({x}).toTensor();
  EXPECT_LE(relative_max_error(out, reference(model, x)), 1e-12);
}

TEST(Conv1dTorchScript, LoadedModelRunsOnCuda) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(6);
  auto model = scripted_model();
  std::stringstream archive;
  model.save(archive);
  auto loaded = torch::jit::load(archive, torch::kCUDA);
  const auto x = torch::randn({2, 4, 37}, torch::kDouble);
  const auto out = loaded.forward({x.cuda()}).toTensor();
  EXPECT_TRUE(out.is_cuda());
  EXPECT_LE(relative_max_error(out, reference(model, x)), 1e-12);
}

// A scripted module (saved and loaded again, as a shipped archive would be) trained from C++: a few SGD
// steps through custom::conv1d's autograd give the parameters that the same steps give through aten.
TEST(Conv1dTorchScript, LoadedModelTrainsInCpp) {
  torch::manual_seed(7);
  auto model = scripted_model();
  std::stringstream archive;
  model.save(archive);
  auto loaded = torch::jit::load(archive);
  for (auto p : loaded.parameters()) p.requires_grad_();  // defined in C++ above without gradients
  std::vector<torch::Tensor> ref_params;
  for (const auto& name : {"w1", "b1", "w2"}) {
    ref_params.push_back(model.attr(name).toTensor().detach().clone().requires_grad_());
  }
  const auto x = torch::randn({3, 4, 29}, torch::kDouble);
  const auto target = torch::randn({3, 8, 29}, torch::kDouble);
  for (int step = 0; step < 4; ++step) {
    auto loss = torch::mse_loss(loaded.forward({x}).toTensor(), target);
    loss.backward();
    const auto h = torch::relu(at::conv1d(x, ref_params[0], ref_params[1], 1, 1, 1, 1));
    auto ref_loss = torch::mse_loss(at::conv1d(h, ref_params[2], {}, 1, "same", 2, 8), target);
    ref_loss.backward();
    torch::NoGradGuard no_grad;
    for (auto p : loaded.parameters()) p.sub_(0.1 * p.grad()), p.mutable_grad().zero_();
    for (auto& p : ref_params) p.sub_(0.1 * p.grad()), p.mutable_grad().zero_();
  }
  int i = 0;
  for (const auto& p : loaded.parameters()) EXPECT_LE(relative_max_error(p, ref_params[i++]), 1e-12);
  EXPECT_EQ(i, 3);
}

}  // namespace
}  // namespace custom_ops::testing
