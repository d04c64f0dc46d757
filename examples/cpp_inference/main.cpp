// Loads a TorchScript model that calls custom::conv1d, saved from Python, and runs it with libtorch
// alone (no Python). Usage: conv1d_inference MODEL.pt SAMPLE.pt [DEVICE]
// (DEVICE, e.g. cuda:1: run there only; default: the CPU, and the current GPU where there is one)
//
// It never calls the plugin's API: linking CustomOps::custom_ops is enough for torch::jit::load to
// find custom::conv1d.

#include <torch/cuda.h>
#include <torch/script.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: " << argv[0] << " MODEL.pt SAMPLE.pt [DEVICE]\n";
    return 2;
  }
  try {
    torch::jit::Module sample = torch::jit::load(argv[2]);
    const torch::Tensor input = sample.attr("input").toTensor();
    const torch::Tensor expected = sample.attr("expected").toTensor();

    std::vector<torch::Device> devices = {torch::kCPU};
    if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
    if (argc == 4) devices = {torch::Device(argv[3])};
    bool ok = true;
    for (const auto& device : devices) {
      torch::jit::Module model = torch::jit::load(argv[1], device);
      model.eval();
      torch::NoGradGuard no_grad;
      const torch::Tensor out = model.forward({input.to(device)}).toTensor().to(torch::kCPU);
      const double diff = (out - expected).abs().max().item<double>();
      const auto first = out.flatten().slice(0, 0, 4).to(torch::kDouble);
      std::cout << "[" << device << "] " << argv[1] << ": output " << out.sizes() << ", first values";
      for (int64_t i = 0; i < first.numel(); ++i) std::cout << " " << first[i].item<double>();
      std::cout << "\n[" << device << "] max abs difference from the Python result: " << diff << "\n";
      // CPU reproduces Python's numbers to float32 rounding; CUDA may use TF32 where allowed.
      ok = ok && diff <= (device.is_cpu() ? 1e-5 : 1e-2);
    }
    std::cout << (ok ? "C++ inference: OK" : "C++ inference: MISMATCH") << std::endl;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "C++ inference failed: " << e.what() << "\n";
    return 1;
  }
}
