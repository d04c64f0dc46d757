// Trains a TorchScript model that calls custom::conv1d, saved from Python, from C++ with libtorch
// alone: gradients flow through custom::conv1d's autograd. Usage: conv1d_train MODEL.pt SAMPLE.pt
// (the archives examples/export_models.py writes; the model learns to reproduce its own output
// scaled by 0.5, so the loss must fall).

#include <torch/script.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " MODEL.pt SAMPLE.pt\n";
    return 2;
  }
  try {
    torch::jit::Module sample = torch::jit::load(argv[2]);
    const torch::Tensor input = sample.attr("input").toTensor();
    const torch::Tensor target = 0.5 * sample.attr("expected").toTensor();
    torch::jit::Module model = torch::jit::load(argv[1]);
    model.train();
    std::vector<torch::Tensor> params;
    for (const auto& p : model.parameters()) params.push_back(p.requires_grad_());
    double first = 0, last = 0;
    for (int step = 0; step < 10; ++step) {
      const torch::Tensor out = model.forward({input}).toTensor();
      torch::Tensor loss = (out - target).pow(2).mean();
      loss.backward();
      torch::NoGradGuard no_grad;
      for (auto& p : params) {
        p.sub_(0.05 * p.grad());
        p.mutable_grad().zero_();
      }
      last = loss.item<double>();
      if (step == 0) first = last;
    }
    const bool ok = last < first;
    std::cout << "C++ training of " << argv[1] << ": " << params.size() << " parameters, loss " << first << " -> "
              << last << "\n"
              << (ok ? "C++ training: OK" : "C++ training: LOSS DID NOT FALL") << std::endl;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "C++ training failed: " << e.what() << "\n";
    return 1;
  }
}
