#pragma once
// The Hopper (sm_90a) grad_weight kernel (plan and GEMM view: grad_weight_hopper_plan.h).
//
// A CTA has three warpgroups: a producer thread fills a ring of stages (per stage, one TMA box of the
// gradient, 128 output channels x 64 positions in 128-byte swizzled rows, and one of the input window,
// 64 channels x window_pitch positions, zero-filled outside the tensors: that is the padding and the
// end of the rows), and two consumers, which reduce the stages: per 8 (float32) or 16 (16-bit)
// positions and per tap, one wgmma whose A operand is the window read into registers at the tap's shift
// (as in the forward, hopper_kernel.cuh) and whose B operand is the gradient tile.
// - 16-bit (kAlternate): the consumers take alternate stages, each reducing its stage over all 128
//   output channels (m64n128: each stage's A gathered once); at the end consumer 1 hands its sums to
//   consumer 0, which adds them to its own and writes the float32 partials of its key and split.
// - TF32: both consumers reduce every stage, 64 of the output channels each (m64n64), and each writes
//   its partials (grad_weight_hopper_plan.h says why the precisions differ).
// grad_weight_reduce adds the partials up in split order.
// TF32: the window is rounded to TF32 on its way into the A fragments; the gradient tile, which wgmma
// reads from shared memory as TMA landed it, is rounded there (the tensor cores would otherwise drop the
// low 13 mantissa bits: every product about 2^-11 smaller in magnitude, a bias aten's TF32 does not have)
// by the producer warpgroup's otherwise idle warps 1-3, between the stage's full barrier and its passed
// barrier, which the consumers wait on: the pass over a stage overlaps the consumers' wgmmas of the
// stages before it.
// grad_bias, where asked for: the same pass warps of the CTAs of input-channel tile 0 and tap group 0 (one
// CTA per split and output-channel tile) sum their gradient tiles' rows (before rounding) over the
// CTA's tiles, and write float32 partials that grad_bias_reduce adds up in split order.

#include "ops/conv1d/cuda/hopper/grad_weight_hopper_plan.h"
#include "ops/conv1d/cuda/hopper/hopper_ptx.cuh"
#include "ops/conv1d/cuda/hopper/hopper_wgmma.cuh"
#include "ops/conv1d/cuda/hopper/hopper_window.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace custom_ops::conv1d::cuda::hopper {

// Filled once on the host from the geometry and the plan; passed by value (constant bank).
struct GradWeightParams {
  float* partials;       // [split][key][tap of the group][64 input channels][128 output channels]
  float* bias_partials;  // [split][group * o_tiles + o_tile][128 output channels], or nullptr: no grad_bias
  int64_t l_blocks, tiles, tiles_per_split;
  int keys, c_tiles, o_tiles, tap_groups, taps_per_group;
  int bias_keys;  // groups * o_tiles
  int stride, dilation, pad_left, kernel_size;
  int window_pitch, stages;
  uint32_t gradient_stage_bytes, input_stage_bytes, stage_bytes;
};

template <typename Element>
struct GradWeightTraits {
  using element_t = Element;
  static constexpr bool kFloat = std::is_same_v<Element, float>;
  static constexpr int kStepPositions = kFloat ? 8 : 16;  // wgmma K
  static constexpr int kSteps = GradWeightHopperPlan::kPositions / kStepPositions;
  static constexpr int kSwizzleRowPositions = 128 / int(sizeof(Element));  // positions in a 128-byte row
  static constexpr int kGradientBoxes = GradWeightHopperPlan::kPositions / kSwizzleRowPositions;
  static constexpr int kStepsPerBox = kSwizzleRowPositions / kStepPositions;
  static constexpr HopperPrecision kPrecision =
      kFloat ? HopperPrecision::kTF32 : (std::is_same_v<Element, __half> ? HopperPrecision::kFP16 : HopperPrecision::kBF16);
  static constexpr bool kAlternate = GradWeightHopperPlan::consumers_alternate(kPrecision);
  static constexpr int kMaxTaps = GradWeightHopperPlan::max_taps(kPrecision);
  static constexpr int kThreads = 384;
  // Producer warpgroup: the TMA thread and the pass warps. TF32's rounding pass spills below 56; 16-bit's
  // pass only sums (with a bias), one half-row at a time, in 40, which leaves the consumers 232: their 3
  // taps' 192 accumulators and 12 A registers, which 224 spill.
  static constexpr int kProducerRegisters = kFloat ? 56 : 40, kConsumerRegisters = kFloat ? 224 : 232;
  // setmaxnreg moves registers within the CTA's launch allocation only: 384 threads x 168 registers
  // (__launch_bounds__(384, 1); a raise beyond what the lowered warps freed blocks for ever).
  static_assert(128 * kProducerRegisters + 256 * kConsumerRegisters <= kThreads * 168, "the CTA's registers");
  // A consumer's output channels (wgmma N): all the CTA's with alternate stages, else half.
  static constexpr int kN = kAlternate ? GradWeightHopperPlan::kOutChannels : GradWeightHopperPlan::kOutChannels / 2;
  static constexpr int kAccumulators = kN / 2;  // floats a thread and tap
  static constexpr int kConsumers = 2;
  static constexpr int kStageReaderWarps = kAlternate ? 4 : 8;  // the warps that read a stage
  using Mma = std::conditional_t<kFloat, WgmmaTf32<kN>,
                                 std::conditional_t<std::is_same_v<Element, __half>, WgmmaFp16<kN>, WgmmaBf16<kN>>>;
};

