// CPU kernel of custom::conv1d: a direct convolution over output tiles, multi-threaded with
// at::parallel_for, with a register-blocked micro-kernel vectorised along the output positions.
//
// Work unit: one (batch, group, block of output channels, block of output positions) tile. The
// reduction over input channels goes in blocks of kChannelBlock. For each block the tile's input is
// gathered once, converted to the accumulation type and zero-padded, into a buffer the micro-kernel
// reads with unit stride and no bounds checks:
//   stride 1: one window per channel, (positions + halo) long; tap k reads it shifted by k * dilation;
//   stride > 1 (or a dilation wider than a tile): one row per (channel, tap) holding exactly the
//   inputs that tap meets (an im2col block).
// The micro-kernel keeps a 4-channel x 2-vector block of outputs in registers across the whole
// reduction block: each input vector loaded feeds 4 FMAs, each weight broadcast feeds 2.

#include "ops/conv1d/conv1d_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstring>
#include <vector>

// The 32-byte vector helpers are always inlined into code built for one instruction set, so the
// vector-ABI note GCC gives for the baseline clone does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace custom_ops::conv1d {
namespace {

constexpr int64_t kOutBlock = 32;       // output channels per tile
constexpr int64_t kLengthBlock = 256;   // output positions per tile (a multiple of every micro-tile width)
constexpr int64_t kChannelBlock = 32;   // input channels per reduction block (at most)
constexpr int64_t kGatherBudget = 1 << 18;  // elements of gathered input per reduction block (at most)
constexpr int kMicroRows = 4;           // output channels per micro-tile
constexpr int kMicroVectors = 2;        // 32-byte vectors of positions per micro-tile

// A 32-byte vector (GCC/Clang vector extension: AVX on CPUs that have it, two SSE halves elsewhere).
template <typename acc_t>
struct Vec {
  typedef acc_t type __attribute__((vector_size(32)));
  static constexpr int kLanes = 32 / sizeof(acc_t);
  static type load(const acc_t* p) {
    type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void store(acc_t* p, type v) { std::memcpy(p, &v, sizeof(v)); }
};

// Input of one reduction block as the micro-kernel sees it: tap k of channel c starts at
// data + c * channel_stride + k * tap_stride, and position l is at offset l from there.
template <typename acc_t>
struct BlockView {
  const acc_t* data;
  int64_t channel_stride;
  int64_t tap_stride;
  int64_t channels;
  int64_t taps;
};

// acc[i][l0 + (0 .. width)] += sum_{c, k} packed[(c * taps + k) * rows_total + i] * input(c, k)[l0 + ...]
template <typename acc_t, int kRows>
inline __attribute__((always_inline)) void micro_tile(acc_t* acc, int64_t acc_stride, int64_t l0,
                                                      const BlockView<acc_t>& in, const acc_t* packed,
                                                      int64_t rows_total) {
  using V = Vec<acc_t>;
  typename V::type a[kRows][kMicroVectors];
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kMicroVectors; ++j) a[i][j] = V::load(acc + i * acc_stride + l0 + j * V::kLanes);
  for (int64_t c = 0; c < in.channels; ++c) {
    for (int64_t k = 0; k < in.taps; ++k) {
      const acc_t* x = in.data + c * in.channel_stride + k * in.tap_stride + l0;
      const acc_t* w = packed + (c * in.taps + k) * rows_total;
      typename V::type xv[kMicroVectors];
      for (int j = 0; j < kMicroVectors; ++j) xv[j] = V::load(x + j * V::kLanes);
      for (int i = 0; i < kRows; ++i) {
        const acc_t wi = w[i];
        for (int j = 0; j < kMicroVectors; ++j) a[i][j] += wi * xv[j];
      }
    }
  }
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kMicroVectors; ++j) V::store(acc + i * acc_stride + l0 + j * V::kLanes, a[i][j]);
}

template <typename acc_t>
inline __attribute__((always_inline)) void accumulate_block_impl(acc_t* acc, int64_t acc_stride, int64_t rows,
                                                                 int64_t width, const BlockView<acc_t>& in,
                                                                 const acc_t* packed) {
  constexpr int64_t kWidth = kMicroVectors * Vec<acc_t>::kLanes;
  int64_t i = 0;
  for (; i + kMicroRows <= rows; i += kMicroRows)
    for (int64_t l = 0; l < width; l += kWidth)
      micro_tile<acc_t, kMicroRows>(acc + i * acc_stride, acc_stride, l, in, packed + i, rows);
  for (; i < rows; ++i)
    for (int64_t l = 0; l < width; l += kWidth) micro_tile<acc_t, 1>(acc + i * acc_stride, acc_stride, l, in, packed + i, rows);
}

