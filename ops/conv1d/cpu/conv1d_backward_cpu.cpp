// CPU kernels of custom::conv1d_backward: grad_input (a transposed convolution), grad_weight (a
// reduction over batch and positions) and grad_bias, each only when the output mask asks for it.
//
// grad_input runs the forward's kernels on grad_output (one stride-1 convolution per phase of the
// input); grad_weight is a GEMM per group on the forward's micro-kernel (cpu_microkernel.h), over
// grad_output packed transposed; shapes too narrow for its vectors (depthwise, a front end of one
// channel) and grad_bias use plain row loops. Every output element is owned by one task of
// at::parallel_for and the reductions are split by the shape alone, so the results are the same on
// every run and for every thread count.
// Accumulation is in at::opmath_type (float32 for float16/bfloat16). Long reductions (grad_weight and
// grad_bias over batch x positions) are summed in blocks whose partial sums are then added (in float64
// for the GEMM): a plain running sum over 10^5 float32 terms drifted to ~2e-5 relative error (the fuzz
// found it).

#include "ops/conv1d/conv1d_kernels.h"
#include "ops/conv1d/cpu/conv1d_cpu_forward.h"
#include "ops/conv1d/cpu/cpu_microkernel.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <type_traits>
#include <vector>

namespace custom_ops::conv1d {
namespace {

constexpr int64_t kSumBlock = 256;

// sum over l in [first, last) of term(l), in blocks of kSumBlock, each summed in kSumLanes interleaved
// partial sums (independent chains the compiler vectorises; the order is fixed, so are the bits).
constexpr int kSumLanes = 16;
template <typename acc_t, typename Term>
acc_t blocked_sum(int64_t first, int64_t last, const Term& term) {
  acc_t total = 0;
  for (int64_t block = first; block < last; block += kSumBlock) {
    const int64_t end = std::min(last, block + kSumBlock);
    acc_t lanes[kSumLanes] = {};
    int64_t l = block;
    for (; l + kSumLanes <= end; l += kSumLanes)
      for (int j = 0; j < kSumLanes; ++j) lanes[j] += term(l + j);
    acc_t part = 0;
    for (; l < end; ++l) part += term(l);
    for (int j = 0; j < kSumLanes; ++j) part += lanes[j];
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

// dst[p * dst_stride + o] = src[o * src_stride + p] for o < rows, p < cols (nothing else written):
// grad_output's rows packed transposed for grad_weight, and pointwise weights swapped for grad_input. In
// 16 x 16 tiles (the rows are L_out apart, often a power of two, and a copy row by row or column by
// column had every access of a pass in one cache set).
template <typename acc_t, typename scalar_t>
void transpose_portable(acc_t* dst, int64_t dst_stride, const scalar_t* src, int64_t src_stride, int64_t rows,
                        int64_t cols) {
  for (int64_t ot = 0; ot < rows; ot += 16)
    for (int64_t pt = 0; pt < cols; pt += 16) {
      const int64_t o_end = std::min(rows, ot + 16), p_end = std::min(cols, pt + 16);
      for (int64_t o = ot; o < o_end; ++o) {
        const scalar_t* row = src + o * src_stride;
        for (int64_t p = pt; p < p_end; ++p) dst[p * dst_stride + o] = static_cast<acc_t>(row[p]);
      }
    }
}

#ifdef CUSTOM_OPS_X86_DISPATCH
// 16 float32 values stored as out_t (float, or bfloat16 / float16 rounded to nearest even: bfloat16 as
// c10 rounds it, NaN as 0x7FC0), where row_mask has them.
template <typename out_t>
CUSTOM_OPS_TARGET_AVX512 CUSTOM_OPS_INLINE void store_masked(out_t* to, __mmask16 row_mask, __m512 v) {
  if constexpr (std::is_same_v<out_t, float>) {
    _mm512_mask_storeu_ps(to, row_mask, v);
  } else if constexpr (std::is_same_v<out_t, c10::BFloat16>) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i bias = _mm512_add_epi32(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)),
                                          _mm512_set1_epi32(0x7FFF));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
    _mm256_mask_storeu_epi16(to, row_mask, _mm512_cvtepi32_epi16(r));
  } else {
    _mm256_mask_storeu_epi16(to, row_mask, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}

// The transpose with AVX-512: 16 rows loaded (masked at the edges, converted from 16-bit types),
// transposed in registers by four rounds of shuffles, 16 columns stored (masked to `rows`) as out_t:
// float32, or a 16-bit type (store_masked). kPairs (bfloat16): the columns are pairs of consecutive
// elements, moved as 32-bit words (column p of row o is elements 2p and 2p + 1 of the row; src_stride
// still counts elements).
template <typename scalar_t, bool kPairs = false, typename out_t = float>
CUSTOM_OPS_TARGET_AVX512 void transpose_avx512(out_t* dst, int64_t dst_stride, const scalar_t* src, int64_t src_stride,
                                               int64_t rows, int64_t cols) {
  for (int64_t ot = 0; ot < rows; ot += 16)
    for (int64_t pt = 0; pt < cols; pt += 16) {
      const int64_t nr = std::min<int64_t>(16, rows - ot), nc = std::min<int64_t>(16, cols - pt);
      const __mmask16 mask = static_cast<__mmask16>((1u << nc) - 1), row_mask = static_cast<__mmask16>((1u << nr) - 1);
      __m512 r[16];
      for (int i = 0; i < 16; ++i) {
        if (i >= nr) {
          r[i] = _mm512_setzero_ps();
          continue;
        }
        const scalar_t* row = src + (ot + i) * src_stride + (kPairs ? 2 * pt : pt);
        if constexpr (kPairs) {
          r[i] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(mask, row));
        } else if constexpr (std::is_same_v<scalar_t, float>) {
          r[i] = _mm512_maskz_loadu_ps(mask, row);
        } else if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
          const __m256i bits = _mm256_maskz_loadu_epi16(mask, row);
          r[i] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
        } else {
          r[i] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row));
        }
      }
      __m512 t[16];
      for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 2; ++j) {
          const __m512d a = _mm512_castps_pd(t[4 * i + j]), b = _mm512_castps_pd(t[4 * i + j + 2]);
          r[4 * i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
          r[4 * i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
      // r[4i + m] holds, for rows 4i..4i+3, column m of each 128-bit lane (columns m, m+4, m+8, m+12).
      for (int i = 0; i < 2; ++i)
        for (int m = 0; m < 4; ++m) {
          t[8 * i + m] = _mm512_shuffle_f32x4(r[8 * i + m], r[8 * i + 4 + m], 0x88);
          t[8 * i + 4 + m] = _mm512_shuffle_f32x4(r[8 * i + m], r[8 * i + 4 + m], 0xdd);
        }
      // t[8i + m]: lanes 0, 2 of rows 8i..8i+3 and 8i+4..8i+7; t[8i + 4 + m]: lanes 1, 3.
      for (int h = 0; h < 2; ++h)
        for (int m = 0; m < 4; ++m) {
          const __m512 lo = _mm512_shuffle_f32x4(t[4 * h + m], t[8 + 4 * h + m], 0x88);
          const __m512 hi = _mm512_shuffle_f32x4(t[4 * h + m], t[8 + 4 * h + m], 0xdd);
          // lo: column 4h + m; hi: column 8 + 4h + m.
          const int64_t c_lo = 4 * h + m, c_hi = 8 + 4 * h + m;
          if (c_lo < nc) store_masked(dst + (pt + c_lo) * dst_stride + ot, row_mask, lo);
          if (c_hi < nc) store_masked(dst + (pt + c_hi) * dst_stride + ot, row_mask, hi);
        }
    }
}
#endif

template <typename acc_t, typename scalar_t>
using TransposeFn = void (*)(acc_t*, int64_t, const scalar_t*, int64_t, int64_t, int64_t);

template <typename acc_t, typename scalar_t>
TransposeFn<acc_t, scalar_t> pick_transpose() {
#ifdef CUSTOM_OPS_X86_DISPATCH
  constexpr bool kToFloat32 = std::is_same_v<acc_t, float>;
  constexpr bool k16BitToFrom32 = (std::is_same_v<acc_t, c10::BFloat16> || std::is_same_v<acc_t, c10::Half>) &&
                                  std::is_same_v<scalar_t, float>;
  if constexpr (kToFloat32 || k16BitToFrom32) {
    if (cpu::cpu_isa() >= cpu::Isa::kAvx512) return transpose_avx512<scalar_t, false, acc_t>;
  }
#endif
  return transpose_portable<acc_t, scalar_t>;
}

// Rows of the swapped weight (below) for one (group, tile of 16 input channels): for each channel c and
// output channel o, to[j] = from[taps[j]] with from = w[o][c][.], to = w_swapped[c][o][.].
template <typename scalar_t>
void swap_tile_portable(scalar_t* dst, const scalar_t* src, int64_t O_g, int64_t C_g, int64_t K,
                        const int64_t* taps, int64_t J, int64_t c_begin, int64_t c_end) {
  for (int64_t ot = 0; ot < O_g; ot += 16)
    for (int64_t c = c_begin; c < c_end; ++c)
      for (int64_t o = ot; o < std::min(O_g, ot + 16); ++o) {
        const scalar_t* from = src + (o * C_g + c) * K;
        scalar_t* to = dst + (c * O_g + o) * J;
        for (int64_t j = 0; j < J; ++j) to[j] = from[taps[j]];
      }
}

#ifdef CUSTOM_OPS_X86_DISPATCH
// The same with AVX-512 for 32-bit elements and K <= 16, or 16-bit ones and K <= 32: one masked load
// of the K taps, one permute into the phase's order, one masked store.
template <typename scalar_t>
CUSTOM_OPS_TARGET_AVX512 void swap_tile_avx512(scalar_t* dst, const scalar_t* src, int64_t O_g, int64_t C_g,
                                               int64_t K, const int64_t* taps, int64_t J, int64_t c_begin,
                                               int64_t c_end) {
  static_assert(sizeof(scalar_t) == 4 || sizeof(scalar_t) == 2, "32- or 16-bit elements");
  constexpr int kLanes = 64 / sizeof(scalar_t);
  alignas(64) uint16_t index16[32] = {};
  alignas(64) uint32_t index32[16] = {};
  for (int64_t j = 0; j < J; ++j) {
    index16[j] = static_cast<uint16_t>(taps[j]);
    if (j < 16) index32[j] = static_cast<uint32_t>(taps[j]);
  }
  const __m512i index = sizeof(scalar_t) == 4 ? _mm512_load_si512(index32) : _mm512_load_si512(index16);
  const uint64_t load_bits = K >= 64 ? ~uint64_t{0} : (uint64_t{1} << K) - 1;
  const uint64_t store_bits = J >= 64 ? ~uint64_t{0} : (uint64_t{1} << J) - 1;
  for (int64_t ot = 0; ot < O_g; ot += 16)
    for (int64_t c = c_begin; c < c_end; ++c)
      for (int64_t o = ot; o < std::min(O_g, ot + 16); ++o) {
        const scalar_t* from = src + (o * C_g + c) * K;
        scalar_t* to = dst + (c * O_g + o) * J;
        if constexpr (kLanes == 16) {
          const __m512i v = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(load_bits), from);
          _mm512_mask_storeu_epi32(to, static_cast<__mmask16>(store_bits), _mm512_permutexvar_epi32(index, v));
        } else {
          const __m512i v = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(load_bits), from);
          _mm512_mask_storeu_epi16(to, static_cast<__mmask32>(store_bits), _mm512_permutexvar_epi16(index, v));
        }
      }
}
#endif