// A K-major B operand in 128-byte swizzled rows (as TMA's SWIZZLE_128B lands them): 8-row groups 1024
// bytes apart; a K step inside the row advances the start address.
__device__ __forceinline__ uint64_t swizzled_descriptor(uint32_t shared_byte_address) {
  uint64_t descriptor = 0;
  descriptor |= uint64_t((shared_byte_address >> 4) & 0x3FFF);
  descriptor |= uint64_t(1) << 16;            // leading byte offset: unused for swizzled K-major
  descriptor |= uint64_t(1024 >> 4) << 32;    // stride byte offset: between 8-row groups
  descriptor |= uint64_t(1) << 62;            // layout: 128-byte swizzle
  return descriptor;
}

struct GradWeightTile {
  int64_t n, l0;
};
__device__ __forceinline__ GradWeightTile decode_gw_tile(const GradWeightParams& p, int64_t tile) {
  GradWeightTile t;
  t.n = tile / p.l_blocks;
  t.l0 = (tile - t.n * p.l_blocks) * GradWeightHopperPlan::kPositions;
  return t;
}

struct GradWeightKey {
  int group, c0, o0, tap0;
};
__device__ __forceinline__ GradWeightKey decode_gw_key(const GradWeightParams& p, int key) {
  GradWeightKey k;
  const int tap_group = key % p.tap_groups;
  key /= p.tap_groups;
  const int o_tile = key % p.o_tiles;
  key /= p.o_tiles;
  const int c_tile = key % p.c_tiles;
  k.group = key / p.c_tiles;
  k.c0 = c_tile * GradWeightHopperPlan::kChannels;
  k.o0 = o_tile * GradWeightHopperPlan::kOutChannels;
  k.tap0 = tap_group * p.taps_per_group;
  return k;
}

// The A fragment of one wgmma step and tap: rows = this warp's 16 input channels, columns = the step's
// positions; element (c, j) is the window at c's row, position j * stride + offset.
template <class Traits>
__device__ __forceinline__ void load_gw_a(uint32_t (&a)[4], const uint8_t* window, int pitch, int offset, int stride) {
  const int lane = threadIdx.x % 32, warp = (threadIdx.x / 32) % 4, g = lane / 4, t = lane % 4;
  if constexpr (Traits::kFloat) {
    const float* r = reinterpret_cast<const float*>(window) + (16 * warp + g) * pitch + t * stride + offset;
    a[0] = to_tf32(r[0]);
    a[1] = to_tf32(r[8 * pitch]);
    a[2] = to_tf32(r[4 * stride]);
    a[3] = to_tf32(r[8 * pitch + 4 * stride]);
  } else {
    const uint16_t* r = reinterpret_cast<const uint16_t*>(window) + (16 * warp + g) * pitch + 2 * t * stride + offset;
    const int s8 = 8 * stride, p8 = 8 * pitch;
    a[0] = uint32_t(r[0]) | (uint32_t(r[stride]) << 16);
    a[1] = uint32_t(r[p8]) | (uint32_t(r[p8 + stride]) << 16);
    a[2] = uint32_t(r[s8]) | (uint32_t(r[s8 + stride]) << 16);
    a[3] = uint32_t(r[p8 + s8]) | (uint32_t(r[p8 + s8 + stride]) << 16);
  }
}

