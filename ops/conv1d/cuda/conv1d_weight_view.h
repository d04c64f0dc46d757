#pragma once
// The weights of a CUDA forward convolution as a view over another tensor's elements (plain C++, in every
// build, so that the tests can compare views with their copies on any machine): element
// (group, o, c, tap) of the (O_g, C_g, K) weights of each group sits at
//   storage[offset + group * group_stride + o * out_stride + c * in_stride + tap * tap_stride].
// A contiguous (O, C_g, K) weight is the plain view (WeightView::of). grad_input's phase convolutions
// (conv1d_backward_cuda.cpp) read the forward's own weight through one: a phase's taps reversed and the
// channels exchanged, which no tensor's strides express (a reversal has a negative stride). The Hopper
// family's weight relayout reads any view in place; the other kernels take `materialize`, a contiguous
// copy made by aten's flip and copy as before.

#include "ops/conv1d/conv1d_geometry.h"
#include "ops/conv1d/cuda/conv1d_cuda_backward_dispatch.h"

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace custom_ops::conv1d::cuda {

struct WeightView {
  at::Tensor storage;  // contiguous; offsets count from its first element
  int64_t offset = 0, group_stride = 0, out_stride = 0, in_stride = 0, tap_stride = 0;

  // A contiguous (O, C_g, K) weight of the convolution g.
  static WeightView of(const at::Tensor& weight, const Geometry& g);
  // True where the view is `of(storage, g)`: the storage is the weight itself.
  bool plain(const Geometry& g) const;
  // The weights as a contiguous (O, C_g, K) tensor: the storage itself where plain, else a copy.
  at::Tensor materialize(const Geometry& g) const;
};

// A grad_input phase's weights (phase.geometry: C_g x O_g x taps a group, grad_input's channels out and
// grad_output's in) as a view of the forward's contiguous (O, C_g, K) weight w, of the forward geometry g:
// the phase's tap j is the forward's tap k0 + (taps - 1 - j) * tap_step.
WeightView grad_input_phase_weights(const at::Tensor& w, const Geometry& g, const GradInputPhase& phase);

}  // namespace custom_ops::conv1d::cuda

#ifdef CUSTOM_OPS_WITH_CUDA
namespace custom_ops::conv1d {

// custom::conv1d's CUDA forward (conv1d_cuda.cpp) with the weights given as a view.
at::Tensor conv1d_forward_cuda(const at::Tensor& input, const cuda::WeightView& weights,
                               const std::optional<at::Tensor>& bias, const Geometry& g);

}  // namespace custom_ops::conv1d
#endif
