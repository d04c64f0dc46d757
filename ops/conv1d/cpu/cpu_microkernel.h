#pragma once
// The CPU kernels' shared building blocks: the register-blocked micro-kernel (R rows x V vectors of
// accumulators, a reduction over terms whose inputs are rows read with unit stride, each row's term
// broadcast from a second operand), the zero-padding gather of input rows by phase, and the run-time
// choice of instruction set. The forward uses them with rows = output channels, columns = output
// positions and terms = (input channel, tap); grad_weight with rows = input channels, columns = output
// channels and terms = positions (conv1d_backward_cpu.cpp).

#include <ATen/OpMathType.h>
#include <c10/util/BFloat16.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>

// The vector helpers are always inlined into code built for one instruction set, so the vector-ABI
// note GCC gives for their baseline definitions does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace custom_ops::conv1d::cpu {

constexpr int kMicroRows = 4;            // rows per micro-tile (AVX2 and portable; AVX-512: 6)

#define CUSTOM_OPS_INLINE inline __attribute__((always_inline))

// A vector of VB bytes (GCC/Clang vector extension; the instruction set is that of the function it is
// inlined into).
template <typename acc_t, int VB>
struct Vec {
  typedef acc_t type __attribute__((vector_size(VB)));
  static constexpr int kLanes = VB / sizeof(acc_t);
  static CUSTOM_OPS_INLINE type load(const acc_t* p) {
    type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static CUSTOM_OPS_INLINE void store(acc_t* p, type v) { std::memcpy(p, &v, sizeof(v)); }
};

template <typename T>
T* align64(T* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

// Input of one reduction block as the micro-kernel sees it: term idx = c * K + k of the reduction
// (channel c, tap k) reads position l at data + offsets[idx] + l.
template <typename acc_t>
struct BlockView {
  const acc_t* data;
  const int64_t* offsets;
  int64_t count;  // (channel, tap) terms of the block
};

// Where a block's micro-tiles start from and go to. The scratch accumulators hold the tile between
// reduction blocks. first: start from the bias (null: zero) instead of the scratch; out (when not
// null, on the last block): columns entirely inside [0, width) are stored there instead of to the
// scratch (the output itself, when it has the accumulation type).
template <typename T>
struct BlockIo {
  T* scratch;
  int64_t scratch_stride;
  const T* bias;
  bool first;
  T* out;
  int64_t out_stride;
};

// dst[i][0 .. V * lanes) = (kFirst ? bias[i] : src[i][...]) + sum_idx w[i * w_stride + idx] * x_idx[l0 + ...]
template <typename acc_t, int VB, int R, int V, bool kFirst>
CUSTOM_OPS_INLINE void micro_tile(const acc_t* src, int64_t src_stride, const acc_t* bias, acc_t* dst,
                                  int64_t dst_stride, int64_t l0, const BlockView<acc_t>& in, const acc_t* w,
                                  int64_t w_stride) {
  using Vt = Vec<acc_t, VB>;
  typename Vt::type a[R][V];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < V; ++j) {
      if constexpr (kFirst) {
        a[i][j] = typename Vt::type{} + (bias ? bias[i] : acc_t(0));
      } else {
        a[i][j] = Vt::load(src + i * src_stride + j * Vt::kLanes);
      }
    }
  const acc_t* wr[R];
  for (int i = 0; i < R; ++i) wr[i] = w + i * w_stride;
  const acc_t* xb = in.data + l0;
  for (int64_t idx = 0; idx < in.count; ++idx) {
    const acc_t* x = xb + in.offsets[idx];
    typename Vt::type xv[V];
    for (int j = 0; j < V; ++j) xv[j] = Vt::load(x + j * Vt::kLanes);
    for (int i = 0; i < R; ++i) {
      const acc_t wi = wr[i][idx];
      for (int j = 0; j < V; ++j) a[i][j] += wi * xv[j];
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < V; ++j) Vt::store(dst + i * dst_stride + j * Vt::kLanes, a[i][j]);
}

// Every output channel of the tile over positions [l0, l0 + V * lanes), kR rows a micro-tile.
template <typename acc_t, int VB, int kR, int V, bool kFirst>
CUSTOM_OPS_INLINE void micro_column(const BlockIo<acc_t>& io, bool full, int64_t rows, int64_t l0,
                                    const BlockView<acc_t>& in, const acc_t* w, int64_t ws) {
  const acc_t* src = io.scratch + l0;
  const int64_t ss = io.scratch_stride;
  acc_t* dst = full ? io.out + l0 : io.scratch + l0;
  const int64_t ds = full ? io.out_stride : io.scratch_stride;
  const acc_t* bias = io.bias;
#define CUSTOM_OPS_TILE(R)                                                                                        \
  micro_tile<acc_t, VB, R, V, kFirst>(src + i * ss, ss, bias ? bias + i : nullptr, dst + i * ds, ds, l0, in, w + i * ws, \
                                      ws)
  int64_t i = 0;
  for (; i + kR <= rows; i += kR) CUSTOM_OPS_TILE(kR);
  switch (rows - i) {
    case 5: if constexpr (kR > 5) CUSTOM_OPS_TILE(5); break;
    case 4: if constexpr (kR > 4) CUSTOM_OPS_TILE(4); break;
    case 3: if constexpr (kR > 3) CUSTOM_OPS_TILE(3); break;
    case 2: if constexpr (kR > 2) CUSTOM_OPS_TILE(2); break;
    case 1: CUSTOM_OPS_TILE(1); break;
    default: break;
  }
#undef CUSTOM_OPS_TILE
}

template <typename acc_t, int VB, int kR, int V>
CUSTOM_OPS_INLINE void column(const BlockIo<acc_t>& io, int64_t rows, int64_t width, int64_t l,
                              const BlockView<acc_t>& in, const acc_t* w, int64_t ws, int64_t& full_end) {
  const bool full = io.out != nullptr && l + V * Vec<acc_t, VB>::kLanes <= width;
  if (io.out != nullptr && !full && full_end == width) full_end = l;
  if (io.first)
    micro_column<acc_t, VB, kR, V, true>(io, full, rows, l, in, w, ws);
  else
    micro_column<acc_t, VB, kR, V, false>(io, full, rows, l, in, w, ws);
}

// Positions [0, width) rounded up to whole vectors (never past kLengthBlock): 4-vector columns while
// more than 3 vectors remain (where kMaxV allows), then 2, then 1; with one or two rows (a single output
// channel, grad_input of a one-channel front end), 8-vector columns first, so that the FMAs have 8 or 16
// independent accumulators instead of 4 or 8 (with 4 they wait on each other's latency). Returns where the
// columns stored to io.out end (io.out null: 0); the rest is in the scratch.
template <typename acc_t, int VB, int kR, int kMaxV>
CUSTOM_OPS_INLINE int64_t accumulate_block_impl(const BlockIo<acc_t>& io, int64_t rows, int64_t width,
                                                const BlockView<acc_t>& in, const acc_t* w, int64_t ws) {
  constexpr int64_t kL = Vec<acc_t, VB>::kLanes;
  int64_t full_end = io.out != nullptr ? width : 0;
  int64_t l = 0;
  if constexpr (kMaxV >= 4) {
    if (rows <= 2) {
      for (; width - l > 7 * kL; l += 8 * kL) column<acc_t, VB, 2, 8>(io, rows, width, l, in, w, ws, full_end);
    }
    for (; width - l > 3 * kL; l += 4 * kL) column<acc_t, VB, kR, 4>(io, rows, width, l, in, w, ws, full_end);
  }
  for (; width - l > kL; l += 2 * kL) column<acc_t, VB, kR, 2>(io, rows, width, l, in, w, ws, full_end);
  for (; l < width; l += kL) column<acc_t, VB, kR, 1>(io, rows, width, l, in, w, ws, full_end);
  return full_end;
}

// dst[j] = x[(first + j * step) * x_stride] for 0 <= j < count, zero where the position is outside
// [0, length): the zero padding. The in-bounds run is a tight conversion loop without branches.
template <typename acc_t, typename scalar_t>
CUSTOM_OPS_INLINE void gather_row(acc_t* dst, int64_t count, const scalar_t* x, int64_t x_stride, int64_t first,
                                  int64_t step, int64_t length) {
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
    } else if (hop == 2) {
      for (int64_t j = 0; j < n; ++j) out[j] = static_cast<acc_t>(src[2 * j]);
    } else {
      for (int64_t j = 0; j < n; ++j) out[j] = static_cast<acc_t>(src[j * hop]);
    }
  }
  std::fill(dst + j1, dst + count, acc_t(0));
}