// The pass over a stage's gradient tile by the producer warpgroup's warps 1-3 (kPassThreads): TF32
// rounds it in place (round to nearest, as aten's TF32 does) and fences the async proxy (wgmma reads it
// there); with `sums`, every thread also adds up its half-rows (64 physical bytes of a 128-byte row of
// each box: the swizzle moves 16-byte pieces only within a row) into half_sums, before rounding. Thread t
// has half-rows t, t + 96 and t + 192 (< 256 = 128 rows x 2 halves); its 16-byte pieces are read in an
// order rotated by the row, so that 8 threads of a quarter warp hit 8 different bank groups.
constexpr int kPassThreads = 96;  // warps 1-3 of the producer warpgroup
template <class Traits>
__device__ __forceinline__ void pass_over_tile(uint8_t* gradient, int thread, bool sums, float (&half_sums)[3]) {
  constexpr int kBoxBytes = GradWeightHopperPlan::kOutChannels * 128;
  // 16-bit: one half-row at a time (40 registers); unrolled, the loads of all three are live at once.
#pragma unroll(Traits::kFloat ? 3 : 1)
  for (int k = 0; k < 3; ++k) {
    const int half_row = thread + kPassThreads * k, row = half_row / 2;
    if (half_row >= 2 * GradWeightHopperPlan::kOutChannels) break;  // warp-uniform: warp 3 has two
    float sum = 0.f;
#pragma unroll
    for (int b = 0; b < Traits::kGradientBoxes; ++b)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint4* piece = reinterpret_cast<uint4*>(gradient + b * kBoxBytes + row * 128 + (half_row % 2) * 64 +
                                                ((j + row) % 4) * 16);
        uint4 v = *piece;
        if constexpr (Traits::kFloat) {
          float4 x = *reinterpret_cast<float4*>(&v);
          if (sums) sum += (x.x + x.y) + (x.z + x.w);
          x.x = __uint_as_float(to_tf32(x.x));
          x.y = __uint_as_float(to_tf32(x.y));
          x.z = __uint_as_float(to_tf32(x.z));
          x.w = __uint_as_float(to_tf32(x.w));
          *piece = *reinterpret_cast<uint4*>(&x);
        } else if (sums) {
          const typename Traits::element_t* e = reinterpret_cast<const typename Traits::element_t*>(&v);
          float part = 0.f;
#pragma unroll
          for (int q = 0; q < 8; ++q) part += static_cast<float>(e[q]);
          sum += part;
        }
      }
    if constexpr (Traits::kFloat) {
      half_sums[k] += sum;
    } else {  // the loop rolled: an index that is not a constant would put the array in local memory
#pragma unroll
      for (int i = 0; i < 3; ++i) half_sums[i] += i == k ? sum : 0.f;
    }
  }
  if constexpr (Traits::kFloat) async_proxy_fence();
}

