#include "registration/conv1d_entry.h"

#include <torch/library.h>

TORCH_LIBRARY_IMPL(custom, CPU, m) {
  using namespace custom_ops::conv1d;
  m.impl("conv1d", &conv1d_entry<conv1d_forward_cpu>);
  m.impl("conv1d.padding", &conv1d_padding_entry<conv1d_forward_cpu>);
  m.impl("conv1d_backward", &conv1d_backward_entry<conv1d_backward_cpu>);
}