// w_swapped[grp * C_g + c][o][j] = w[grp * O_g + o][c][taps[j]]: the weight of the convolution from
// grad_output's channels to the input's, for the taps of one phase. In tiles of 16 x 16 (o, c): the
// weight rows are C_g * K apart, and for short sequences (batch-1 inference shapes) the weight is as
// large as the activations.
at::Tensor swapped_weight(const at::Tensor& w, const Geometry& g, const std::vector<int64_t>& taps) {
  const int64_t G = g.groups, C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();
  const int64_t K = g.kernel_size, J = static_cast<int64_t>(taps.size()), c_tiles = (C_g + 15) / 16;
  at::Tensor out = at::empty({g.in_channels, O_g, J}, w.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, w.scalar_type(), "custom::conv1d_backward (CPU)", [&] {
    const scalar_t* src = w.const_data_ptr<scalar_t>();  // contiguous (O, C_g, K)
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    if (K == 1) {  // a plain transpose of each group's (O_g, C_g) matrix
      const TransposeFn<scalar_t, scalar_t> transpose = pick_transpose<scalar_t, scalar_t>();
      at::parallel_for(0, G * c_tiles, 1, [&](int64_t begin, int64_t end) {
        for (int64_t tile = begin; tile < end; ++tile) {
          const int64_t grp = tile / c_tiles, c_begin = (tile % c_tiles) * 16;
          transpose(dst + (grp * C_g + c_begin) * O_g, O_g, src + grp * O_g * C_g + c_begin, C_g, O_g,
                    std::min<int64_t>(16, C_g - c_begin));
        }
      });
      return;
    }
    auto swap_tile = swap_tile_portable<scalar_t>;
#ifdef CUSTOM_OPS_X86_DISPATCH
    if (cpu::cpu_isa() >= cpu::Isa::kAvx512 && sizeof(scalar_t) * K <= 64) {
      if constexpr (sizeof(scalar_t) == 4 || sizeof(scalar_t) == 2) swap_tile = swap_tile_avx512<scalar_t>;
    }
#endif
    at::parallel_for(0, G * c_tiles, 1, [&](int64_t begin, int64_t end) {
      for (int64_t tile = begin; tile < end; ++tile) {
        const int64_t grp = tile / c_tiles, c_begin = (tile % c_tiles) * 16, c_end = std::min(C_g, c_begin + 16);
        swap_tile(dst + grp * C_g * O_g * J, src + grp * O_g * C_g * K, O_g, C_g, K, taps.data(), J, c_begin, c_end);
      }
    });
  });
  return out;
}