// Both consumer warpgroups (threads 128-383), on named barrier 1 (0 is __syncthreads').
__device__ __forceinline__ void consumers_sync() { asm volatile("bar.sync 1, 256;\n" ::: "memory"); }

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, 1)
    grad_weight_hopper_kernel(const __grid_constant__ CUtensorMap gradient_map,
                              const __grid_constant__ CUtensorMap input_map, const GradWeightParams p) {
#if CUSTOM_OPS_HOPPER_DEVICE_CODE
  using Element = typename Traits::element_t;
  constexpr int kVector = 16 / int(sizeof(Element));
  extern __shared__ __align__(1024) uint8_t shared_bytes[];
  static_assert(GradWeightHopperPlan::kMaxStages == 8,
                "the barriers below: full[s] = s, empty[s] = 8 + s, passed[s] = 16 + s");
  uint64_t* bars = reinterpret_cast<uint64_t*>(shared_bytes);
  // Stages from the second kilobyte on, 1024-byte aligned whatever the dynamic allocation's alignment.
  const uint32_t base = shared_address(shared_bytes);
  uint8_t* stages = shared_bytes + (((base + 1024 + 1023) & ~1023u) - base);
  const int key_index = static_cast<int>(blockIdx.x % p.keys);
  const int64_t split = blockIdx.x / p.keys;
  const int64_t first_tile = split * p.tiles_per_split;
  const int64_t last_tile = first_tile + p.tiles_per_split < p.tiles ? first_tile + p.tiles_per_split : p.tiles;
  const GradWeightKey key = decode_gw_key(p, key_index);
  // grad_bias from this CTA: one CTA per (split, group, output-channel tile) sums the gradient's rows.
  const bool bias_sums = p.bias_partials != nullptr && key.c0 == 0 && key.tap0 == 0;
  const bool pass = Traits::kFloat || bias_sums;  // warps 1-3 go over every stage first
  if (threadIdx.x == 0) {
    for (int s = 0; s < p.stages; ++s) {
      barrier_init(shared_address(&bars[s]), 1);
      barrier_init(shared_address(&bars[8 + s]), Traits::kStageReaderWarps);  // each releases what it read
      barrier_init(shared_address(&bars[16 + s]), kPassThreads);  // every pass thread, where a pass runs
    }
    barrier_init_fence();
  }
  __syncthreads();
  const int warpgroup = threadIdx.x / 128;
  if (warpgroup == 0) {
    lower_register_limit<Traits::kProducerRegisters>();
    if (threadIdx.x >= 32) {
      if (!pass) return;
      // The pass warps: the producer's stage sequence (every tile).
      const int thread = threadIdx.x - 32;
      float half_sums[3] = {0.f, 0.f, 0.f};
      int stage = 0;
      uint32_t phase = 0;
      for (int64_t tile = first_tile; tile < last_tile; ++tile) {
        barrier_wait(shared_address(&bars[stage]), phase);
        pass_over_tile<Traits>(stages + size_t(stage) * p.stage_bytes, thread, bias_sums, half_sums);
        barrier_arrive(shared_address(&bars[16 + stage]));
        if (++stage == p.stages) stage = 0, phase ^= 1;
      }
      if (bias_sums) {
        // A row's two halves belong to neighbouring threads (t and t ^ 1: 96 is even).
        const int64_t bias_key = int64_t(key.group) * p.o_tiles + key.o0 / GradWeightHopperPlan::kOutChannels;
        float* sums = p.bias_partials + (split * p.bias_keys + bias_key) * GradWeightHopperPlan::kOutChannels;
#pragma unroll
        for (int k = 0; k < 3; ++k) {
          const int half_row = thread + kPassThreads * k;
          if (half_row >= 2 * GradWeightHopperPlan::kOutChannels) break;  // warp-uniform
          const float row_sum = half_sums[k] + __shfl_xor_sync(0xffffffffu, half_sums[k], 1);
          if (half_row % 2 == 0) sums[half_row / 2] = row_sum;
        }
      }
      return;
    }
    if (threadIdx.x != 0) return;
    prefetch_tensor_map(&gradient_map);
    prefetch_tensor_map(&input_map);
    int stage = 0;
    uint32_t phase = 0;
    for (int64_t tile = first_tile; tile < last_tile; ++tile) {
      const GradWeightTile t = decode_gw_tile(p, tile);
      const uint32_t full = shared_address(&bars[stage]);
      barrier_wait(shared_address(&bars[8 + stage]), phase ^ 1);
      barrier_arrive_expect_bytes(full, p.gradient_stage_bytes + p.input_stage_bytes);
      uint8_t* gradient = stages + size_t(stage) * p.stage_bytes;
#pragma unroll
      for (int b = 0; b < Traits::kGradientBoxes; ++b) {
        tma_load_4d(shared_address(gradient + b * (GradWeightHopperPlan::kOutChannels * 128)), &gradient_map, full,
                    static_cast<int>(t.l0 + b * Traits::kSwizzleRowPositions), key.o0, key.group, static_cast<int>(t.n));
      }
      int shift;
      const int64_t first = window_start<kVector>(t.l0 * p.stride - p.pad_left + int64_t(key.tap0) * p.dilation, shift);
      tma_load_4d(shared_address(gradient + p.gradient_stage_bytes), &input_map, full, static_cast<int>(first), key.c0,
                  key.group, static_cast<int>(t.n));
      if (++stage == p.stages) stage = 0, phase ^= 1;
    }
    return;
  }
  raise_register_limit<Traits::kConsumerRegisters>();
  // Alternate stages: consumer c takes the CTA's tiles c, c + 2, ..., each the whole 64 x 128 tile, and
  // the two add up their sums at the end. Else both take every tile, output channels 64 * c .. + 63.
  const int consumer = warpgroup - 1;
  constexpr int kTileStride = Traits::kAlternate ? Traits::kConsumers : 1;
  const int lane = threadIdx.x % 32;
  // The key's taps: its tap group's, less those past the kernel (the last group may be short).
  const int taps = min(p.taps_per_group, p.kernel_size - key.tap0);
  float acc[Traits::kMaxTaps][Traits::kAccumulators];
#pragma unroll
  for (int tau = 0; tau < Traits::kMaxTaps; ++tau)
#pragma unroll
    for (int i = 0; i < Traits::kAccumulators; ++i) acc[tau][i] = 0.f;
  // Alternate stages: the ring position of the tile first_tile + consumer. The plan's stage count is then
  // even, so that each stage serves one consumer only, which then waits on its uses in order (a parity
  // wait passes on the phase before the one waited for too: with an odd count a consumer could pass a
  // stage's wait while the other consumer's use of it was still in flight).
  const int first = Traits::kAlternate ? consumer : 0;
  int stage = first;
  uint32_t phase = 0;
  for (int64_t tile = first_tile + first; tile < last_tile; tile += kTileStride) {
    const GradWeightTile t = decode_gw_tile(p, tile);
    int shift;
    window_start<kVector>(t.l0 * p.stride - p.pad_left + int64_t(key.tap0) * p.dilation, shift);
    barrier_wait(shared_address(&bars[stage]), phase);
    if (pass) barrier_wait(shared_address(&bars[16 + stage]), phase);  // the pass over the tile is done
    __syncwarp();  // wgmma needs the warp converged
    const uint8_t* gradient = stages + size_t(stage) * p.stage_bytes;
    const uint8_t* window = gradient + p.gradient_stage_bytes;
    const uint32_t b_rows = shared_address(gradient) + (Traits::kAlternate ? 0 : consumer * Traits::kN * 128);
#pragma unroll
    for (int j = 0; j < Traits::kSteps; ++j) {
      const uint64_t b = swizzled_descriptor(
          b_rows + (j / Traits::kStepsPerBox) * (GradWeightHopperPlan::kOutChannels * 128) +
          (j % Traits::kStepsPerBox) * 32);
      uint32_t a[Traits::kMaxTaps][4];
#pragma unroll
      for (int tau = 0; tau < Traits::kMaxTaps; ++tau) {
        if (tau < taps) {
          load_gw_a<Traits>(a[tau], window, p.window_pitch,
                            j * Traits::kStepPositions * p.stride + tau * p.dilation + shift, p.stride);
        }
      }
      wgmma_fence();
#pragma unroll
      for (int tau = 0; tau < Traits::kMaxTaps; ++tau) {
        if (tau < taps) Traits::Mma::run(acc[tau], a[tau], b, 1);
      }
      wgmma_commit();
      wgmma_wait<0>();
    }
    __syncwarp();
    if (lane == 0) barrier_arrive(shared_address(&bars[8 + stage]));
    stage += kTileStride;  // stages >= 2, so one wrap at most
    if (stage >= p.stages) stage -= p.stages, phase ^= 1;
  }
  // Alternate stages: consumer 1 hands its sums to consumer 0 through shared memory (the stages are done
  // with: every TMA load and pass was waited for by one of the two, and both have left their loops at the
  // first sync), thread for thread; consumer 0 adds them to its own, in that order, and writes the partials.
  [[maybe_unused]] float* exchange = reinterpret_cast<float*>(stages);
  [[maybe_unused]] const int thread = threadIdx.x % 128;
  if constexpr (Traits::kAlternate) {
    consumers_sync();
    if (consumer == 1) {
#pragma unroll
      for (int tau = 0; tau < Traits::kMaxTaps; ++tau) {
        if (tau >= taps) break;
#pragma unroll
        for (int i = 0; i < Traits::kAccumulators; ++i) {
          exchange[(tau * Traits::kAccumulators + i) * 128 + thread] = acc[tau][i];
        }
      }
    }
    consumers_sync();
    if (consumer == 1) return;
  }
  // d[4i + 2h + e] = (input channel 16 * warp + g + 8h, output channel o0 + 8i + 2t + e), o0 = 0 with
  // alternate stages, else 64 * consumer.
  const int o0 = Traits::kAlternate ? 0 : consumer * Traits::kN;
  const int warp = (threadIdx.x / 32) % 4, g = lane / 4, tq = lane % 4;
  const int64_t key_floats =
      int64_t(p.taps_per_group) * GradWeightHopperPlan::kChannels * GradWeightHopperPlan::kOutChannels;
  float* partials = p.partials + (split * p.keys + key_index) * key_floats;
#pragma unroll
  for (int tau = 0; tau < Traits::kMaxTaps; ++tau) {
    if (tau >= taps) break;
#pragma unroll
    for (int i = 0; i < Traits::kAccumulators / 4; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = 16 * warp + g + 8 * h, o = o0 + 8 * i + 2 * tq, d = 4 * i + 2 * h;
        float2 sums = make_float2(acc[tau][d], acc[tau][d + 1]);
        if constexpr (Traits::kAlternate) {
          const float* other = exchange + (tau * Traits::kAccumulators + d) * 128 + thread;
          sums.x += other[0];
          sums.y += other[128];
        }
        *reinterpret_cast<float2*>(partials +
                                   (int64_t(tau) * GradWeightHopperPlan::kChannels + c) * GradWeightHopperPlan::kOutChannels + o) =
            sums;
      }
  }
#endif
}