// The input of one reduction block: for each of `channels` channels (x_stride_c apart), one row of
// row_length per used phase p: row[m] = x[base + phases[p] + m * stride].
template <typename acc_t, typename scalar_t>
struct GatherArgs {
  acc_t* dst;
  int64_t channels, rows_per_channel, row_length, count;  // rows row_length apart, count elements gathered
  const scalar_t* x;  // the block's first channel
  int64_t x_stride_c, x_stride_l, base, stride, length;
  const int64_t* phases;
};

template <typename acc_t, typename scalar_t>
CUSTOM_OPS_INLINE void gather_block_impl(const GatherArgs<acc_t, scalar_t>& a) {
  for (int64_t ci = 0; ci < a.channels; ++ci) {
    const scalar_t* x_row = a.x + ci * a.x_stride_c;
    acc_t* dst = a.dst + ci * a.rows_per_channel * a.row_length;
    for (int64_t p = 0; p < a.rows_per_channel; ++p)
      gather_row(dst + p * a.row_length, a.count, x_row, a.x_stride_l, a.base + a.phases[p], a.stride, a.length);
  }
}

// ---------------------------------------------------------------------------------------------------
// Instruction sets, picked at run time. ISA-specific code is compiled with function-level target
// attributes, so the library itself needs no -m flags and runs on any x86-64 CPU.
// CUSTOM_OPS_CPU_ISA=avx512bf16|avx512|avx2|generic lowers the choice (for tests and comparisons), never raises it.
// ---------------------------------------------------------------------------------------------------
enum class Isa { kGeneric, kAvx2, kAvx512, kAvx512Bf16 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CUSTOM_OPS_X86_DISPATCH 1
#define CUSTOM_OPS_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define CUSTOM_OPS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

// The instruction set the kernels use: the best this CPU has, lowered by CUSTOM_OPS_CPU_ISA (read once).
Isa cpu_isa();

#define CUSTOM_OPS_ACCUMULATE_ARGS(T) \
  const BlockIo<T>&io, int64_t rows, int64_t width, const BlockView<T>&in, const T *w, int64_t ws
#define CUSTOM_OPS_ACCUMULATE_PASS io, rows, width, in, w, ws

template <typename acc_t>
int64_t accumulate_generic(CUSTOM_OPS_ACCUMULATE_ARGS(acc_t)) {
  return accumulate_block_impl<acc_t, 16, kMicroRows, 2>(CUSTOM_OPS_ACCUMULATE_PASS);
}
template <typename acc_t, typename scalar_t>
void gather_generic(const GatherArgs<acc_t, scalar_t>& a) {
  gather_block_impl(a);
}
#ifdef CUSTOM_OPS_X86_DISPATCH
template <typename acc_t>
CUSTOM_OPS_TARGET_AVX2 int64_t accumulate_avx2(CUSTOM_OPS_ACCUMULATE_ARGS(acc_t)) {
  return accumulate_block_impl<acc_t, 32, kMicroRows, 2>(CUSTOM_OPS_ACCUMULATE_PASS);
}
template <typename acc_t>
CUSTOM_OPS_TARGET_AVX512 int64_t accumulate_avx512(CUSTOM_OPS_ACCUMULATE_ARGS(acc_t)) {
  return accumulate_block_impl<acc_t, 64, 6, 4>(CUSTOM_OPS_ACCUMULATE_PASS);
}
template <typename acc_t, typename scalar_t>
CUSTOM_OPS_TARGET_AVX2 void gather_avx2(const GatherArgs<acc_t, scalar_t>& a) {
  gather_block_impl(a);
}
template <typename acc_t, typename scalar_t>
CUSTOM_OPS_TARGET_AVX512 void gather_avx512(const GatherArgs<acc_t, scalar_t>& a) {
  gather_block_impl(a);
}
#endif

#ifdef CUSTOM_OPS_X86_DISPATCH
// dst[l] = bfloat16(src[l]), round to nearest even (vcvtneps2bf16), for 0 <= l < n.
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16"))) void round_to_bf16_avx512(uint16_t* dst,
                                                                                                 const float* src,
                                                                                                 int64_t n) {
  int64_t l = 0;
  for (; l + 16 <= n; l += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + l), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + l)));
  if (l < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - l)) - 1);
    _mm256_mask_storeu_epi16(dst + l, mask, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + l)));
  }
}
#endif

