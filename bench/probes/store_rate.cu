// Probe: how fast can one CTA per SM push a conv1d output tile (64 channel rows x P positions, rows a
// whole output row apart) from shared memory to global memory? Compares the copy engine's row copies
// (cp.async.bulk), TMA tensor stores of 2-D boxes, and plain coalesced st.global from registers, at
// several run lengths, issuer counts and staging depths. No arithmetic: the store path alone.
// An issuing thread works out every copy's addresses in turn: keep that arithmetic free of runtime
// divisions (a 64-bit modulo per copy cost hundreds of cycles and bounded the early figures, NOTES h6-h7).
// With the placement a mask (H200, 2026-12-04, NOTES h10): 128-byte aligned rows reach the 4.3 TB/s write
// ceiling from one thread (1 KB rows); the headline's rows (L 131070, bodies on 16-byte boundaries) stay
// at 2.0-2.6 TB/s whatever the issuers (store_alignment.cu takes that further).
//   nvcc -O3 -std=c++17 -arch=sm_90a bench/probes/store_rate.cu -lcuda -o /tmp/store_rate && /tmp/store_rate
#include "probe_timing.cuh"

#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>


constexpr int kRows = 64;  // channel rows per tile

__device__ __forceinline__ uint32_t smem(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
template <int N>
__device__ __forceinline__ void wait_read() { asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory"); }
__device__ __forceinline__ void commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

struct Shape {
  float* out;
  int element;  // bytes per element (rows of `length` elements)
  int64_t rows, length;  // output rows x row length (elements); row stride = length
  int positions;         // P: positions per tile row
  int64_t tiles_per_row_block, tiles;
};

// Bulk row copies: lane 0 of `Issuers` warps (or threads 0..Issuers-1 when `Lanes`) each copy
// 64 / Issuers rows of a tile; `Slots` staging buffers. With `bodies_only`, rows that start off a
// 16-byte boundary copy their aligned body only (the real kernel stores the ends with plain stores).
// `match`: a staging row starts at the global row's offset modulo `match` bytes (16: just enough for
// 16-byte aligned copies; 128: the same place in a 128-byte line).
template <int Issuers, int Slots, bool Lanes>
__global__ void bulk_rows(Shape s, bool bodies_only, int match) {
  extern __shared__ __align__(128) uint8_t staging[];
  const int row_bytes = s.positions * s.element + 128;
  for (int i = threadIdx.x; i < Slots * kRows * row_bytes / 4; i += blockDim.x) reinterpret_cast<float*>(staging)[i] = i;
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  const bool issuer = Lanes ? threadIdx.x < Issuers : (threadIdx.x % 32 == 0 && threadIdx.x / 32 < Issuers);
  const int me = Lanes ? threadIdx.x : threadIdx.x / 32;
  int k = 0;
  for (int64_t t = blockIdx.x; t < s.tiles; t += gridDim.x, ++k) {
    const int64_t rb = t / s.tiles_per_row_block, pb = t % s.tiles_per_row_block;
    const int slot = k % Slots;
    if (issuer) wait_read<Slots - 1>();
    __syncthreads();  // (the real kernel writes the slot here)
    if (issuer) {
      for (int r = me; r < kRows; r += Issuers) {
        uint8_t* dst = reinterpret_cast<uint8_t*>(s.out) + ((rb * kRows + r) * s.length + pb * s.positions) * s.element;
        const uint32_t src = smem(staging + (slot * kRows + r) * row_bytes + (reinterpret_cast<uintptr_t>(dst) & uintptr_t(match - 1)));
        const int head = bodies_only ? int((16 - reinterpret_cast<uintptr_t>(dst) % 16) % 16) : 0;
        const int bytes = bodies_only ? (s.positions * s.element - head) / 16 * 16 : s.positions * s.element;
        asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(
                         reinterpret_cast<uint64_t>(dst + head)),
                     "r"(src + head), "r"(bytes)
                     : "memory");
      }
      commit();
    }
  }
  if (issuer) wait_all();
}

// TMA tensor stores of 2-D boxes (P positions x 64 rows) by one thread.
template <int Slots>
__global__ void tma_boxes(const __grid_constant__ CUtensorMap map, Shape s) {
  extern __shared__ __align__(1024) uint8_t box_staging[];
  uint8_t* staging = box_staging;
  const int box_bytes = s.positions * 4 * kRows;
  for (int i = threadIdx.x; i < Slots * box_bytes / 4; i += blockDim.x) reinterpret_cast<float*>(staging)[i] = i;
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  if (threadIdx.x != 0) return;
  int k = 0;
  for (int64_t t = blockIdx.x; t < s.tiles; t += gridDim.x, ++k) {
    const int64_t rb = t / s.tiles_per_row_block, pb = t % s.tiles_per_row_block;
    const int slot = k % Slots;
    wait_read<Slots - 1>();
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"(
                     reinterpret_cast<uint64_t>(&map)),
                 "r"(smem(staging + slot * box_bytes)), "r"(int(pb * s.positions)), "r"(int(rb * kRows))
                 : "memory");
    commit();
  }
  wait_all();
}