#ifdef CUSTOM_OPS_X86_DISPATCH
// The swapped weight of a phase straight in the bfloat16 dot-product forward's packed layout (one pass
// instead of swap, then pack): packed[grp * C_g + c][p][j] = w[grp * O_g + 2p][c][taps[j]] |
// w[grp * O_g + 2p + 1][c][taps[j]] << 16 (a zero high half for the last pair of an odd O_g), for the
// group's channels [c_begin, c_end). With K <= 32 and J <= 16: two masked loads of a pair's taps and one
// two-source word permute into (lo, hi) pairs in the phase's order.
CUSTOM_OPS_TARGET_AVX512 void swap_pack_pairs_bf16(uint32_t* packed, const uint16_t* w, int64_t O_g, int64_t C_g,
                                                   int64_t K, const std::vector<int64_t>& taps, int64_t c_begin,
                                                   int64_t c_end) {
  const int64_t J = static_cast<int64_t>(taps.size()), P = (O_g + 1) / 2;
  if (K <= 32 && J <= 16) {
    alignas(64) uint16_t index[32] = {};
    for (int64_t j = 0; j < J; ++j) {
      index[2 * j] = static_cast<uint16_t>(taps[j]);
      index[2 * j + 1] = static_cast<uint16_t>(32 + taps[j]);
    }
    const __m512i perm = _mm512_load_si512(index);
    const __mmask32 load = K >= 32 ? ~__mmask32{0} : ((__mmask32{1} << K) - 1);
    const __mmask16 store = J >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << J) - 1);
    for (int64_t c = c_begin; c < c_end; ++c)
      for (int64_t p = 0; p < P; ++p) {
        const __m512i lo = _mm512_maskz_loadu_epi16(load, w + ((2 * p) * C_g + c) * K);
        const __m512i hi = 2 * p + 1 < O_g ? _mm512_maskz_loadu_epi16(load, w + ((2 * p + 1) * C_g + c) * K)
                                           : _mm512_setzero_si512();
        _mm512_mask_storeu_epi32(packed + (c * P + p) * J, store, _mm512_permutex2var_epi16(lo, perm, hi));
      }
    return;
  }
  for (int64_t c = c_begin; c < c_end; ++c)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t j = 0; j < J; ++j) {
        const uint32_t lo = w[((2 * p) * C_g + c) * K + taps[j]];
        const uint32_t hi = 2 * p + 1 < O_g ? w[((2 * p + 1) * C_g + c) * K + taps[j]] : 0;
        packed[(c * P + p) * J + j] = lo | (hi << 16);
      }
}
#endif

// grad_input[n, c, i] = sum over the group's o and taps k of W[o, c, k] * gy[n, o, l], i = l*s + k*d - pl,
// term by term over the pairs (i, l) that exist: the exact pattern of aten's non-finite values where
// the weight has an Inf or NaN (the convolutions below would multiply it by grad_output's zero padding).
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

// Whether a contiguous floating-point tensor holds only finite values: its exponent bits, a vectorised
// OR over blocks (aten's isfinite().all() took ~100 us for 50k bfloat16 values, a fifth of a short
// sequence's grad_input).
bool all_finite(const at::Tensor& t) {
  auto scan = [&](auto exponent) {
    using word = decltype(exponent);
    const auto* bytes = static_cast<const char*>(t.const_data_ptr());
    const int64_t n = t.numel();
    for (int64_t begin = 0; begin < n; begin += 4096) {
      const int64_t end = std::min(n, begin + 4096);
      word any = 0;
      for (int64_t i = begin; i < end; ++i) {
        word bits;
        std::memcpy(&bits, bytes + i * sizeof(word), sizeof(word));
        any |= static_cast<word>((bits & exponent) == exponent ? 1 : 0);
      }
      if (any) return false;
    }
    return true;
  };
  switch (t.scalar_type()) {
    case at::kFloat: return scan(uint32_t{0x7F800000});
    case at::kDouble: return scan(uint64_t{0x7FF0000000000000});
    case at::kBFloat16: return scan(uint16_t{0x7F80});
    case at::kHalf: return scan(uint16_t{0x7C00});
    default: return at::isfinite(t).all().item<bool>();
  }
}

// The geometry of a stride-1 forward convolution that reads grad_output (g.out_channels channels of
// g.out_length) and writes `out_channels` rows of `out_length`, through `taps` taps `dilation` apart
// starting `pad_left` positions before grad_output's first (the right padding follows).
Geometry convolution_of_grad_output(const Geometry& g, int64_t out_channels, int64_t taps, int64_t dilation,
                                    int64_t pad_left, int64_t out_length) {
  Geometry t = g;
  t.in_channels = g.out_channels;
  t.in_length = g.out_length;
  t.out_channels = out_channels;
  t.kernel_size = taps;
  t.stride = 1;
  t.dilation = dilation;
  t.pad_left = pad_left;
  t.out_length = out_length;
  t.pad_right = out_length - g.out_length - pad_left + (taps - 1) * dilation;
  return t;
}

