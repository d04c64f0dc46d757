// CPU kernel of custom::conv1d: a direct convolution over output tiles, multi-threaded with
// at::parallel_for, with register-blocked micro-kernels vectorised along the output positions and
// picked at run time for the instruction set of the CPU (AVX-512-BF16, AVX-512, AVX2+FMA, portable;
// CUSTOM_OPS_CPU_ISA lowers the choice). ISA-specific code carries function-level target attributes,
// so the library needs no -m flags and runs on any x86-64 CPU.
//
// Work unit: one (batch, group, chunk of up to 8 x 32 output channels, 256 output positions) tile; the
// tiles are split over the threads, each thread with its own buffers. The reduction over input channels
// goes in blocks of <= 128 (channel, tap) terms. For each block the tile's input is gathered once (all
// of the tile's output channels share it), converted to the accumulation type and zero-padded, into
// 64-byte aligned rows the micro-kernel reads with unit stride and no bounds checks; float32/float64
// tiles at stride 1 that lie inside the input read it in place instead. Stride is handled by phase
// decomposition: with stride s, output l of tap k reads input (l0 + l) * s - pad + k * dilation =
// base + r_k + (l + q_k) * s, where k * dilation = q_k * s + r_k. So one row per used phase r
// (row_r[m] = x[base + r + m * s]) serves every tap of that phase, shifted by q_k: each input element
// is gathered once per channel block, not once per tap (stride 1 is the one-phase case: a window of
// positions + halo).
//
// float32 / float64 (and float16, bfloat16 without AVX-512-BF16, computed in float32): the weights are
// read in place, (O, C_g, K), and the micro-kernel keeps R output channels x V vectors of positions in
// registers across a reduction block (AVX-512: 6 x 4 zmm = 64 positions; AVX2 and portable: 4 x 2):
// each input vector loaded feeds R FMAs, each weight broadcast feeds V. The first block starts from
// the bias, the last stores whole float32 columns straight to the output. Positions go outermost
// within a tile, so the slice of input a column reads stays in L1 while the output channels pass.
//
// bfloat16 with AVX-512-BF16 (conv1d_cpu_bf16_dot): vdpbf16ps over pairs of input channels, float32
// accumulators, rounded to bfloat16 in registers; bfloat16 pointwise through at::addmm / baddbmm
// (exactly a GEMM, measured faster; see conv1d_forward_cpu).

#include "ops/conv1d/conv1d_kernels.h"
#include "ops/conv1d/cpu/conv1d_cpu_forward.h"
#include "ops/conv1d/cpu/cpu_microkernel.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/baddbmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/matmul.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

// The vector helpers are always inlined into code built for one instruction set, so the vector-ABI
// note GCC gives for their baseline definitions does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace custom_ops::conv1d {
namespace {
using namespace cpu;

constexpr int64_t kOutBlock = 32;        // output channels per tile
constexpr int64_t kLengthBlock = 256;    // output positions per tile (a multiple of every micro-tile width)
constexpr int64_t kReductionBlock = 128; // (channel, tap) pairs per reduction block (at most, >= 1 channel)
constexpr int64_t kGatherBudget = 1 << 17;  // elements of gathered input per reduction block (at most)
constexpr int64_t kMaxOutBlocksPerTile = 8;  // output blocks sharing one gather of the input
constexpr int64_t kMaxTileHalo = 4 * kLengthBlock;  // input positions past a tile gathered with it, at most

// How a forward call is cut into tiles (batch x groups x position blocks x chunks of output blocks that
// share one gather of the input) and how a tile's input rows are gathered (one row per input phase that
// some tap reads), for the float32/float64 path and the bfloat16 dot-product path alike.
struct TilePlan {
  int64_t out_blocks = 0, length_blocks = 0, blocks_per_tile = 0, out_chunks = 0, tiles = 0;
  std::vector<int64_t> phases;      // the input phases (position mod stride) some tap reads
  std::vector<int64_t> tap_offset;  // each tap's offset into a channel's gathered rows
  int64_t rows_per_channel = 0, halo = 0, row_length = 0;
  bool per_tap = false;  // one row per tap (phases[k]: tap k's offset), not per phase