// grad_weight[group * O_g + o, c, k] = the sum over splits, in split order, of the partials of its key.
struct GradWeightReduceShape {
  int64_t elements;  // O * C_g * K
  int64_t splits;
  int keys, c_tiles, o_tiles, tap_groups, taps_per_group;
  int in_channels_per_group, out_channels_per_group, kernel_size;
};

template <typename Element>
__global__ void grad_weight_reduce(const float* __restrict__ partials, Element* __restrict__ grad_weight,
                                   GradWeightReduceShape s) {
  const int64_t key_floats =
      int64_t(s.taps_per_group) * GradWeightHopperPlan::kChannels * GradWeightHopperPlan::kOutChannels;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < s.elements; e += int64_t(gridDim.x) * blockDim.x) {
    const int k = static_cast<int>(e % s.kernel_size);
    const int c = static_cast<int>((e / s.kernel_size) % s.in_channels_per_group);
    const int64_t o_global = e / (int64_t(s.kernel_size) * s.in_channels_per_group);
    const int group = static_cast<int>(o_global / s.out_channels_per_group);
    const int o = static_cast<int>(o_global % s.out_channels_per_group);
    const int c_tile = c / GradWeightHopperPlan::kChannels, o_tile = o / GradWeightHopperPlan::kOutChannels;
    const int tap_group = k / s.taps_per_group, tau = k % s.taps_per_group;
    const int key = ((group * s.c_tiles + c_tile) * s.o_tiles + o_tile) * s.tap_groups + tap_group;
    const int64_t offset = (int64_t(tau) * GradWeightHopperPlan::kChannels + c % GradWeightHopperPlan::kChannels) *
                               GradWeightHopperPlan::kOutChannels + o % GradWeightHopperPlan::kOutChannels;
    float sum = 0.f;
    for (int64_t split = 0; split < s.splits; ++split) sum += partials[(split * s.keys + key) * key_floats + offset];
    grad_weight[e] = static_cast<Element>(sum);
  }
}

// grad_bias[group * O_g + o] = the sum over splits, in split order, of the row sums of its (group, tile).
template <typename Element>
__global__ void grad_bias_reduce(const float* __restrict__ bias_partials, Element* __restrict__ grad_bias,
                                 int64_t splits, int64_t out_channels, int out_channels_per_group, int bias_keys) {
  constexpr int kTile = GradWeightHopperPlan::kOutChannels;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < out_channels; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t group = e / out_channels_per_group;
    const int o = static_cast<int>(e % out_channels_per_group);
    const int64_t row = (group * ((out_channels_per_group + kTile - 1) / kTile) + o / kTile) * kTile + o % kTile;
    float sum = 0.f;
    for (int64_t split = 0; split < splits; ++split) sum += bias_partials[split * bias_keys * kTile + row];
    grad_bias[e] = static_cast<Element>(sum);
  }
}

}  // namespace custom_ops::conv1d::cuda::hopper