template <typename acc_t, typename scalar_t>
struct Kernels {
  int64_t (*accumulate)(CUSTOM_OPS_ACCUMULATE_ARGS(acc_t));
  void (*gather)(const GatherArgs<acc_t, scalar_t>&);
};

template <typename acc_t, typename scalar_t>
Kernels<acc_t, scalar_t> pick_kernels() {
#ifdef CUSTOM_OPS_X86_DISPATCH
  switch (cpu_isa()) {
    case Isa::kAvx512Bf16:
    case Isa::kAvx512: return {accumulate_avx512<acc_t>, gather_avx512<acc_t, scalar_t>};
    case Isa::kAvx2: return {accumulate_avx2<acc_t>, gather_avx2<acc_t, scalar_t>};
    default: break;
  }
#endif
  return {accumulate_generic<acc_t>, gather_generic<acc_t, scalar_t>};
}

#ifdef CUSTOM_OPS_X86_DISPATCH
// ---------------------------------------------------------------------------------------------------
// bfloat16 with AVX-512-BF16: vdpbf16ps multiplies pairs of bfloat16 and adds both products to a float32
// lane (products exact, float32 accumulation). A term is a pair of reduction elements: in the forward two
// input channels of the same tap (the gather interleaves channels (2p, 2p + 1) into 32-bit elements, the
// weights are packed as [o][channel pair][tap] pairs, broadcast as 32 bits); in grad_weight two
// consecutive positions. The same R x V micro-tile as above, with the vector operand's pairs at
// data + offsets[term] + column and row i's broadcast pair at w[i * ws + term].
// ---------------------------------------------------------------------------------------------------
#define CUSTOM_OPS_TARGET_AVX512BF16 \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma")))

