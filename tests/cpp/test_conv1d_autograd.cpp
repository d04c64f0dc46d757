// Training through custom::conv1d from C++: a tiny libtorch model takes a few SGD steps and its
// gradients and parameters match the same model on aten's conv1d; and custom::conv1d_backward checks
// its arguments.

#include "conv1d_test_util.h"

namespace custom_ops::testing {
namespace {

using Conv = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t,
                                         int64_t, int64_t, int64_t)>;

// Two convolutions (a strided grouped one, then a dilated one) with a ReLU between.
struct TinyNet {
  std::vector<torch::Tensor> params;  // w1, b1, w2, b2
  torch::Tensor forward(const torch::Tensor& x, const Conv& conv) const {
    auto h = torch::relu(conv(x, params[0], params[1], 2, 1, 1, 2));
    return conv(h, params[2], params[3], 1, 2, 2, 1);
  }
};

const Conv kOurs = [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t s, int64_t p,
                      int64_t d, int64_t g) { return custom_ops::conv1d(x, w, b, s, p, d, g); };
const Conv kAten = [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t s, int64_t p,
                      int64_t d, int64_t g) { return at::conv1d(x, w, b, s, p, d, g); };

void train_and_compare(const torch::TensorOptions& options, double tol) {
  torch::manual_seed(11);
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  const std::vector<torch::Tensor> init = {torch::randn({8, 2, 3}, f64), torch::randn({8}, f64),
                                           torch::randn({3, 8, 3}, f64), torch::randn({3}, f64)};
  TinyNet ours, ref;
  for (const auto& p : init) {
    ours.params.push_back(p.to(options, /*non_blocking=*/false, /*copy=*/true).requires_grad_());
    ref.params.push_back(p.clone().requires_grad_());
  }
  const auto x = torch::randn({4, 4, 61}, f64), target = torch::randn({4, 3, 31}, f64);
  for (int step = 0; step < 5; ++step) {
    torch::mse_loss(ours.forward(x.to(options), kOurs), target.to(options)).backward();
    torch::mse_loss(ref.forward(x, kAten), target).backward();
    for (size_t i = 0; i < init.size(); ++i) {
      ASSERT_TRUE(ours.params[i].grad().defined()) << "parameter " << i << " got no gradient";
      EXPECT_LE(relative_max_error(ours.params[i].grad(), ref.params[i].grad()), tol) << "step " << step << ", grad " << i;
    }
    torch::NoGradGuard no_grad;
    for (auto* net : {&ours, &ref}) {
      for (auto& p : net->params) p.sub_(0.05 * p.grad()), p.mutable_grad().zero_();
    }
  }
  for (size_t i = 0; i < init.size(); ++i) EXPECT_LE(relative_max_error(ours.params[i], ref.params[i]), tol) << i;
}

TEST(Conv1dAutograd, TrainsLikeAtenOnCpu) { train_and_compare(torch::TensorOptions().dtype(torch::kDouble), 1e-12); }

TEST(Conv1dAutograd, TrainsLikeAtenOnCpuFloat32) {
  train_and_compare(torch::TensorOptions().dtype(torch::kFloat), 1e-5);
}

TEST(Conv1dAutograd, TrainsLikeAtenOnCuda) {
  SKIP_WITHOUT_CUDA();
  train_and_compare(torch::TensorOptions().dtype(torch::kDouble).device(torch::kCUDA), 1e-12);
}

TEST(Conv1dAutograd, TrainsLikeAtenOnCudaFloat32Strict) {
  SKIP_WITHOUT_CUDA();
  const bool previous = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);
  train_and_compare(torch::TensorOptions().dtype(torch::kFloat).device(torch::kCUDA), 1e-5);
  at::globalContext().setAllowTF32CuDNN(previous);
}

// One backward per CUDA kernel choice (tensor-core grad_weight tiles, the Hopper grad_weight, one-channel
// grad_weight and grad_input, grad_input phases interleaved at stride 2 and copied at stride 12), so that
// compute-sanitizer (which runs the *Cuda* tests) sees each of them.
TEST(Conv1dAutograd, BackwardKernelsOnCudaMatchAten) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t n, c, o, k, l, stride, padding, dilation, groups;
  };
  const std::vector<Case> cases = {{2, 70, 130, 3, 300, 1, 1, 1, 1},   // tensor-core grad_weight, partial tiles
                                   {2, 48, 64, 5, 257, 2, 2, 2, 2},    // grad_input phases (stride 2, dilation 2)
                                   {2, 16, 24, 3, 301, 12, 1, 1, 1},   // phases past one interleaving pass
                                   {2, 32, 32, 4, 1001, 1, 3, 1, 32},  // one input channel per group
                                   {2, 1, 42, 10, 503, 5, 2, 1, 1},    // one channel, many outputs (front end)
                                   {2, 64, 64, 5, 301, 1, 2, 1, 2},    // 32 x 32 tensor-core grad_weight tile
                                   // on sm_90a: the Hopper grad_weight over 12 keys (3 channel tiles, 2
                                   // output tiles, 2 tap groups), grad_output repacked (L_out 301)
                                   {2, 130, 200, 5, 301, 1, 2, 1, 1}};
  const bool previous = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(true);
  // The Hopper family on and off: on an H100/H200 the sm80 kernels then run too (and are sanitized).
  const auto use_hopper = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("custom::conv1d_cuda_use_hopper", "")
                              .typed<bool(bool)>();
  const bool hopper_was = use_hopper.call(true);
  for (const bool hopper : {true, false}) {
    use_hopper.call(hopper);
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (const auto& c : cases) {
        torch::manual_seed(21);
        const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
        const auto x = torch::randn({c.n, c.c, c.l}, f64), w = torch::randn({c.o, c.c / c.groups, c.k}, f64);
        const auto xr = x.clone().requires_grad_(), wr = w.clone().requires_grad_();
        const auto ref = at::conv1d(xr, wr, {}, c.stride, c.padding, c.dilation, c.groups);
        const auto gy = torch::randn(ref.sizes(), f64);
        ref.backward(gy);
        const auto cuda = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
        const auto xc = x.to(cuda).requires_grad_(), wc = w.to(cuda).requires_grad_();
        custom_ops::conv1d(xc, wc, {}, c.stride, c.padding, c.dilation, c.groups).backward(gy.to(cuda));
        // TF32 (float32) or bfloat16 operands with float32 accumulation.
        const double tol = dtype == torch::kFloat ? 5e-3 : 4 * tolerance(torch::kBFloat16);
        EXPECT_LE(relative_max_error(xc.grad(), xr.grad()), tol) << "grad_input, C = " << c.c << ", " << dtype;
        EXPECT_LE(relative_max_error(wc.grad(), wr.grad()), tol)
            << "grad_weight, C = " << c.c << ", " << dtype << (hopper ? "" : ", Hopper family off");
      }
    }
  }
  use_hopper.call(hopper_was);
  at::globalContext().setAllowTF32CuDNN(previous);
}

TEST(Conv1dAutograd, BackwardRejectsMismatchedGradOutput) {
  const auto x = torch::randn({2, 3, 10}), w = torch::randn({4, 3, 3});
  try {
    custom_ops::conv1d_backward(torch::randn({2, 4, 7}), x, w, 1, {1, 1}, 1, 1, {true, true, true});
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'grad_output'"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 4, 10]"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 4, 7]"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace custom_ops::testing
