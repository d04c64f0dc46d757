#pragma once
// The CPU forward's paths, for the backward that reuses them (grad_input is a forward convolution of
// grad_output; conv1d_backward_cpu.cpp).

#include "ops/conv1d/conv1d_geometry.h"

#include <c10/util/BFloat16.h>

#include <cstdint>

namespace custom_ops::conv1d {

// Which kernel conv1d_forward_cpu runs for a dtype and geometry on this CPU.
enum class ForwardPath {
  kAccumulate,  // the register-blocked micro-kernel in the accumulation type (float32 / float64)
  kBf16Dot,     // bfloat16 through vdpbf16ps over pairs of input channels (AVX-512-BF16)
  kGemm,        // bfloat16 pointwise with >= 512 channels: at::addmm / at::baddbmm
};
ForwardPath forward_path(at::ScalarType dtype, const Geometry& g);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The kBf16Dot forward with its weights already packed: packed[o][p][k] = w[o][2p][k] | w[o][2p + 1][k] << 16
// (bfloat16 bits; the last pair of an odd C_g has a zero high half), O x ceil(C_g / 2) x K words. input
// (N, C, L) of any strides, out a contiguous (N, O, L_out) tensor it writes whole.
void conv1d_bf16_dot_packed(const at::Tensor& input, const uint32_t* packed, const c10::BFloat16* bias,
                            at::Tensor& out, const Geometry& g);
#endif

}  // namespace custom_ops::conv1d