// Strided shapes with few input channels per group (one-channel front ends, strided depthwise): all
// phases as one forward convolution whose output channels are (phase, channel) pairs, then interleaved.
// Phase by phase, each convolution would read all of grad_output for J of the K taps and compute one or
// two output rows (the micro-kernel's vectors then feed one FMA per load); stacked, grad_output is read
// once and the s * C_g rows fill the micro-tiles. Phase r reads offsets e = (r + pl - k*d) / s; the
// stacked kernel spans every phase's offsets [e_min, e_max] with zero weights where a phase has no tap.
// Returns an undefined tensor where this does not apply, would waste more than half of its FMAs, or
// gave a non-finite result (below).
constexpr int64_t kStackedPhaseMaxChannels = 8;  // C_g below this
constexpr int64_t kStackedPhaseMaxStride = 64;

at::Tensor grad_input_stacked_phases(const at::Tensor& gy, const at::Tensor& weight, const Geometry& g) {
  const int64_t s = g.stride, d = g.dilation, K = g.kernel_size, L = g.in_length, pl = g.pad_left;
  const int64_t G = g.groups, C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();
  if (s == 1 || s > kStackedPhaseMaxStride || C_g >= kStackedPhaseMaxChannels) return {};
  int64_t e_min = 0, e_max = -1;
  for (int64_t r = 0; r < s; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t num = r + pl - k * d;
      if (num % s != 0) continue;
      const int64_t e = num / s;
      if (e_max < e_min) {
        e_min = e_max = e;
      } else {
        e_min = std::min(e_min, e);
        e_max = std::max(e_max, e);
      }
    }
  if (e_max < e_min) return {};  // no tap reaches the input (the phase path writes the zeros)
  const int64_t J = e_max - e_min + 1;
  if (J * s > 2 * K) return {};
  const int64_t rows = s * C_g, Lq = (L + s - 1) / s;
  // stacked[grp][r * C_g + c][o][j] = w[grp * O_g + o][c][k] for the tap k with r + pl - k*d = s * (e_min + j).
  at::Tensor stacked = at::zeros({G * rows, O_g, J}, weight.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, weight.scalar_type(), "custom::conv1d_backward (CPU)", [&] {
    const scalar_t* w = weight.const_data_ptr<scalar_t>();
    scalar_t* dst = stacked.mutable_data_ptr<scalar_t>();
    for (int64_t grp = 0; grp < G; ++grp)
      for (int64_t r = 0; r < s; ++r)
        for (int64_t k = 0; k < K; ++k) {
          const int64_t num = r + pl - k * d;
          if (num % s != 0) continue;
          const int64_t j = num / s - e_min;
          for (int64_t c = 0; c < C_g; ++c)
            for (int64_t o = 0; o < O_g; ++o)
              dst[((grp * rows + r * C_g + c) * O_g + o) * J + j] = w[((grp * O_g + o) * C_g + c) * K + k];
        }
  });
  const Geometry t = convolution_of_grad_output(g, G * rows, J, 1, -e_min, Lq);
  const at::Tensor out = conv1d_forward_cpu(gy, stacked, std::nullopt, t);  // (N, G * s * C_g, Lq)
  // grad_input[n][grp * C_g + c][q * s + r] = out[n][grp * s * C_g + r * C_g + c][q], positions below L.
  at::Tensor grad_input = out.view({g.batch, G, s, C_g, Lq})
                              .permute({0, 1, 3, 4, 2})
                              .reshape({g.batch, g.in_channels, Lq * s})
                              .narrow(2, 0, L)
                              .contiguous();
  // The stacked kernel's zero weights meet every grad_output value, so an Inf or NaN there would leave
  // NaN at input positions no tap connects it to: such results are redone phase by phase. The check
  // is a pass over grad_input, small beside grad_output on these shapes (few input channels).
  if (!all_finite(grad_input)) return {};
  return grad_input;
}

at::Tensor grad_input_phases(const at::Tensor& gy, const at::Tensor& weight, const Geometry& g);
constexpr int64_t kPhaseMaxHalo = 1024;  // input positions past a forward tile that a tile may gather

// grad_input through the forward's kernels where the weight is finite. A weight with an Inf or NaN takes
// the exact loops; whether it has one is asked of the weight or, where that is larger, only of a result
// that came out non-finite.
at::Tensor grad_input_cpu(const at::Tensor& gy, const at::Tensor& weight, const Geometry& g) {
  if (gy.numel() == 0 || g.out_channels_per_group() == 0 || g.in_length == 0)
    return at::zeros({g.batch, g.in_channels, g.in_length}, gy.options());
  auto exact = [&] {
    at::Tensor grad_input = at::empty({g.batch, g.in_channels, g.in_length}, gy.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, gy.scalar_type(), "custom::conv1d_backward (CPU)", [&] {
      grad_input_rows<scalar_t>(gy.const_data_ptr<scalar_t>(), weight.const_data_ptr<scalar_t>(),
                                grad_input.mutable_data_ptr<scalar_t>(), g);
    });
    return grad_input;
  };
  // A dilated kernel much longer than the forward's tiles (a huge dilation) would have the forward
  // gather a halo of that length per tile: the exact loops visit only the products that exist.
  if ((g.kernel_size - 1) * g.dilation / g.stride > kPhaseMaxHalo) return exact();
  const bool ask_weight = weight.numel() <= g.batch * g.in_channels * g.in_length;
  if (ask_weight && !all_finite(weight)) return exact();
  at::Tensor grad_input = grad_input_phases(gy, weight, g);
  if (!ask_weight && !all_finite(grad_input) && !all_finite(weight))
    return exact();
  return grad_input;
}

