// Calls custom::conv1d through the installed package's C++ API and checks it against aten's conv1d.
#include <custom_ops/conv1d.h>
#include <torch/torch.h>

#include <iostream>

int main() {
  const auto x = torch::randn({2, 4, 16}, torch::kDouble);
  const auto w = torch::randn({8, 4, 3}, torch::kDouble);
  const auto y = custom_ops::conv1d(x, w, {}, /*stride=*/1, /*padding=*/1);
  const double error = (y - at::conv1d(x, w, {}, 1, 1)).abs().max().item<double>();
  std::cout << "custom_ops::conv1d output " << y.sizes() << ", max |difference| from aten " << error << "\n";
  if (y.sizes() != at::IntArrayRef({2, 8, 16}) || !(error < 1e-12)) return 1;
  std::cout << "C++ package consumer: OK\n";
  return 0;
}