  // Tile index -> (batch item, group, first position and count, first output channel and count).
  struct Tile {
    int64_t n, group, l0, positions, o0, channels;
  };
  Tile tile(const Geometry& g, int64_t index) const {
    const int64_t O_g = g.out_channels_per_group();
    const int64_t lb = index % length_blocks;
    index /= length_blocks;
    const int64_t oc = index % out_chunks;
    index /= out_chunks;
    Tile t;
    t.group = index % g.groups;
    t.n = index / g.groups;
    t.l0 = lb * kLengthBlock;
    t.positions = std::min(kLengthBlock, g.out_length - t.l0);
    t.o0 = t.group * O_g + oc * blocks_per_tile * kOutBlock;  // first output channel of the tile
    t.channels = std::min(blocks_per_tile * kOutBlock, O_g - oc * blocks_per_tile * kOutBlock);
    return t;
  }
};

TilePlan plan_tiles(const Geometry& g) {
  const int64_t O_g = g.out_channels_per_group(), K = g.kernel_size, L_out = g.out_length;
  const int64_t stride = g.stride, dilation = g.dilation;
  TilePlan plan;
  plan.out_blocks = (O_g + kOutBlock - 1) / kOutBlock;
  plan.length_blocks = (L_out + kLengthBlock - 1) / kLengthBlock;

  // Output blocks per tile: they share each gather of the input. As many as leave >= 4 tiles a thread
  // (and at most kMaxOutBlocksPerTile, for the accumulators to stay in L2).
  const int64_t base_tiles = g.batch * g.groups * plan.length_blocks;
  const int64_t min_tiles = 4 * static_cast<int64_t>(at::get_num_threads());
  int64_t& blocks_per_tile = plan.blocks_per_tile;
  blocks_per_tile = std::min(plan.out_blocks, kMaxOutBlocksPerTile);
  while (blocks_per_tile > 1 && base_tiles * ((plan.out_blocks + blocks_per_tile - 1) / blocks_per_tile) < min_tiles)
    blocks_per_tile = (blocks_per_tile + 1) / 2;
  plan.out_chunks = (plan.out_blocks + blocks_per_tile - 1) / blocks_per_tile;
  plan.tiles = base_tiles * plan.out_chunks;

  // A dilated kernel much longer than a tile (a huge dilation, taps far apart): one row per tap, each
  // only the tile's positions (phases[k] = k * dilation as the row's offset), instead of rows of the
  // tile plus a halo as long as the kernel, gathered for every tile.
  if (((K - 1) * dilation) / stride > kMaxTileHalo) {
    plan.per_tap = true;
    plan.rows_per_channel = K;
    plan.halo = 0;
    plan.row_length = kLengthBlock;
    for (int64_t k = 0; k < K; ++k) {
      plan.phases.push_back(k * dilation);
      plan.tap_offset.push_back(k * plan.row_length);
    }
    return plan;
  }
  // Phase decomposition: tap k reads phase row r_k = (k * dilation) % stride, shifted by
  // q_k = (k * dilation) / stride. Only the phases some tap uses get a row.
  std::vector<int64_t> phase_row(stride, -1);
  std::vector<int64_t>& phases = plan.phases;
  plan.tap_offset.assign(K, 0);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t r = (k * dilation) % stride;
    if (phase_row[r] < 0) {
      phase_row[r] = static_cast<int64_t>(phases.size());
      phases.push_back(r);
    }
  }
  plan.rows_per_channel = static_cast<int64_t>(phases.size());
  // Rows 64 bytes apart (whole cache lines) in 64-byte aligned buffers: taps with no shift load aligned.
  plan.halo = ((K - 1) * dilation) / stride;
  plan.row_length = (kLengthBlock + plan.halo + 15) / 16 * 16;
  for (int64_t k = 0; k < K; ++k)
    plan.tap_offset[k] = phase_row[(k * dilation) % stride] * plan.row_length + (k * dilation) / stride;
  return plan;
}

