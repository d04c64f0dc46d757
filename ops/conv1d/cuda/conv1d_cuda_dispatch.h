#pragma once
// Kernel selection of the CUDA backend, kept in one place so tests and benchmarks can ask which
// kernel serves a shape.

#include "ops/conv1d/conv1d_geometry.h"

#include <c10/core/ScalarType.h>

namespace custom_ops::conv1d::cuda {

enum class KernelChoice { kDirectLarge, kDirectWide, kDirectNarrow };

KernelChoice select_kernel(const Geometry& g, c10::ScalarType dtype, bool allow_tf32);
const char* kernel_name(KernelChoice choice);

}  // namespace custom_ops::conv1d::cuda