// dst[j] = x[(first + j * step) * x_stride] for 0 <= j < count, zero where the position is outside
// [0, length): the zero padding. The in-bounds run is a tight conversion loop without branches.
template <typename acc_t, typename scalar_t>
void gather_row(acc_t* dst, int64_t count, const scalar_t* x, int64_t x_stride, int64_t first, int64_t step,
                int64_t length) {
  // In bounds for j in [j0, j1): first + j * step >= 0 and < length.
  const int64_t j0 = std::min(count, first >= 0 ? int64_t{0} : (-first + step - 1) / step);
  const int64_t j1 = std::max(j0, std::min(count, first >= length ? int64_t{0} : (length - first + step - 1) / step));
  std::fill(dst, dst + j0, acc_t(0));
  if (j1 > j0) {
    const scalar_t* src = x + (first + j0 * step) * x_stride;  // the first in-bounds element
    const int64_t n = j1 - j0, hop = step * x_stride;
    acc_t* out = dst + j0;
    if (hop == 1) {
      for (int64_t j = 0; j < n; ++j) out[j] = static_cast<acc_t>(src[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) out[j] = static_cast<acc_t>(src[j * hop]);
    }
  }
  std::fill(dst + j1, dst + count, acc_t(0));
}

// Built twice on x86-64 (AVX2+FMA and baseline) and picked at load time, so the plugin runs on any
// x86-64 CPU and uses 256-bit FMAs where they exist.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CUSTOM_OPS_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CUSTOM_OPS_CPU_CLONES
#endif

CUSTOM_OPS_CPU_CLONES void accumulate_block(float* acc, int64_t acc_stride, int64_t rows, int64_t width,
                                            const BlockView<float>& in, const float* packed) {
  accumulate_block_impl(acc, acc_stride, rows, width, in, packed);
}
CUSTOM_OPS_CPU_CLONES void accumulate_block(double* acc, int64_t acc_stride, int64_t rows, int64_t width,
                                            const BlockView<double>& in, const double* packed) {
  accumulate_block_impl(acc, acc_stride, rows, width, in, packed);
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
  const int64_t out_blocks = (O_g + kOutBlock - 1) / kOutBlock;
  const int64_t length_blocks = (L_out + kLengthBlock - 1) / kLengthBlock;
  const int64_t tiles = g.batch * g.groups * out_blocks * length_blocks;
  // Stride 1 (and dilation no wider than a tile): a window of kLengthBlock + halo per channel, which
  // is smaller than K rows. Otherwise kLengthBlock per (channel, tap).
  const bool use_window = stride == 1 && dilation <= kLengthBlock;
  const int64_t row_length = use_window ? kLengthBlock + reach - 1 : kLengthBlock;
  const int64_t rows_per_channel = use_window ? 1 : K;
  const int64_t channel_block =
      std::clamp<int64_t>(kGatherBudget / (rows_per_channel * row_length), 1, std::min(kChannelBlock, std::max<int64_t>(C_g, 1)));

  const scalar_t* x = input.const_data_ptr<scalar_t>();
  const scalar_t* w = weight.const_data_ptr<scalar_t>();  // contiguous (O, C_g, K)
  scalar_t* y = out.mutable_data_ptr<scalar_t>();          // contiguous (N, O, L_out)
  const int64_t xs_n = input.stride(0), xs_c = input.stride(1), xs_l = input.stride(2);

  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> gathered(channel_block * rows_per_channel * row_length);
    std::vector<acc_t> packed(channel_block * K * kOutBlock);
    std::vector<acc_t> acc(kOutBlock * kLengthBlock);
    for (int64_t tile = begin; tile < end; ++tile) {
      int64_t rest = tile;
      const int64_t lb = rest % length_blocks;
      rest /= length_blocks;
      const int64_t ob = rest % out_blocks;
      rest /= out_blocks;
      const int64_t grp = rest % g.groups;
      const int64_t n = rest / g.groups;

      const int64_t l0 = lb * kLengthBlock, nl = std::min(kLengthBlock, L_out - l0);
      const int64_t o0 = grp * O_g + ob * kOutBlock, no = std::min(kOutBlock, O_g - ob * kOutBlock);
      for (int64_t oi = 0; oi < no; ++oi) {
        const acc_t b = bias ? static_cast<acc_t>(bias[o0 + oi]) : acc_t(0);
        std::fill_n(acc.data() + oi * kLengthBlock, kLengthBlock, b);
      }
      for (int64_t c0 = 0; c0 < C_g; c0 += channel_block) {
        const int64_t nc = std::min(channel_block, C_g - c0);
        // Gather the block's input (positions past nl are computed and discarded, never stored).
        for (int64_t ci = 0; ci < nc; ++ci) {
          const scalar_t* x_row = x + n * xs_n + (grp * C_g + c0 + ci) * xs_c;
          acc_t* dst = gathered.data() + ci * rows_per_channel * row_length;
          for (int64_t r = 0; r < rows_per_channel; ++r, dst += row_length) {
            // window: dst[j] = x[l0 - pad + j]; rows: dst[j] = x[(l0 + j) * stride + r * dilation - pad]
            const int64_t first = l0 * stride - pad + r * dilation;
            const int64_t step = use_window ? 1 : stride;
            gather_row(dst, row_length, x_row, xs_l, first, step, L);
          }
        }
        // Pack the block's weights as [channel][tap][output channel]: one contiguous row per (c, k).
        for (int64_t ci = 0; ci < nc; ++ci)
          for (int64_t k = 0; k < K; ++k)
            for (int64_t oi = 0; oi < no; ++oi)
              packed[(ci * K + k) * no + oi] = static_cast<acc_t>(w[((o0 + oi) * C_g + c0 + ci) * K + k]);
        const BlockView<acc_t> view{gathered.data(), rows_per_channel * row_length,
                                    use_window ? dilation : row_length, nc, K};
        accumulate_block(acc.data(), kLengthBlock, no, nl, view, packed.data());
      }
      for (int64_t oi = 0; oi < no; ++oi) {
        scalar_t* y_row = y + (n * g.out_channels + o0 + oi) * L_out + l0;
        const acc_t* a = acc.data() + oi * kLengthBlock;
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