template <typename scalar_t>
void conv1d_cpu_kernel(const at::Tensor& input, const at::Tensor& weight, const scalar_t* bias, at::Tensor& out,
                       const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kSameType = std::is_same_v<acc_t, scalar_t>;
  const Kernels<acc_t, scalar_t> kern = pick_kernels<acc_t, scalar_t>();
  const int64_t C_g = g.in_channels_per_group();
  const int64_t O_g = g.out_channels_per_group();
  const int64_t K = g.kernel_size, L = g.in_length, L_out = g.out_length;
  const int64_t stride = g.stride, dilation = g.dilation, pad = g.pad_left;
  const TilePlan plan = plan_tiles(g);
  const int64_t out_blocks = plan.out_blocks, length_blocks = plan.length_blocks;
  const int64_t blocks_per_tile = plan.blocks_per_tile, out_chunks = plan.out_chunks, tiles = plan.tiles;
  const int64_t rows_per_channel = plan.rows_per_channel, halo = plan.halo, row_length = plan.row_length;
  const std::vector<int64_t>& phases = plan.phases;
  const std::vector<int64_t>& tap_offset = plan.tap_offset;
  // bfloat16 outputs of this float32 path rounded 16 at a time where the CPU has AVX-512-BF16.
  void (*round_bf16)(uint16_t*, const float*, int64_t) = nullptr;
#ifdef CUSTOM_OPS_X86_DISPATCH
  if (cpu_isa() == Isa::kAvx512Bf16) round_bf16 = round_to_bf16_avx512;
#endif
  const int64_t channel_block = std::clamp<int64_t>(
      std::min(kReductionBlock / K, kGatherBudget / (rows_per_channel * row_length)), 1, std::max<int64_t>(C_g, 1));

  const scalar_t* x = input.const_data_ptr<scalar_t>();
  scalar_t* y = out.mutable_data_ptr<scalar_t>();  // contiguous (N, O, L_out)
  const int64_t xs_n = input.stride(0), xs_c = input.stride(1), xs_l = input.stride(2);
  // Weights in their contiguous (O, C_g, K) layout, in the accumulation type (16-bit types converted
  // once here); the micro-kernel broadcasts from R rows of them. The bias likewise.
  const int64_t CK = C_g * K;
  at::Tensor w_acc;
  std::vector<acc_t> bias_acc;
  if constexpr (!kSameType) {
    w_acc = weight.to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
    if (bias) bias_acc.assign(bias, bias + g.out_channels);
  }
  const acc_t* w = kSameType ? reinterpret_cast<const acc_t*>(weight.const_data_ptr<scalar_t>())
                             : w_acc.template const_data_ptr<acc_t>();
  const acc_t* b_acc = kSameType ? reinterpret_cast<const acc_t*>(bias) : (bias ? bias_acc.data() : nullptr);
  // Stride-1 tiles whose window lies inside the input read it in place.
  const bool direct_ok = kSameType && stride == 1 && xs_l == 1 && !plan.per_tap;

  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> gathered_storage(channel_block * rows_per_channel * row_length + 64 / sizeof(acc_t));
    acc_t* const gathered = align64(gathered_storage.data());
    std::vector<acc_t> acc_storage(blocks_per_tile * kOutBlock * kLengthBlock + 64 / sizeof(acc_t));
    acc_t* const acc = align64(acc_storage.data());
    std::vector<int64_t> offsets(channel_block * K);
    for (int64_t tile = begin; tile < end; ++tile) {
      const TilePlan::Tile t = plan.tile(g, tile);
      const int64_t n = t.n, grp = t.group, l0 = t.l0, nl = t.positions, o0 = t.o0, no = t.channels;
      scalar_t* y_tile = y + (n * g.out_channels + o0) * L_out + l0;
      // Positions the micro-tiles read: nl rounded up to whole 64-position columns, plus the halo.
      const int64_t count = std::min(row_length, (nl + 63) / 64 * 64 + halo);
      const int64_t base = l0 * stride - pad;
      const bool direct = direct_ok && base >= 0 && base + count <= L;
      int64_t full_end = 0;  // positions [0, full_end) of every row went straight to the output
      if (C_g == 0) {  // no input channels: the bias alone (zero without one)
        for (int64_t oi = 0; oi < no; ++oi)
          std::fill_n(acc + oi * kLengthBlock, nl, b_acc ? b_acc[o0 + oi] : acc_t(0));
      }
      for (int64_t c0 = 0; c0 < C_g; c0 += channel_block) {
        const int64_t nc = std::min(channel_block, C_g - c0);
        const scalar_t* x_block = x + n * xs_n + (grp * C_g + c0) * xs_c;
        const acc_t* data = gathered;
        int64_t channel_stride = rows_per_channel * row_length;
        if (direct) {
          data = reinterpret_cast<const acc_t*>(x_block) + base;
          channel_stride = xs_c;
        } else {
          // Positions past nl are computed and discarded, never stored.
          kern.gather({gathered, nc, rows_per_channel, row_length, count, x_block, xs_c, xs_l, base, stride, L,
                       phases.data()});
        }
        for (int64_t ci = 0; ci < nc; ++ci)
          for (int64_t k = 0; k < K; ++k) offsets[ci * K + k] = ci * channel_stride + tap_offset[k];
        const BlockView<acc_t> view{data, offsets.data(), nc * K};
        const bool first = c0 == 0, last = c0 + nc >= C_g;
        // All the tile's output channels per column (the weights stream from L2).
        acc_t* y_direct = nullptr;
        if constexpr (kSameType) {
          if (last) y_direct = reinterpret_cast<acc_t*>(y_tile);
        }
        const BlockIo<acc_t> io{acc, kLengthBlock, b_acc ? b_acc + o0 : nullptr, first, y_direct, L_out};
        full_end = kern.accumulate(io, no, nl, view, w + o0 * CK + c0 * K, CK);
      }
      for (int64_t oi = 0; oi < no; ++oi) {
        scalar_t* y_row = y_tile + oi * L_out;
        const acc_t* a = acc + oi * kLengthBlock;
        if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
          if (round_bf16) {
            round_bf16(reinterpret_cast<uint16_t*>(y_row) + full_end, a + full_end, nl - full_end);
            continue;
          }
        }
        for (int64_t l = full_end; l < nl; ++l) y_row[l] = static_cast<scalar_t>(a[l]);
      }
    }
  });
}

