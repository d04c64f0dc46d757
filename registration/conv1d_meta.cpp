#include "ops/conv1d/conv1d_kernels.h"

#include <torch/library.h>

TORCH_LIBRARY_IMPL(custom, Meta, m) {
  using namespace custom_ops::conv1d;
  m.impl("conv1d", &conv1d_meta);
  m.impl("conv1d.padding", &conv1d_padding_meta);
  m.impl("conv1d_backward", &conv1d_backward_meta);
}
