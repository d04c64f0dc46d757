// WeightView (conv1d_weight_view.h): the plain view of a contiguous weight, grad_input's phase views, and
// the copy for kernels that read only contiguous weights.

#include "ops/conv1d/cuda/conv1d_weight_view.h"

#include <ATen/ops/flip.h>

namespace custom_ops::conv1d::cuda {

WeightView WeightView::of(const at::Tensor& weight, const Geometry& g) {
  const int64_t C_g = g.in_channels_per_group(), K = g.kernel_size;
  return {weight, 0, g.out_channels_per_group() * C_g * K, C_g * K, K, 1};
}

bool WeightView::plain(const Geometry& g) const {
  const WeightView p = of(storage, g);
  return offset == p.offset && group_stride == p.group_stride && out_stride == p.out_stride &&
         in_stride == p.in_stride && tap_stride == p.tap_stride;
}

at::Tensor WeightView::materialize(const Geometry& g) const {
  if (plain(g)) return storage;
  const int64_t O_g = g.out_channels_per_group(), C_g = g.in_channels_per_group(), K = g.kernel_size;
  // as_strided takes no negative stride: the taps in storage order, reversed after where the view reverses them.
  const bool reversed = tap_stride < 0;
  const int64_t first = reversed ? offset + (K - 1) * tap_stride : offset;
  at::Tensor w = storage.as_strided({g.groups, O_g, C_g, K},
                                    {group_stride, out_stride, in_stride, reversed ? -tap_stride : tap_stride},
                                    storage.storage_offset() + first);
  if (reversed) w = w.flip({3});
  return w.reshape({g.out_channels, C_g, K}).contiguous();
}

WeightView grad_input_phase_weights(const at::Tensor& w, const Geometry& g, const GradInputPhase& phase) {
  const int64_t C_g = g.in_channels_per_group(), K = g.kernel_size;
  TORCH_INTERNAL_ASSERT(w.is_contiguous() && phase.taps >= 1 && phase.k0 + (phase.taps - 1) * phase.tap_step < K);
  return {w, phase.k0 + (phase.taps - 1) * phase.tap_step, g.out_channels_per_group() * C_g * K, K, C_g * K,
          -phase.tap_step};
}

}  // namespace custom_ops::conv1d::cuda