#ifdef CUSTOM_OPS_X86_DISPATCH

// Pairs [0, pairs) of one reduction block: dst row (p, r)[m] = lo | hi << 16 for m < count (rows
// row_length apart) with lo, hi the bfloat16 bits of channels 2p and 2p + 1 at base + phases[r] + m *
// stride (zero outside the input, and hi zero for a missing last channel). lo_tmp, hi_tmp: count
// elements each.
CUSTOM_OPS_TARGET_AVX512BF16 void gather_pairs_bf16(uint32_t* dst, int64_t pairs, int64_t channels,
                                                    int64_t rows_per_channel, int64_t row_length, int64_t count,
                                                    const c10::BFloat16* x, int64_t xs_c, int64_t xs_l, int64_t base,
                                                    int64_t stride, int64_t length, const int64_t* phases,
                                                    uint16_t* lo_tmp, uint16_t* hi_tmp) {
  static_assert(sizeof(c10::BFloat16) == sizeof(uint16_t), "bfloat16 is 16 bits");
  for (int64_t p = 0; p < pairs; ++p) {
    const bool has_hi = 2 * p + 1 < channels;
    for (int64_t r = 0; r < rows_per_channel; ++r) {
      const int64_t first = base + phases[r];
      uint32_t* out = dst + (p * rows_per_channel + r) * row_length;
      if (has_hi && stride == 1 && xs_l == 1 && first >= 0 && first + count <= length) {
        // Inside the input, unit stride: interleave the two rows in one pass.
        const uint16_t* lo = reinterpret_cast<const uint16_t*>(x + 2 * p * xs_c + first);
        const uint16_t* hi = reinterpret_cast<const uint16_t*>(x + (2 * p + 1) * xs_c + first);
        for (int64_t m = 0; m < count; ++m)
          out[m] = static_cast<uint32_t>(lo[m]) | (static_cast<uint32_t>(hi[m]) << 16);
        continue;
      }
      if (stride == 2 && xs_l == 1 && first >= 0 && first + 2 * count - 1 <= length) {
        // Inside the input, stride 2: 32 consecutive elements of each row hold 16 of this phase (the
        // even ones); one two-source word permute interleaves them. Masked loads at the row's end.
        const uint16_t* lo = reinterpret_cast<const uint16_t*>(x + 2 * p * xs_c + first);
        const uint16_t* hi = has_hi ? reinterpret_cast<const uint16_t*>(x + (2 * p + 1) * xs_c + first) : nullptr;
        alignas(64) static constexpr uint16_t kEvenPairs[32] = {0,  32, 2,  34, 4,  36, 6,  38, 8,  40, 10,
                                                                42, 12, 44, 14, 46, 16, 48, 18, 50, 20, 52,
                                                                22, 54, 24, 56, 26, 58, 28, 60, 30, 62};
        const __m512i index = _mm512_load_si512(kEvenPairs);
        for (int64_t m = 0; m < count; m += 16) {
          const int64_t in_row = std::min<int64_t>(32, 2 * (count - m) - 1);  // elements this step may read
          const __mmask32 mask = in_row >= 32 ? ~__mmask32{0} : ((__mmask32{1} << in_row) - 1);
          const __m512i a = _mm512_maskz_loadu_epi16(mask, lo + 2 * m);
          const __m512i b = hi ? _mm512_maskz_loadu_epi16(mask, hi + 2 * m) : _mm512_setzero_si512();
          const __m512i v = _mm512_permutex2var_epi16(a, index, b);
          const int64_t n_out = std::min<int64_t>(16, count - m);
          _mm512_mask_storeu_epi32(out + m, static_cast<__mmask16>((1u << n_out) - 1), v);
        }
        continue;
      }
      gather_row(reinterpret_cast<c10::BFloat16*>(lo_tmp), count, x + 2 * p * xs_c, xs_l, first, stride, length);
      if (has_hi)
        gather_row(reinterpret_cast<c10::BFloat16*>(hi_tmp), count, x + (2 * p + 1) * xs_c, xs_l, first, stride,
                   length);
      else
        std::fill_n(hi_tmp, count, uint16_t{0});
      for (int64_t m = 0; m < count; ++m)
        out[m] = static_cast<uint32_t>(lo_tmp[m]) | (static_cast<uint32_t>(hi_tmp[m]) << 16);
    }
  }
}