// grad_input[n, c, i] = sum over the group's o and taps k of W[o, c, k] * gy[n, o, l], i = l*s + k*d - pl:
// the transposed convolution, computed as forward convolutions of grad_output by the forward's own
// kernels (register-blocked, vectorised, bfloat16 dot products), one per phase r = i mod s of the input.
// Input position i = r + q*s receives tap k from output position l = q + e_k, e_k = (r + pl - k*d) / s,
// for the taps whose (r + pl - k*d) is a multiple of s. Those taps are k0, k0 + s', k0 + 2s', ... with
// s' = s / gcd(s, d), and e_k falls by d' = d / gcd(s, d) from one to the next: a stride-1 convolution
// of grad_output with dilation d', the phase's taps in reverse order and the channel roles of the weight
// swapped (C_g outputs from O_g inputs per group), reading gy[q + j*d' - pad'] with pad' = (J-1)*d' - e_k0
// (negative where the forward's padding exceeded its kernel's span: the forward kernels read zeros there).
// With stride 1 that is the whole grad_input; otherwise each phase is written to its strided positions.
at::Tensor grad_input_phases(const at::Tensor& gy, const at::Tensor& weight, const Geometry& g) {
  const int64_t s = g.stride, d = g.dilation, K = g.kernel_size, L = g.in_length;
  const int64_t O_g = g.out_channels_per_group();
  if (at::Tensor stacked = grad_input_stacked_phases(gy, weight, g); stacked.defined()) return stacked;
  const int64_t s_taps = s / std::gcd(s, d), d_phase = d / std::gcd(s, d);
  // The phases some tap reaches, each with its first tap: tap k reaches phase (k*d - pl) mod s, and the
  // first s_taps taps give every such phase once (so at most K convolutions, however large the stride;
  // the other phases stay zero).
  std::vector<std::pair<int64_t, int64_t>> reached;  // (phase r < L, first tap k0)
  for (int64_t k = 0; k < std::min(K, s_taps); ++k) {
    const int64_t r = ((k * d - g.pad_left) % s + s) % s;
    if (r < L) reached.emplace_back(r, k);
  }
  at::Tensor grad_input;
  if (s > 1) {
    const bool every_phase = static_cast<int64_t>(reached.size()) == std::min(s, L);
    grad_input = every_phase ? at::empty({g.batch, g.in_channels, L}, gy.options())
                             : at::zeros({g.batch, g.in_channels, L}, gy.options());
  }
  for (const auto& [r, k0] : reached) {
    const int64_t length = (L - r + s - 1) / s;  // positions r, r + s, ... below L
    const int64_t taps = (K - 1 - k0) / s_taps + 1;
    const int64_t e0 = (r + g.pad_left - k0 * d) / s;  // exact
    std::vector<int64_t> tap_index(taps);
    for (int64_t j = 0; j < taps; ++j) tap_index[j] = k0 + (taps - 1 - j) * s_taps;
    // The phase's convolution: from grad_output's channels to the input's, stride 1.
    const Geometry t =
        convolution_of_grad_output(g, g.in_channels, taps, d_phase, (taps - 1) * d_phase - e0, length);
#ifdef CUSTOM_OPS_X86_DISPATCH
    if (forward_path(gy.scalar_type(), t) == ForwardPath::kBf16Dot) {
      const int64_t C_g = g.in_channels_per_group(), P = (O_g + 1) / 2, c_tiles = (C_g + 15) / 16;
      std::unique_ptr<uint32_t[]> packed(new uint32_t[g.in_channels * P * taps]);  // every word written
      const uint16_t* w = reinterpret_cast<const uint16_t*>(weight.const_data_ptr<c10::BFloat16>());
      at::parallel_for(0, g.groups * c_tiles, 1, [&](int64_t begin, int64_t end) {
        for (int64_t tile = begin; tile < end; ++tile) {
          const int64_t grp = tile / c_tiles, c_begin = (tile % c_tiles) * 16;
          swap_pack_pairs_bf16(packed.get() + grp * C_g * P * taps, w + grp * O_g * C_g * K, O_g, C_g, K,
                               tap_index, c_begin, std::min(C_g, c_begin + 16));
        }
      });
      at::Tensor phase = at::empty({g.batch, g.in_channels, length}, gy.options());
      conv1d_bf16_dot_packed(gy, packed.get(), nullptr, phase, t);
      if (s == 1) return phase;
      grad_input.slice(2, r, L, s).copy_(phase);
      continue;
    }
#endif
    const at::Tensor w_phase = swapped_weight(weight, g, tap_index);
    at::Tensor phase = conv1d_forward_cpu(gy, w_phase, std::nullopt, t);
    if (s == 1) return phase;
    grad_input.slice(2, r, L, s).copy_(phase);
  }
  return grad_input;
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

// grad_weight as a GEMM per group on the forward's micro-kernel: rows = input channels c, columns =
// output channels o (vectors along o), terms = output positions p. Term p broadcasts x[c][p*s + k*d - pl]
// (the input's gathered phase rows, as in the forward, or the input in place at stride 1) and reads
// grad_output transposed, gy_t[p][o], packed once per chunk of positions and shared by every channel and
// tap of the work item. Per chunk one micro-kernel pass a tap fills the item's scratch [k][c][o].
//
// Work items: (group, block of output channels, block of input channels, split of the reduction); the
// splits are fixed by the shape alone, so the sums (float32 over kGwChunksPerSum chunks, then float64
// across them and across the splits, in order) are the same for every thread count.
constexpr int64_t kGwChunk = 128;         // positions a chunk: its packed gy_t columns stay in L1 a micro-column
constexpr int64_t kGwChunksPerSum = 8;    // chunks summed in float32 before the float64 total
constexpr int64_t kGwOutBlock = 128;      // output channels (columns) a work item
// (channel, tap) rows a work item, at most (at K > 400, one channel's K rows): its float32 scratch
// (400 x 128 x 4 bytes) and float64 totals stay in L2 beside the chunk's operands. Every channel block
// transposes the chunk's grad_output again: fewer, larger blocks transpose it less often.
constexpr int64_t kGwRows = 400;
constexpr int64_t kGwMinItems = 64;       // work items wanted, by splitting the reduction
constexpr int64_t kGwMaxPartials = 1 << 24;  // float64 partial sums held for the splits, at most
// Smaller shapes (depthwise, single-channel front ends) keep the row loops below: the micro-kernel's
// vectors along the output channels and its rows of channels would be mostly empty.
constexpr int64_t kGwMinRows = 4;
constexpr int64_t kGwMinColumns = 16;
// A dilated kernel much longer than a chunk (a huge dilation) would have every chunk gather that halo;
// the row loops visit only the products that exist.
constexpr int64_t kGwMaxHalo = 4 * kGwChunk;

#ifdef CUSTOM_OPS_X86_DISPATCH
// One chunk of grad_weight in bfloat16 with AVX-512-BF16: a term is a pair of consecutive positions
// (vdpbf16ps adds both products to a float32 lane), so grad_output's rows transpose as 32-bit pairs and
// each (channel, tap) row of the input is its window's bfloat16 bits read as pairs. A chunk of odd
// length gets a zero partner for its last position on both sides.
struct PairChunk {
  uint32_t* gy_pairs;      // [kGwChunk / 2][ldo]: pair p of output channel o at p * ldo + o
  uint16_t* gathered;      // [channel][phase row][row_length] bfloat16 bits, zero outside the input
  uint32_t* x_pairs;       // [channel][tap][kGwChunk / 2]
  const int64_t* offsets;  // pair p -> p * ldo
  float* scratch;          // [c][k][o]
};

CUSTOM_OPS_TARGET_AVX512BF16 void grad_weight_chunk_bf16(const PairChunk& b, const c10::BFloat16* gy_block,
                                                         int64_t L_out, int64_t no, int64_t ldo, int64_t count,
                                                         const c10::BFloat16* x_block, int64_t L, int64_t nc,
                                                         int64_t K, int64_t base, int64_t stride,
                                                         const std::vector<int64_t>& phases, int64_t row_length,
                                                         const std::vector<int64_t>& tap_offset, int64_t halo,
                                                         bool first) {
  constexpr int64_t kRowPairs = kGwChunk / 2;
  const int64_t pairs = (count + 1) / 2, full = count / 2;
  transpose_avx512<c10::BFloat16, true, float>(reinterpret_cast<float*>(b.gy_pairs), ldo, gy_block, L_out, no, full);
  if (count % 2 == 1) {
    for (int64_t o = 0; o < no; ++o) b.gy_pairs[full * ldo + o] = gy_block[o * L_out + count - 1].x;
  }
  const int64_t rows_per_channel = static_cast<int64_t>(phases.size()), elements = count + halo + 1;
  // Stride 2 (downsampling) inside the input: both phase rows from one word permute of 32 elements.
  const bool split_pairs = stride == 2 && rows_per_channel == 2 && base >= 0 && base + 2 * elements <= L;
  alignas(64) static constexpr uint16_t kEvenOdd[32] = {0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20,
                                                         22, 24, 26, 28, 30, 1,  3,  5,  7,  9,  11,
                                                         13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  const __m512i even_odd = _mm512_load_si512(kEvenOdd);
  // The input's rows of a chunk are a few hundred bytes each, L apart: the next channel's are fetched while
  // this one's are gathered (in sequence, each row's loads would wait for memory in turn). The positions
  // the gather reads inside the row, [fetch_first, fetch_last), bounded as gather_row bounds them (no
  // pointer past the row is formed, no product past int64).
  int64_t fetch_first = 0, fetch_last = 0;
  if (base < L && elements > 0) {
    fetch_first = std::max<int64_t>(base, 0);
    const int64_t steps_inside = (L - 1 - base) / stride;  // base + stride * j < L for j <= steps_inside
    fetch_last = elements - 1 <= steps_inside ? base + stride * (elements - 1) + 1 : L;
  }
  for (int64_t c = 0; c < nc; ++c) {
    if (c + 1 < nc && fetch_last > fetch_first) {
      const auto* row = reinterpret_cast<const char*>(x_block + (c + 1) * L);
      const uintptr_t from = reinterpret_cast<uintptr_t>(row + 2 * fetch_first) & ~uintptr_t{63};
      const uintptr_t to = reinterpret_cast<uintptr_t>(row + 2 * fetch_last);
      for (uintptr_t line = from; line < to; line += 64) _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
    }
    c10::BFloat16* rows = reinterpret_cast<c10::BFloat16*>(b.gathered) + c * rows_per_channel * row_length;
    if (split_pairs) {
      const c10::BFloat16* x_row = x_block + c * L + base;
      for (int64_t m = 0; m < elements; m += 16) {
        const int64_t n = std::min<int64_t>(16, elements - m);
        const __mmask32 load = n == 16 ? ~__mmask32{0} : ((__mmask32{1} << (2 * n)) - 1);
        const __m512i v = _mm512_permutexvar_epi16(even_odd, _mm512_maskz_loadu_epi16(load, x_row + 2 * m));
        const __mmask16 store = static_cast<__mmask16>((1u << n) - 1);
        _mm256_mask_storeu_epi16(rows + m, store, _mm512_castsi512_si256(v));
        _mm256_mask_storeu_epi16(rows + row_length + m, store, _mm512_extracti64x4_epi64(v, 1));
      }
    } else {
      for (int64_t r = 0; r < rows_per_channel; ++r)
        cpu::gather_row(rows + r * row_length, elements, x_block + c * L, 1, base + phases[r], stride, L);
    }
    // A chunk of odd length copies each tap's pairs, to zero the partner of its last position (the input
    // there may be an Inf or a NaN, and zero times that is NaN); the others read the rows in place.
    if (count % 2 == 1) {
      for (int64_t k = 0; k < K; ++k) {
        uint32_t* dst = b.x_pairs + (c * K + k) * kRowPairs;
        std::memcpy(dst, rows + tap_offset[k], pairs * sizeof(uint32_t));
        dst[pairs - 1] &= 0xFFFFu;  // the high half: the position past the chunk
      }
    }
  }
  const cpu::PairView view{b.gy_pairs, b.offsets, pairs};
  const auto* gathered = reinterpret_cast<const uint16_t*>(b.gathered);
  for (int64_t k = 0; k < K; ++k) {
    if (count % 2 == 1) {
      cpu::accumulate_bf16(b.scratch + k * ldo, K * ldo, nullptr, first, nc, no, view,
                           reinterpret_cast<const uint16_t*>(b.x_pairs + k * kRowPairs), 2 * K * kRowPairs, nullptr, 0);
    } else {
      cpu::accumulate_bf16(b.scratch + k * ldo, K * ldo, nullptr, first, nc, no, view, gathered + tap_offset[k],
                           rows_per_channel * row_length, nullptr, 0);
    }
  }
}
#endif

template <typename scalar_t>
void grad_weight_gemm(const at::Tensor& gy, const at::Tensor& x, at::Tensor& grad_weight, const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kSameType = std::is_same_v<acc_t, scalar_t>;
  const cpu::Kernels<acc_t, scalar_t> kern = cpu::pick_kernels<acc_t, scalar_t>();
  const TransposeFn<acc_t, scalar_t> transpose = pick_transpose<acc_t, scalar_t>();
  const int64_t G = g.groups, C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();
  const int64_t K = g.kernel_size, L = g.in_length, L_out = g.out_length, s = g.stride, d = g.dilation;
  const int64_t N = g.batch, CgK = C_g * K;

  // Phase decomposition as in the forward: tap k reads phase row (k*d) mod s, shifted by (k*d) / s.
  std::vector<int64_t> phases;
  for (int64_t k = 0; k < K; ++k) phases.push_back((k * d) % s);
  std::sort(phases.begin(), phases.end());
  phases.erase(std::unique(phases.begin(), phases.end()), phases.end());
  const int64_t rows_per_channel = static_cast<int64_t>(phases.size());
  const int64_t halo = ((K - 1) * d) / s;
  const int64_t row_length = (kGwChunk + halo + 15) / 16 * 16;
  std::vector<int64_t> tap_offset(K);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t row = std::lower_bound(phases.begin(), phases.end(), (k * d) % s) - phases.begin();
    tap_offset[k] = row * row_length + (k * d) / s;
  }

  // bfloat16 on AVX-512-BF16 CPUs: pairs of positions through vdpbf16ps, the input gathered as bfloat16
  // bits into rows of row_length16 (a chunk, its halo and an odd chunk's zero partner).
  bool pairs = false;
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) pairs = cpu::cpu_isa() == cpu::Isa::kAvx512Bf16;
  const int64_t row_length16 = (kGwChunk + halo + 1 + 31) / 32 * 32;
  std::vector<int64_t> tap_offset16(K);
  for (int64_t k = 0; k < K; ++k) tap_offset16[k] = tap_offset[k] / row_length * row_length16 + (k * d) / s;

  // As few channel blocks as kGwRows allows, balanced: block b holds channels [b C_g / n, (b + 1) C_g / n)
  // (80 channels at K = 5: one block, not 38 + 38 + 4; 256 at K = 26: 16 blocks of 16, not 17 x 15 + 1).
  // channel_block is the largest block, what the buffers hold.
  const int64_t block_limit = std::clamp<int64_t>(kGwRows / K, 1, C_g);
  const int64_t channel_blocks = (C_g + block_limit - 1) / block_limit;
  const int64_t channel_block = (C_g + channel_blocks - 1) / channel_blocks;
  const int64_t out_blocks = (O_g + kGwOutBlock - 1) / kGwOutBlock;
  // Base item b (of G x out_blocks x channel_blocks, channel blocks fastest): its group, output channels
  // [o0, o0 + no) of all O, and input channels [c0, c0 + nc) of its group.
  struct Block {
    int64_t grp, o0, no, c0, nc;
  };
  auto item_block = [&](int64_t b) {
    const int64_t cb = b % channel_blocks, ob = (b / channel_blocks) % out_blocks, grp = b / (channel_blocks * out_blocks);
    const int64_t c0 = cb * C_g / channel_blocks;
    return Block{grp, grp * O_g + ob * kGwOutBlock, std::min(kGwOutBlock, O_g - ob * kGwOutBlock), c0,
                 (cb + 1) * C_g / channel_blocks - c0};
  };
  const int64_t sum_length = kGwChunk * kGwChunksPerSum;
  const int64_t row_units = (L_out + sum_length - 1) / sum_length, units = N * row_units;
  const int64_t base_items = G * out_blocks * channel_blocks;
  // The scratch and each item's float64 totals are laid out [c][k][o] (rows r = c * K + k, whole vectors
  // of o), so an item's gradient, gw[o][c][k] = gw[o][r], is their transpose.
  const int64_t ldo = std::min(kGwOutBlock, (O_g + 15) / 16 * 16);  // gy_t row: columns rounded to vectors
  const int64_t item_totals = K * channel_block * ldo;
  const int64_t splits = std::clamp<int64_t>(
      std::min((kGwMinItems + base_items - 1) / base_items, kGwMaxPartials / (base_items * item_totals)), 1,
      std::max<int64_t>(units, 1));
  // Split reductions keep every split's totals until all are done; unsplit ones (most shapes) keep one
  // item's totals per thread and write the item's gradient when it ends (no large buffer to fault in).
  std::unique_ptr<double[]> partial(splits > 1 ? new double[base_items * splits * item_totals] : nullptr);
  scalar_t* const gw = grad_weight.mutable_data_ptr<scalar_t>();
  const TransposeFn<scalar_t, acc_t> transpose_out = pick_transpose<scalar_t, acc_t>();
  // The gradient of base item `item` (group, output block, channel block) from its sums, [c][k][o] with
  // rows ldo apart (float32 sums of the scratch, or float64 totals).
  auto write_item = [&](const Block& blk, const auto* totals) {
    scalar_t* out = gw + blk.o0 * CgK + blk.c0 * K;
    if constexpr (std::is_same_v<std::decay_t<decltype(*totals)>, acc_t>)
      transpose_out(out, CgK, totals, ldo, blk.nc * K, blk.no);
    else
      transpose_portable<scalar_t, double>(out, CgK, totals, ldo, blk.nc * K, blk.no);
  };

  const scalar_t* gy_data = gy.const_data_ptr<scalar_t>();  // contiguous (N, O, L_out)
  const scalar_t* x_data = x.const_data_ptr<scalar_t>();    // contiguous (N, C, L)

  at::parallel_for(0, base_items * splits, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> gy_t_storage(kGwChunk * ldo + 64 / sizeof(acc_t), acc_t(0));
    acc_t* const gy_t = cpu::align64(gy_t_storage.data());
    std::vector<acc_t> gathered_storage(channel_block * rows_per_channel * row_length + 64 / sizeof(acc_t));
    acc_t* const gathered = cpu::align64(gathered_storage.data());
    std::vector<acc_t> scratch_storage(K * channel_block * ldo + 64 / sizeof(acc_t));
    acc_t* const scratch = cpu::align64(scratch_storage.data());
    std::vector<int64_t> offsets(kGwChunk);
    for (int64_t p = 0; p < kGwChunk; ++p) offsets[p] = p * ldo;
    std::vector<double> own_totals(splits > 1 ? 0 : item_totals);
#ifdef CUSTOM_OPS_X86_DISPATCH
    std::vector<uint16_t> gathered16_storage(pairs ? channel_block * rows_per_channel * row_length16 + 32 : 0);
    std::vector<uint32_t> x_pairs_storage(pairs ? channel_block * K * (kGwChunk / 2) + 16 : 0);
    const PairChunk pair_chunk{reinterpret_cast<uint32_t*>(gy_t), cpu::align64(gathered16_storage.data()),
                               cpu::align64(x_pairs_storage.data()), offsets.data(), reinterpret_cast<float*>(scratch)};
#endif
    for (int64_t item = begin; item < end; ++item) {
      const int64_t split = item % splits;
      const Block blk = item_block(item / splits);
      const int64_t o0 = blk.o0, no = blk.no, nc = blk.nc;
      const int64_t c_in = blk.grp * C_g + blk.c0;  // the block's first channel of the input
      // gy_t's columns past `no` are read by the micro-kernel's whole vectors (their sums are dropped).
      for (int64_t p = 0; p < kGwChunk; ++p) std::fill(gy_t + p * ldo + no, gy_t + (p + 1) * ldo, acc_t(0));
      double* const total = splits > 1 ? partial.get() + item * item_totals : own_totals.data();
      const int64_t unit_begin = split * units / splits, unit_end = (split + 1) * units / splits;
      // An unsplit item of one unit (short sequences: the whole reduction in one float32 sum) writes its
      // gradient from the scratch; the float64 totals would cost as much as the sums.
      // (An empty batch has no units: the totals stay as their vector was made, zeros.)
      const bool from_scratch = splits == 1 && unit_end - unit_begin == 1;
      for (int64_t u = unit_begin; u < unit_end; ++u) {
        const int64_t n = u / row_units, sum_begin = (u % row_units) * sum_length;
        const int64_t sum_end = std::min(L_out, sum_begin + sum_length);
        for (int64_t l0 = sum_begin; l0 < sum_end; l0 += kGwChunk) {
          const int64_t count = std::min(kGwChunk, sum_end - l0);
          const scalar_t* gy_block = gy_data + (n * g.out_channels + o0) * L_out + l0;
          const int64_t base = l0 * s - g.pad_left;
          const scalar_t* x_block = x_data + (n * g.in_channels + c_in) * L;
#ifdef CUSTOM_OPS_X86_DISPATCH
          if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
            if (pairs) {
              grad_weight_chunk_bf16(pair_chunk, gy_block, L_out, no, ldo, count, x_block, L, nc, K, base, s, phases,
                                     row_length16, tap_offset16, halo, l0 == sum_begin);
              continue;
            }
          }
#endif
          // gy_t[p][o] = gy[n][o0 + o][l0 + p]
          transpose(gy_t, ldo, gy_block, L_out, no, count);
          const int64_t span = (count - 1) * s + (K - 1) * d + 1;  // input positions the chunk reads
          const acc_t* rows;
          int64_t row_stride;
          if (kSameType && s == 1 && base >= 0 && base + span <= L) {
            rows = reinterpret_cast<const acc_t*>(x_block) + base;
            row_stride = L;
          } else {
            kern.gather({gathered, nc, rows_per_channel, row_length, count + halo, x_block, L, 1, base, s, L,
                         phases.data()});
            rows = gathered;
            row_stride = rows_per_channel * row_length;
          }
          const cpu::BlockView<acc_t> view{gy_t, offsets.data(), count};
          for (int64_t k = 0; k < K; ++k) {
            const int64_t tap = rows == gathered ? tap_offset[k] : k * d;
            const cpu::BlockIo<acc_t> io{scratch + k * ldo, K * ldo, nullptr, l0 == sum_begin, nullptr, 0};
            kern.accumulate(io, nc, no, view, rows + tap, row_stride);
          }
        }
        if (from_scratch) break;
        // The first unit's sums start the totals (0 + x is x: no zero fill of the item's totals first).
        if (u == unit_begin) {
          for (int64_t r = 0; r < nc * K; ++r)
            for (int64_t o = 0; o < no; ++o) total[r * ldo + o] = static_cast<double>(scratch[r * ldo + o]);
        } else {
          for (int64_t r = 0; r < nc * K; ++r)
            for (int64_t o = 0; o < no; ++o) total[r * ldo + o] += static_cast<double>(scratch[r * ldo + o]);
        }
      }
      if (from_scratch) {
        write_item(blk, static_cast<const acc_t*>(scratch));
      } else if (splits == 1) {
        write_item(blk, static_cast<const double*>(total));
      }
    }
  });
  if (splits > 1) {
    // Each element's splits added in split order in float64, a row of output channels at a time (whole
    // rows: the loops vectorise), rounded once to acc_t as a cast of the float64 sum would (c10's 16-bit
    // types convert from float32), then written through the same transpose as an unsplit item.
    at::parallel_for(0, base_items, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> sums_storage(item_totals + 64 / sizeof(acc_t));
      acc_t* const sums = cpu::align64(sums_storage.data());
      std::vector<double> row(ldo);
      for (int64_t item = begin; item < end; ++item) {
        const double* totals = partial.get() + item * splits * item_totals;
        const Block blk = item_block(item);
        for (int64_t r = 0; r < blk.nc * K; ++r) {
          const double* first = totals + r * ldo;
          std::copy(first, first + blk.no, row.begin());
          for (int64_t sp = 1; sp < splits; ++sp) {
            const double* part = first + sp * item_totals;
            for (int64_t o = 0; o < blk.no; ++o) row[o] += part[o];
          }
          for (int64_t o = 0; o < blk.no; ++o) sums[r * ldo + o] = static_cast<acc_t>(row[o]);
        }
        write_item(blk, static_cast<const acc_t*>(sums));
      }
    });
  }
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
  if (mask[0]) grad_input = grad_input_cpu(gy, w, g);
  if (mask[1]) grad_weight = at::empty(weight.sizes(), weight.options());
  if (mask[2]) grad_bias = at::empty({g.out_channels}, weight.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d_backward (CPU)", [&] {
    // An empty batch gives zero weight and bias gradients (the loops add nothing).
    if (mask[1]) {
      if (g.in_channels_per_group() * g.kernel_size >= kGwMinRows && g.out_channels_per_group() >= kGwMinColumns &&
          (g.kernel_size - 1) * g.dilation / g.stride <= kGwMaxHalo)
        grad_weight_gemm<scalar_t>(gy, x, grad_weight, g);
      else
        grad_weight_rows<scalar_t>(gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                   grad_weight.mutable_data_ptr<scalar_t>(), g);
    }
    if (mask[2]) grad_bias_rows<scalar_t>(gy.const_data_ptr<scalar_t>(), grad_bias.mutable_data_ptr<scalar_t>(), g);
  });
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace custom_ops::conv1d