// Plain stores from registers: every warp instruction writes 512 contiguous bytes (16 per lane).
__global__ void stg_rows(Shape s) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const int vectors_per_row = s.positions / 4;
  const float4 v = make_float4(lane, warp, 1.f, 2.f);
  for (int64_t t = blockIdx.x; t < s.tiles; t += gridDim.x) {
    const int64_t rb = t / s.tiles_per_row_block, pb = t % s.tiles_per_row_block;
    for (int i = warp * 32 + lane; i < kRows * vectors_per_row; i += warps * 32) {
      const int r = i / vectors_per_row, q = i % vectors_per_row;
      reinterpret_cast<float4*>(s.out + (rb * kRows + r) * s.length + pb * s.positions)[q] = v;
    }
  }
}



int main() {
  int sms;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int64_t rows = 4096, length = 131072;
  float* out;
  CHECK(cudaMalloc(&out, rows * (length + 64) * 4));
  const double bytes = double(rows) * length * 4;
  auto shape = [&](int positions, int64_t len) {
    Shape s{out, 4, rows, len, positions, len / positions, 0};
    s.tiles = rows / kRows * s.tiles_per_row_block;
    return s;
  };
  auto report = [&](const char* name, float ms, double b) {
    printf("%-58s %7.3f ms  %6.0f GB/s  %5.1f B/clk/SM\n", name, ms, b / ms / 1e6, b / ms / 1e6 / sms / 1.755);
  };
  report("cudaMemset (write ceiling)", time_ms([&] { CHECK(cudaMemsetAsync(out, 1, bytes)); }), bytes);

  // kernel-like: rows of 131070 elements (float32: 8 bytes off 16 every other row; 16-bit: 4 phases)
  auto bulk = [&](auto kernel, const char* what, int issuers, int slots, int element, int positions, int64_t len,
                  bool bodies, int block, int match) {
    Shape s = shape(positions, len);
    s.element = element;
    s.tiles_per_row_block = (len - positions) / positions;
    s.tiles = rows / kRows * s.tiles_per_row_block;
    const int sm = slots * kRows * (positions * element + 128);
    CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, sm));
    char name[128];
    snprintf(name, sizeof name, "bulk %s %dB rows of %d B, L %ld, smem=global mod %d", what, element,
             positions * element, long(len), match);
    const double b = double(rows) * s.tiles_per_row_block * positions * element;
    report(name, time_ms([&] { kernel<<<sms, block, sm>>>(s, bodies, match); }), b);
  };
  for (int64_t len : {int64_t(131070), int64_t(131072)}) {
    for (int element : {4, 2}) {
      for (int positions : {64, 128, 256}) {
        if (positions * element < 256) continue;
        const bool bodies = len % 8 != 0;
        for (int match : {16, 32, 128}) {
          if (!bodies && match == 16) continue;
          bulk(bulk_rows<1, 2, true>, "1 thread ", 1, 2, element, positions, len, bodies, 128, match);
          bulk(bulk_rows<4, 2, false>, "4 warps  ", 4, 2, element, positions, len, bodies, 128, match);
          bulk(bulk_rows<8, 2, false>, "8 warps  ", 8, 2, element, positions, len, bodies, 256, match);
        }
      }
    }
  }
  for (int P : {64, 128, 256}) {
    for (int slots : {2, 3}) {
      Shape s = shape(P, length);
      CUtensorMap map;
      cuuint64_t dims[2] = {cuuint64_t(length), cuuint64_t(rows)};
      cuuint64_t strides[1] = {cuuint64_t(length * 4)};
      cuuint32_t box[2] = {cuuint32_t(P), cuuint32_t(kRows)};
      cuuint32_t elem[2] = {1, 1};
      CUresult r = cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, out, dims, strides, box, elem,
                                  CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                                  CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
      if (r != CUDA_SUCCESS) { printf("encode failed %d\n", int(r)); continue; }
      const int sm = slots * kRows * P * 4;
      if (sm > 227 * 1024) continue;
      char name[96];
      snprintf(name, sizeof name, "TMA 2-D boxes %3d pos x 64 rows, %d slots", P, slots);
      if (slots == 2) {
        CHECK(cudaFuncSetAttribute(tma_boxes<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, sm));
        report(name, time_ms([&] { tma_boxes<2><<<sms, 128, sm>>>(map, s); }), bytes);
      } else {
        CHECK(cudaFuncSetAttribute(tma_boxes<3>, cudaFuncAttributeMaxDynamicSharedMemorySize, sm));
        report(name, time_ms([&] { tma_boxes<3><<<sms, 128, sm>>>(map, s); }), bytes);
      }
    }
  }
  for (int P : {64, 256}) {
    for (int threads : {128, 256, 384, 512, 1024}) {
      Shape s = shape(P, length);
      char name[96];
      snprintf(name, sizeof name, "st.global.v4 rows of %d B, %d threads", P * 4, threads);
      report(name, time_ms([&] { stg_rows<<<sms, threads>>>(s); }), bytes);
    }
  }
  {
    Shape s = shape(64, length);
    report("st.global.v4 rows of 256 B, 2 CTAs x 1024 threads per SM", time_ms([&] { stg_rows<<<2 * sms, 1024>>>(s); }), bytes);
  }
  CHECK(cudaFree(out));
  return 0;
}