// packed[o][p][k] = w[o][2p][k] | w[o][2p + 1][k] << 16 (the last pair of an odd C_g: hi 0) for
// o in [o_begin, o_end). Within a row this is a fixed permutation of every 2K words (word 2k of a pair
// block from word k, word 2k + 1 from word K + k): with 2K <= 32, one word permute moves
// floor(32 / 2K) whole blocks at a time.
CUSTOM_OPS_TARGET_AVX512BF16 void pack_pairs_bf16(uint32_t* packed, const uint16_t* w, int64_t o_begin, int64_t o_end,
                                                  int64_t C_g, int64_t K) {
  const int64_t P_g = (C_g + 1) / 2, PK = P_g * K, block = 2 * K, full_pairs = C_g / 2;
  const int64_t blocks_per_step = block <= 32 ? 32 / block : 0;
  alignas(64) uint16_t index[32] = {};
  for (int64_t j = 0; j < blocks_per_step * block; ++j) {
    const int64_t b = j / block, r = j % block;
    index[j] = static_cast<uint16_t>(b * block + (r % 2 == 0 ? r / 2 : K + r / 2));
  }
  const __m512i perm = _mm512_load_si512(index);
  for (int64_t o = o_begin; o < o_end; ++o) {
    const uint16_t* wo = w + o * C_g * K;
    uint32_t* dst = packed + o * PK;
    int64_t p = 0;
    if (blocks_per_step > 0) {
      const int64_t step_words = blocks_per_step * block;
      const __mmask32 mask = step_words >= 32 ? ~__mmask32{0} : ((__mmask32{1} << step_words) - 1);
      for (; p + blocks_per_step <= full_pairs; p += blocks_per_step) {
        const __m512i v = _mm512_permutexvar_epi16(perm, _mm512_maskz_loadu_epi16(mask, wo + p * block));
        _mm512_mask_storeu_epi16(reinterpret_cast<uint16_t*>(dst + p * K), mask, v);
      }
    }
    for (; p < full_pairs; ++p) {
      const uint16_t* lo = wo + 2 * p * K;
      for (int64_t k = 0; k < K; ++k)
        dst[p * K + k] = static_cast<uint32_t>(lo[k]) | (static_cast<uint32_t>(lo[K + k]) << 16);
    }
    if (C_g % 2 == 1)
      for (int64_t k = 0; k < K; ++k) dst[(P_g - 1) * K + k] = wo[(C_g - 1) * K + k];
  }
}

}  // namespace