// 6 rows x 4 zmm = 24 accumulators (+ 4 inputs + 1 broadcast of 32 registers): each input vector feeds
// 6 dot products, each weight broadcast 4.
constexpr int kMicroRowsBf16 = 6;

struct PairView {
  const uint32_t* data;  // term idx = pair * K + k reads position l at data + offsets[idx] + l
  const int64_t* offsets;
  int64_t count;
};

// The broadcast operand `w`: R rows of 16-bit elements, w_stride elements apart; term idx of a row is the
// 32-bit pair at its elements 2 idx and 2 idx + 1, read at any even byte address (grad_weight reads the
// input's gathered rows in place at every tap's offset).
CUSTOM_OPS_INLINE uint32_t pair_at(const uint16_t* row, int64_t idx) {
  uint32_t word;
  std::memcpy(&word, row + 2 * idx, sizeof word);
  return word;
}

template <int R, int V, bool kFirst>
CUSTOM_OPS_TARGET_AVX512BF16 CUSTOM_OPS_INLINE void micro_tile_bf16(float* acc, int64_t acc_stride, const float* bias,
                                                                    int64_t l0, const PairView& in,
                                                                    const uint16_t* w, int64_t w_stride,
                                                                    uint16_t* out, int64_t out_stride) {
  __m512 a[R][V];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < V; ++j) {
      if constexpr (kFirst) {
        a[i][j] = _mm512_set1_ps(bias ? bias[i] : 0.f);
      } else {
        a[i][j] = _mm512_loadu_ps(acc + i * acc_stride + l0 + j * 16);
      }
    }
  const uint16_t* wr[R];
  for (int i = 0; i < R; ++i) wr[i] = w + i * w_stride;
  const uint32_t* xb = in.data + l0;
  for (int64_t idx = 0; idx < in.count; ++idx) {
    const uint32_t* x = xb + in.offsets[idx];
    __m512i xv[V];
    for (int j = 0; j < V; ++j) xv[j] = _mm512_loadu_si512(x + j * 16);
    for (int i = 0; i < R; ++i) {
      const __m512i wi = _mm512_set1_epi32(static_cast<int>(pair_at(wr[i], idx)));
      for (int j = 0; j < V; ++j) a[i][j] = _mm512_dpbf16_ps(a[i][j], (__m512bh)xv[j], (__m512bh)wi);
    }
  }
  if (out != nullptr) {  // the last block, a column inside the output: round to bfloat16 (RNE) and store
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < V; ++j)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i * out_stride + l0 + j * 16),
                            (__m256i)_mm512_cvtneps_pbh(a[i][j]));
  } else {
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < V; ++j) _mm512_storeu_ps(acc + i * acc_stride + l0 + j * 16, a[i][j]);
  }
}

