// grad_input's phase weights as views of the forward's weight (conv1d_weight_view.h), against the copies
// the backward made of them before (a slice of the phase's taps, flipped, channels exchanged), over every
// stride, dilation, tap count and group layout (depthwise and one output channel a group included), for a
// weight that starts inside its storage: both the view's copy (WeightView::materialize, for the kernels
// that read contiguous weights) and the view read element by element through its strides, the index the
// Hopper family's weight relayout computes on the device (the relayout itself runs in the GPU's gradient
// tests). Plain C++: runs on every machine.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/conv1d_cuda_backward_dispatch.h"
#include "ops/conv1d/cuda/conv1d_weight_view.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <tuple>

namespace {

using custom_ops::conv1d::Geometry;
namespace cuda = custom_ops::conv1d::cuda;

// The phase's weights as conv1d_backward_cuda.cpp made them before it read them through a view.
torch::Tensor copied_phase_weights(const torch::Tensor& w, const Geometry& g, const cuda::GradInputPhase& phase) {
  const int64_t O_g = g.out_channels_per_group(), C_g = g.in_channels_per_group();
  return w.view({g.groups, O_g, C_g, g.kernel_size})
      .slice(3, phase.k0, g.kernel_size, phase.tap_step)
      .flip({3})
      .transpose(1, 2)
      .reshape({g.in_channels, O_g, phase.taps})
      .contiguous();
}

TEST(WeightView, PlainViewIsTheWeightItself) {
  const torch::Tensor w = torch::randn({6, 2, 3}, torch::kFloat64);
  const torch::Tensor x = torch::randn({2, 4, 20}, torch::kFloat64);
  const Geometry g = custom_ops::conv1d::make_geometry(x, w, std::nullopt, {1}, {1}, {1}, 2);
  const cuda::WeightView view = cuda::WeightView::of(w, g);
  EXPECT_TRUE(view.plain(g));
  EXPECT_TRUE(view.materialize(g).is_same(w));
}

TEST(WeightView, PhaseViewsReadTheFlippedTransposedTaps) {
  int phases = 0;
  for (const int64_t stride : {1, 2, 3, 5})
    for (const int64_t dilation : {1, 2, 3, 6})
      for (const int64_t K : {1, 2, 3, 4, 7})
        for (const auto& [C, O, groups] :
             {std::tuple<int64_t, int64_t, int64_t>{4, 6, 1}, {6, 4, 2}, {3, 9, 3}, {5, 5, 5}, {6, 3, 3}})
          for (const int64_t pad : {0, 2}) {
            const int64_t L = 40;
            if (L + 2 * pad < dilation * (K - 1) + 1) continue;
            const torch::Tensor x = torch::randn({2, C, L}, torch::kFloat64);
            // A weight that starts inside its storage (a slice of a larger one), as views' offsets count
            // from the tensor's first element, not the storage's.
            const torch::Tensor w = torch::randn({O + 2, C / groups, K}, torch::kFloat64).narrow(0, 2, O);
            const Geometry g =
                custom_ops::conv1d::make_geometry(x, w, std::nullopt, {stride}, {pad}, {dilation}, groups);
            for (int64_t rho = 0; rho < std::min(stride, L); ++rho) {
              const cuda::GradInputPhase phase = cuda::grad_input_phase(g, rho);
              if (phase.empty || phase.zero) continue;
              const std::string where = "stride " + std::to_string(stride) + " dilation " + std::to_string(dilation) +
                                        " K " + std::to_string(K) + " groups " + std::to_string(groups) + " pad " +
                                        std::to_string(pad) + " phase " + std::to_string(rho);
              const torch::Tensor expected = copied_phase_weights(w, g, phase);
              const cuda::WeightView view = cuda::grad_input_phase_weights(w, g, phase);
              const Geometry& t = phase.geometry;
              EXPECT_TRUE(torch::equal(view.materialize(t), expected)) << where;
              const double* data = w.const_data_ptr<double>();  // the tensor's first element
              const auto e = expected.accessor<double, 3>();
              for (int64_t group = 0; group < t.groups; ++group)
                for (int64_t o = 0; o < t.out_channels_per_group(); ++o)
                  for (int64_t c = 0; c < t.in_channels_per_group(); ++c)
                    for (int64_t tap = 0; tap < t.kernel_size; ++tap) {
                      const int64_t index = view.offset + group * view.group_stride + o * view.out_stride +
                                            c * view.in_stride + tap * view.tap_stride;
                      ASSERT_TRUE(index >= 0 && index < w.numel()) << where;
                      ASSERT_EQ(data[index], e[group * t.out_channels_per_group() + o][c][tap]) << where;
                    }
              ++phases;
            }
          }
  EXPECT_GT(phases, 500);
}

}  // namespace