void conv1d_bf16_dot_packed(const at::Tensor& input, const uint32_t* packed, const c10::BFloat16* bias,
                            at::Tensor& out, const Geometry& g) {
  const int64_t C_g = g.in_channels_per_group();
  const int64_t O_g = g.out_channels_per_group();
  const int64_t P_g = (C_g + 1) / 2;  // channel pairs per group
  const int64_t K = g.kernel_size, L = g.in_length, L_out = g.out_length;
  const int64_t stride = g.stride, dilation = g.dilation, pad = g.pad_left;
  const TilePlan plan = plan_tiles(g);
  const int64_t out_blocks = plan.out_blocks, length_blocks = plan.length_blocks;
  const int64_t blocks_per_tile = plan.blocks_per_tile, out_chunks = plan.out_chunks, tiles = plan.tiles;
  const int64_t rows_per_channel = plan.rows_per_channel, halo = plan.halo, row_length = plan.row_length;
  const std::vector<int64_t>& phases = plan.phases;
  const std::vector<int64_t>& tap_offset = plan.tap_offset;
  const int64_t pair_block = std::clamp<int64_t>(
      std::min(kReductionBlock / (2 * K), kGatherBudget / (rows_per_channel * row_length)), 1, P_g);

  const c10::BFloat16* x = input.const_data_ptr<c10::BFloat16>();
  c10::BFloat16* y = out.mutable_data_ptr<c10::BFloat16>();
  const int64_t xs_n = input.stride(0), xs_c = input.stride(1), xs_l = input.stride(2);

  const int64_t PK = P_g * K;  // packed: [o][pair][k] of (w[o][2p][k], w[o][2p + 1][k]) bits
  std::vector<float> bias_f;
  if (bias) bias_f.assign(bias, bias + g.out_channels);

  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint32_t> gathered_storage(pair_block * rows_per_channel * row_length + 16);
    uint32_t* const gathered = align64(gathered_storage.data());
    std::vector<uint16_t> lo_tmp(row_length), hi_tmp(row_length);
    std::vector<float> acc_storage(blocks_per_tile * kOutBlock * kLengthBlock + 16);
    float* const acc = align64(acc_storage.data());
    std::vector<int64_t> offsets(pair_block * K);
    for (int64_t tile = begin; tile < end; ++tile) {
      const TilePlan::Tile t = plan.tile(g, tile);
      const int64_t n = t.n, grp = t.group, l0 = t.l0, nl = t.positions, o0 = t.o0, no = t.channels;
      const int64_t count = std::min(row_length, (nl + 63) / 64 * 64 + halo);
      const int64_t base = l0 * stride - pad;
      c10::BFloat16* y_tile = y + (n * g.out_channels + o0) * L_out + l0;
      int64_t full_end = 0;  // positions [0, full_end) of every row went straight to the output
      for (int64_t p0 = 0; p0 < P_g; p0 += pair_block) {
        const int64_t np = std::min(pair_block, P_g - p0);
        const int64_t c_first = 2 * p0;
        gather_pairs_bf16(gathered, np, C_g - c_first, rows_per_channel, row_length, count,
                          x + n * xs_n + (grp * C_g + c_first) * xs_c, xs_c, xs_l, base, stride, L, phases.data(),
                          lo_tmp.data(), hi_tmp.data());
        for (int64_t pi = 0; pi < np; ++pi)
          for (int64_t k = 0; k < K; ++k) offsets[pi * K + k] = pi * rows_per_channel * row_length + tap_offset[k];
        const PairView view{gathered, offsets.data(), np * K};
        // All the tile's output channels per column (6-row micro-tiles; the weights stream from L2).
        const bool last = p0 + np >= P_g;
        full_end = accumulate_bf16(acc, kLengthBlock, bias ? bias_f.data() + o0 : nullptr, p0 == 0, no, nl, view,
                                   reinterpret_cast<const uint16_t*>(packed + o0 * PK + p0 * K), 2 * PK,
                                   last ? reinterpret_cast<uint16_t*>(y_tile) : nullptr, L_out);
      }
      for (int64_t oi = 0; oi < no; ++oi) {
        c10::BFloat16* y_row = y_tile + oi * L_out;
        const float* a = acc + oi * kLengthBlock;
        for (int64_t l = full_end; l < nl; ++l) y_row[l] = static_cast<c10::BFloat16>(a[l]);
      }
    }
  });
}
namespace {

void conv1d_cpu_bf16_dot(const at::Tensor& input, const at::Tensor& weight, const c10::BFloat16* bias,
                         at::Tensor& out, const Geometry& g) {
  const int64_t C_g = g.in_channels_per_group(), K = g.kernel_size, PK = (C_g + 1) / 2 * K;
  const uint16_t* w = reinterpret_cast<const uint16_t*>(weight.const_data_ptr<c10::BFloat16>());  // (O, C_g, K)
  // Not value-initialised: the pack writes every word, and its threads fault the pages in (a zero fill
  // first was a serial pass over a weight as large as a short sequence's activations).
  std::unique_ptr<uint32_t[]> packed(new uint32_t[g.out_channels * PK]);
  at::parallel_for(0, g.out_channels, 16, [&](int64_t begin, int64_t end) {
    pack_pairs_bf16(packed.get(), w, begin, end, C_g, K);
  });
  conv1d_bf16_dot_packed(input, packed.get(), bias, out, g);
}
#endif  // CUSTOM_OPS_X86_DISPATCH

}  // namespace