template <int V, bool kFirst>
CUSTOM_OPS_TARGET_AVX512BF16 CUSTOM_OPS_INLINE void micro_column_bf16(float* acc, int64_t acc_stride, const float* bias,
                                                                      int64_t rows, int64_t l0, const PairView& in,
                                                                      const uint16_t* w, int64_t ws, uint16_t* out,
                                                                      int64_t os) {
#define CUSTOM_OPS_BF16_TILE(R)                                                                                   \
  micro_tile_bf16<R, V, kFirst>(acc + i * acc_stride, acc_stride, bias ? bias + i : nullptr, l0, in, w + i * ws, ws, \
                                out ? out + i * os : nullptr, os)
  int64_t i = 0;
  for (; i + kMicroRowsBf16 <= rows; i += kMicroRowsBf16) CUSTOM_OPS_BF16_TILE(kMicroRowsBf16);
  switch (rows - i) {
    case 5: CUSTOM_OPS_BF16_TILE(5); break;
    case 4: CUSTOM_OPS_BF16_TILE(4); break;
    case 3: CUSTOM_OPS_BF16_TILE(3); break;
    case 2: CUSTOM_OPS_BF16_TILE(2); break;
    case 1: CUSTOM_OPS_BF16_TILE(1); break;
    default: break;
  }
#undef CUSTOM_OPS_BF16_TILE
}

template <int V, bool kFirst>
CUSTOM_OPS_TARGET_AVX512BF16 CUSTOM_OPS_INLINE void column_bf16(float* acc, int64_t acc_stride, const float* bias,
                                                                int64_t rows, int64_t width, int64_t l,
                                                                const PairView& in, const uint16_t* w, int64_t ws,
                                                                uint16_t* out, int64_t os, int64_t& full_end) {
  const bool full = out != nullptr && l + V * 16 <= width;
  if (out != nullptr && !full && full_end == width) full_end = l;
  micro_column_bf16<V, kFirst>(acc, acc_stride, bias, rows, l, in, w, ws, full ? out : nullptr, os);
}

template <bool kFirst>
CUSTOM_OPS_TARGET_AVX512BF16 CUSTOM_OPS_INLINE int64_t accumulate_bf16_impl(float* acc, int64_t acc_stride,
                                                                            const float* bias, int64_t rows,
                                                                            int64_t width, const PairView& in,
                                                                            const uint16_t* w, int64_t ws,
                                                                            uint16_t* out, int64_t os) {
  int64_t full_end = out != nullptr ? width : 0;
  int64_t l = 0;
  for (; width - l > 48; l += 64) column_bf16<4, kFirst>(acc, acc_stride, bias, rows, width, l, in, w, ws, out, os, full_end);
  for (; width - l > 16; l += 32) column_bf16<2, kFirst>(acc, acc_stride, bias, rows, width, l, in, w, ws, out, os, full_end);
  for (; l < width; l += 16) column_bf16<1, kFirst>(acc, acc_stride, bias, rows, width, l, in, w, ws, out, os, full_end);
  return full_end;
}

// The tile's scratch accumulators += one reduction block (first: the bias, null for zero, instead of
// the scratch's contents). out (the last block): columns inside [0, width) go to the bfloat16 output
// (rows os apart) instead; returns where they end (out null: 0), the rest is in the scratch. w: the
// rows' pairs as 16-bit elements, ws elements apart (pair_at).
inline CUSTOM_OPS_TARGET_AVX512BF16 int64_t accumulate_bf16(float* acc, int64_t acc_stride, const float* bias, bool first,
                                                     int64_t rows, int64_t width, const PairView& in,
                                                     const uint16_t* w, int64_t ws, uint16_t* out, int64_t os) {
  if (first) return accumulate_bf16_impl<true>(acc, acc_stride, bias, rows, width, in, w, ws, out, os);
  return accumulate_bf16_impl<false>(acc, acc_stride, bias, rows, width, in, w, ws, out, os);
}
#endif  // CUSTOM_OPS_X86_DISPATCH

}  // namespace custom_ops::conv1d::cpu
