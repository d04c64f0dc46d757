// CPU kernels of custom::conv1d_backward: grad_input (a transposed convolution), grad_weight (a
// reduction over batch and positions) and grad_bias, each only when the output mask asks for it.
//
// Both gradients are written as loops over rows that have unit stride along the positions, so the
// inner loops vectorise, and each output element is owned by exactly one task of at::parallel_for
// (no atomics): the results are the same on every run and for every thread count.
// Accumulation is in at::opmath_type (float32 for float16/bfloat16). Long reductions (grad_weight and
// grad_bias over batch x positions) are summed in blocks of kSumBlock terms whose partial sums are then
// added: a plain running sum over 10^5 float32 terms drifted to ~2e-5 relative error (the fuzz found it).

#include "ops/conv1d/conv1d_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <vector>

namespace custom_ops::conv1d {
namespace {

constexpr int64_t kSumBlock = 256;

// sum over l in [first, last) of term(l), in blocks of kSumBlock.
template <typename acc_t, typename Term>
acc_t blocked_sum(int64_t first, int64_t last, const Term& term) {
  acc_t total = 0;
  for (int64_t block = first; block < last; block += kSumBlock) {
    const int64_t end = std::min(last, block + kSumBlock);
    acc_t part = 0;
    for (int64_t l = block; l < end; ++l) part += term(l);
    total += part;
  }
  return total;
}

// Output positions l (in [0, L_out)) whose tap at input offset `offset` = k * dilation - pad_left lands
// inside the input: 0 <= l * stride + offset < L.
struct TapRange {
  int64_t first, last;  // [first, last)
};
TapRange tap_range(const Geometry& g, int64_t offset) {
  const int64_t s = g.stride;
  const int64_t first = offset >= 0 ? 0 : (-offset + s - 1) / s;
  const int64_t last = g.in_length - offset <= 0 ? 0 : (g.in_length - 1 - offset) / s + 1;
  return {first, std::min(last, g.out_length)};
}

// grad_input[n, c, i] = sum over the group's o and taps k of W[o, c, k] * gy[n, o, l], i = l*s + k*d - pl.
template <typename scalar_t>
void grad_input_rows(const scalar_t* gy, const scalar_t* w, scalar_t* grad_input, const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = g.in_channels, C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();
  const int64_t K = g.kernel_size, L = g.in_length, L_out = g.out_length, s = g.stride;
  at::parallel_for(0, g.batch * C, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> row(L);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / C, c = r % C, group = c / C_g, cg = c % C_g;
      std::fill(row.begin(), row.end(), acc_t(0));
      for (int64_t og = 0; og < O_g; ++og) {
        const int64_t o = group * O_g + og;
        const scalar_t* gy_row = gy + (n * g.out_channels + o) * L_out;
        for (int64_t k = 0; k < K; ++k) {
          const acc_t wv = static_cast<acc_t>(w[(o * C_g + cg) * K + k]);
          const int64_t offset = k * g.dilation - g.pad_left;
          const TapRange range = tap_range(g, offset);
          for (int64_t l = range.first; l < range.last; ++l) {
            row[l * s + offset] += wv * static_cast<acc_t>(gy_row[l]);
          }
        }
      }
      scalar_t* out = grad_input + r * L;
      for (int64_t i = 0; i < L; ++i) out[i] = static_cast<scalar_t>(row[i]);
    }
  });
}

// grad_weight[o, c, k] = sum over n and l of gy[n, o, l] * x[n, group * C_g + c, l*s + k*d - pl].
template <typename scalar_t>
void grad_weight_rows(const scalar_t* gy, const scalar_t* x, scalar_t* grad_weight, const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = g.in_channels, C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();
  const int64_t K = g.kernel_size, L = g.in_length, L_out = g.out_length, s = g.stride;
  at::parallel_for(0, g.out_channels * C_g, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> sums(K);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r / C_g, cg = r % C_g, c = (o / O_g) * C_g + cg;
      std::fill(sums.begin(), sums.end(), acc_t(0));
      for (int64_t n = 0; n < g.batch; ++n) {
        const scalar_t* gy_row = gy + (n * g.out_channels + o) * L_out;
        const scalar_t* x_row = x + (n * C + c) * L;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t offset = k * g.dilation - g.pad_left;
          const TapRange range = tap_range(g, offset);
          sums[k] += blocked_sum<acc_t>(range.first, range.last, [&](int64_t l) {
            return static_cast<acc_t>(gy_row[l]) * static_cast<acc_t>(x_row[l * s + offset]);
          });
        }
      }
      for (int64_t k = 0; k < K; ++k) grad_weight[r * K + k] = static_cast<scalar_t>(sums[k]);
    }
  });
}

// grad_bias[o] = sum over n and l of gy[n, o, l].
template <typename scalar_t>
void grad_bias_rows(const scalar_t* gy, scalar_t* grad_bias, const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, g.out_channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      acc_t sum = 0;
      for (int64_t n = 0; n < g.batch; ++n) {
        const scalar_t* gy_row = gy + (n * g.out_channels + o) * g.out_length;
        sum += blocked_sum<acc_t>(0, g.out_length, [&](int64_t l) { return static_cast<acc_t>(gy_row[l]); });
      }
      grad_bias[o] = static_cast<scalar_t>(sum);
    }
  });
}

}  // namespace

Gradients conv1d_backward_cpu(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                              const Geometry& g, GradientMask mask) {
  const at::Tensor gy = grad_output.contiguous();
  const at::Tensor x = mask[1] ? input.contiguous() : at::Tensor();
  const at::Tensor w = weight.contiguous();
  at::Tensor grad_input, grad_weight, grad_bias;
  if (mask[0]) grad_input = at::empty({g.batch, g.in_channels, g.in_length}, input.options());
  if (mask[1]) grad_weight = at::empty(weight.sizes(), weight.options());
  if (mask[2]) grad_bias = at::empty({g.out_channels}, weight.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d_backward (CPU)", [&] {
    if (mask[0] && grad_input.numel() > 0) {
      grad_input_rows<scalar_t>(gy.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                                grad_input.mutable_data_ptr<scalar_t>(), g);
    }
    // An empty batch gives zero weight and bias gradients (the loops add nothing).
    if (mask[1]) {
      grad_weight_rows<scalar_t>(gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                 grad_weight.mutable_data_ptr<scalar_t>(), g);
    }
    if (mask[2]) grad_bias_rows<scalar_t>(gy.const_data_ptr<scalar_t>(), grad_bias.mutable_data_ptr<scalar_t>(), g);
  });
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace custom_ops::conv1d