ForwardPath forward_path(at::ScalarType dtype, const Geometry& g) {
#ifdef CUSTOM_OPS_X86_DISPATCH
  if (dtype == at::kBFloat16 && cpu_isa() == Isa::kAvx512Bf16) {
    // bfloat16 pointwise (K = 1, stride 1, no padding, one group) is exactly a GEMM per batch element:
    // out[n] = W (O x C) x[n] (C x L) + bias. aten's GEMM (at::addmm / at::baddbmm, float32
    // accumulation) measured faster than our dot-product kernel with >= 512 input channels (1.1-1.5x)
    // and slower or equal with <= 256 (bench/NOTES.md, c5 and c11), so it is used there only, on CPUs
    // with AVX-512-BF16 where that was measured. float32 pointwise stays ours (faster everywhere measured).
    if (g.kernel_size == 1 && g.stride == 1 && g.pad_left == 0 && g.pad_right == 0 && g.groups == 1 &&
        g.in_channels >= 512)
      return ForwardPath::kGemm;
    // bfloat16 with channels to pair: the AVX-512-BF16 dot-product kernel.
    if (g.in_channels_per_group() >= 2) return ForwardPath::kBf16Dot;
  }
#endif
  (void)dtype;
  (void)g;
  return ForwardPath::kAccumulate;
}

at::Tensor conv1d_forward_cpu(const at::Tensor& input, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias, const Geometry& g) {
  at::Tensor out = at::empty({g.batch, g.out_channels, g.out_length}, input.options());
  if (out.numel() == 0) return out;
  const at::Tensor w = weight.contiguous();
  const at::Tensor b = (bias.has_value() && bias->defined()) ? bias->contiguous() : at::Tensor();
#ifdef CUSTOM_OPS_X86_DISPATCH
  const ForwardPath path = forward_path(input.scalar_type(), g);
  if (path == ForwardPath::kGemm) {
    const at::Tensor w2 = w.view({g.out_channels, g.in_channels});
    at::Tensor result;
    if (g.batch == 1) {
      result = b.defined() ? at::addmm(b.view({g.out_channels, 1}), w2, input[0]) : at::matmul(w2, input[0]);
      result = result.unsqueeze(0);
    } else {
      result = b.defined() ? at::baddbmm(b.view({1, g.out_channels, 1}), w2.expand({g.batch, g.out_channels, g.in_channels}), input)
                           : at::matmul(w2, input);
    }
    return result.contiguous();
  }
  if (path == ForwardPath::kBf16Dot) {
    conv1d_cpu_bf16_dot(input, w, b.defined() ? b.const_data_ptr<c10::BFloat16>() : nullptr, out, g);
    return out;
  }
#endif
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d (CPU)", [&] {
    conv1d_cpu_kernel<scalar_t>(input, w, b.defined() ? b.const_data_ptr<scalar_t>() : nullptr, out, g);
  });
  return out;
}

}  // namespace custom_ops::conv1d
