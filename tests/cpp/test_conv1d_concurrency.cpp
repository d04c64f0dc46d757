// 8 threads calling custom::conv1d at once give the results of serial calls, bitwise: on the CPU, and
// on CUDA with a stream of the pool per thread (c10::cuda::CUDAStreamGuard).

#include "conv1d_test_util.h"

#ifdef CUSTOM_OPS_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <atomic>
#include <thread>

namespace custom_ops::testing {
namespace {

struct Job {
  torch::Tensor x, w, b;
  int64_t stride, padding, dilation, groups;
  torch::Tensor run() const { return custom_ops::conv1d(x, w, b, stride, padding, dilation, groups); }
};

std::vector<Job> make_jobs(const torch::TensorOptions& options) {
  torch::manual_seed(31);
  std::vector<Job> jobs;
  for (int i = 0; i < 8; ++i) {  // dense, grouped, depthwise, strided/dilated, in turn
    const int64_t groups = (i % 4 == 1) ? 4 : (i % 4 == 2) ? 16 : 1;
    const int64_t c = 16, o = i % 4 == 2 ? 16 : 32, k = 3 + i % 3;
    Job j{torch::randn({2, c, 700 + 37 * i}, options), torch::randn({o, c / groups, k}, options),
          torch::randn({o}, options), i % 4 == 3 ? 2 : 1, 1, i % 4 == 3 ? 2 : 1, groups};
    jobs.push_back(j);
  }
  return jobs;
}

void run_concurrently(const std::vector<Job>& jobs, bool cuda) {
  std::vector<torch::Tensor> serial;
  for (const auto& j : jobs) serial.push_back(j.run());
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < jobs.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
#ifdef CUSTOM_OPS_WITH_CUDA
        std::optional<c10::cuda::CUDAStreamGuard> guard;
        if (cuda) guard.emplace(c10::cuda::getStreamFromPool());
#endif
        for (int rep = 0; rep < 20; ++rep) {
          const torch::Tensor out = jobs[i].run();
#ifdef CUSTOM_OPS_WITH_CUDA
          if (cuda) c10::cuda::getCurrentCUDAStream().synchronize();
#endif
          if (!torch::equal(out, serial[i])) ++mismatches;
        }
      } catch (const std::exception&) {
        ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Conv1dConcurrency, EightThreadsMatchSerialOnCpu) {
  run_concurrently(make_jobs(torch::TensorOptions().dtype(torch::kFloat)), false);
}

TEST(Conv1dConcurrency, EightThreadsWithOwnStreamsMatchSerialOnCuda) {
  SKIP_WITHOUT_CUDA();
  run_concurrently(make_jobs(torch::TensorOptions().dtype(torch::kFloat).device(torch::kCUDA)), true);
  run_concurrently(make_jobs(torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA)), true);
}

}  // namespace
}  // namespace custom_ops::testing
