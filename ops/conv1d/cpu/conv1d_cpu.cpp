// CPU kernel of custom::conv1d: a direct convolution over output tiles, multi-threaded with
// at::parallel_for and vectorised along the output positions.
//
// Work unit: one (batch, group, block of kOutBlock output channels, block of output positions) tile.
// For each input channel of the group, the tile's input window (with its halo and zero padding) is
// gathered once into a contiguous buffer in the accumulation type; every output channel and kernel tap
// of the tile then reads it with unit stride, so the inner loop has no bounds checks and no conversions.

#include "ops/conv1d/conv1d_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <vector>

namespace custom_ops::conv1d {
namespace {

constexpr int64_t kOutBlock = 8;        // output channels per tile
constexpr int64_t kMaxLengthBlock = 512;  // output positions per tile (fewer for large strides)
constexpr int64_t kMaxWindow = 1 << 16;  // cap on the gathered input window per tile, in elements

// acc[0:n] += w * x[0:n]. Built twice on x86-64 (AVX2+FMA and baseline) and picked at load time, so the
// plugin runs on any x86-64 CPU and uses 256-bit FMAs where they exist.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CUSTOM_OPS_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CUSTOM_OPS_CLONES
#endif

template <typename acc_t>
inline void axpy_strided(acc_t* __restrict__ acc, const acc_t* __restrict__ x, acc_t w, int64_t n, int64_t stride) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * x[i * stride];
}

CUSTOM_OPS_CLONES void axpy(float* __restrict__ acc, const float* __restrict__ x, float w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * x[i];
}
CUSTOM_OPS_CLONES void axpy(double* __restrict__ acc, const double* __restrict__ x, double w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * x[i];
}

template <typename scalar_t>
void conv1d_cpu_kernel(const at::Tensor& input, const at::Tensor& weight, const scalar_t* bias, at::Tensor& out,
                       const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C_g = g.in_channels_per_group();
  const int64_t O_g = g.out_channels_per_group();
  const int64_t K = g.kernel_size, L = g.in_length, L_out = g.out_length;
  const int64_t stride = g.stride, dilation = g.dilation, pad = g.pad_left;
  const int64_t reach = (K - 1) * dilation + 1;  // input elements one output position looks at
  const int64_t length_block =
      std::clamp<int64_t>((kMaxWindow - reach) / stride + 1, 1, std::min(kMaxLengthBlock, L_out));
  const int64_t out_blocks = (O_g + kOutBlock - 1) / kOutBlock;
  const int64_t length_blocks = (L_out + length_block - 1) / length_block;
  const int64_t tiles = g.batch * g.groups * out_blocks * length_blocks;
  const int64_t window_capacity = (length_block - 1) * stride + reach;

  const scalar_t* x = input.const_data_ptr<scalar_t>();
  const scalar_t* w = weight.const_data_ptr<scalar_t>();  // contiguous (O, C_g, K)
  scalar_t* y = out.mutable_data_ptr<scalar_t>();          // contiguous (N, O, L_out)
  const int64_t xs_n = input.stride(0), xs_c = input.stride(1), xs_l = input.stride(2);

  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> window(window_capacity);
    std::vector<acc_t> acc(kOutBlock * length_block);
    for (int64_t tile = begin; tile < end; ++tile) {
      int64_t rest = tile;
      const int64_t lb = rest % length_blocks;
      rest /= length_blocks;
      const int64_t ob = rest % out_blocks;
      rest /= out_blocks;
      const int64_t grp = rest % g.groups;
      const int64_t n = rest / g.groups;

      const int64_t l0 = lb * length_block, nl = std::min(length_block, L_out - l0);
      const int64_t o0 = grp * O_g + ob * kOutBlock, no = std::min(kOutBlock, O_g - ob * kOutBlock);
      const int64_t first = l0 * stride - pad;  // input position of the window's first element
      const int64_t span = (nl - 1) * stride + reach;

      for (int64_t oi = 0; oi < no; ++oi) {
        const acc_t b = bias ? static_cast<acc_t>(bias[o0 + oi]) : acc_t(0);
        std::fill_n(acc.data() + oi * length_block, nl, b);
      }
      for (int64_t c = 0; c < C_g; ++c) {
        const scalar_t* x_row = x + n * xs_n + (grp * C_g + c) * xs_c;
        for (int64_t j = 0; j < span; ++j) {
          const int64_t p = first + j;
          window[j] = (p >= 0 && p < L) ? static_cast<acc_t>(x_row[p * xs_l]) : acc_t(0);
        }
        for (int64_t oi = 0; oi < no; ++oi) {
          const scalar_t* w_row = w + ((o0 + oi) * C_g + c) * K;
          acc_t* a = acc.data() + oi * length_block;
          for (int64_t k = 0; k < K; ++k) {
            const acc_t wk = static_cast<acc_t>(w_row[k]);
            const acc_t* win = window.data() + k * dilation;
            if (stride == 1) {
              axpy(a, win, wk, nl);
            } else {
              axpy_strided(a, win, wk, nl, stride);
            }
          }
        }
      }
      for (int64_t oi = 0; oi < no; ++oi) {
        scalar_t* y_row = y + (n * g.out_channels + o0 + oi) * L_out + l0;
        const acc_t* a = acc.data() + oi * length_block;
        for (int64_t l = 0; l < nl; ++l) y_row[l] = static_cast<scalar_t>(a[l]);
      }
    }
  });
}

}  // namespace

at::Tensor conv1d_forward_cpu(const at::Tensor& input, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias, const Geometry& g) {
  at::Tensor out = at::empty({g.batch, g.out_channels, g.out_length}, input.options());
  if (out.numel() == 0) return out;
  const at::Tensor w = weight.contiguous();
  const at::Tensor b = (bias.has_value() && bias->defined()) ? bias->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d (CPU)", [&] {
    conv1d_cpu_kernel<scalar_t>(input, w, b.defined() ? b.const_data_ptr<scalar_t>() : nullptr, out, g);
  });
  return out;
}

}  // namespace custom_ops::conv1d
