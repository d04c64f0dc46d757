// Probe: does the copy engine's write rate depend on where a row copy starts and ends in its 128-byte
// line? store_rate.cu measured rows of the headline's output (L_out 131070: rows 8 bytes off a 16-byte
// boundary every other row) at 2.0-2.6 TB/s against 4.3 TB/s for rows of 131072 elements, with the same
// bytes per copy. Here each row's copy is trimmed to `trim`-byte boundaries of the global row (16: what
// cp.async.bulk needs; 32: whole sectors; 128: whole lines), and with `ends` the warp writes the
// trimmed head and tail itself with plain stores (as the kernel must), all lanes on one row at a time.
// Result on the H200 (2026-12-04, NOTES h10): trimmed to 16 bytes the headline's rows go at 2.0-2.6 TB/s
// whatever the issuers; trimmed to 32 (whole sectors) 3.5-3.9 TB/s from 8 warps; 128 adds nothing over
// 32. Two issuing warps stay near 2.5 TB/s at any alignment, ~1.0 TB/s with the plain ends.
//   nvcc -O3 -std=c++17 -arch=sm_90a bench/probes/store_alignment.cu -o /tmp/store_alignment && /tmp/store_alignment
#include "probe_timing.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>


constexpr int kRows = 64, kSlots = 2;

__device__ __forceinline__ uint32_t smem(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

struct Shape {
  uint8_t* out;
  int element, positions;
  bool ends;
  int64_t length, tiles_per_row_block, tiles;
};

template <typename T>
__device__ __forceinline__ void copy_elements(uint8_t* dst, const uint8_t* src, int bytes, int lane) {
  for (int q = lane; q < bytes / int(sizeof(T)); q += 32)
    reinterpret_cast<T*>(dst)[q] = reinterpret_cast<const T*>(src)[q];
}

// Trim is a template argument: a runtime 64-bit modulo per row costs hundreds of cycles in the issuing
// warp and then bounds the rate instead of the copy engine (NOTES h6-h7).
template <int Warps, int Trim>
__global__ void rows_kernel(Shape s) {
  extern __shared__ __align__(128) uint8_t staging[];
  const int row_bytes = s.positions * s.element + 128;
  for (int i = threadIdx.x; i < kSlots * kRows * row_bytes / 4; i += blockDim.x) reinterpret_cast<float*>(staging)[i] = i;
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  walk_tiles<kRows, kSlots, Warps, true>(s.tiles, s.tiles_per_row_block, [&](int64_t row, int64_t block,
                                                                             int staging_row, int lane) {
    uint8_t* dst = s.out + (row * s.length + block * s.positions) * s.element;
    const uint8_t* src = staging + staging_row * row_bytes + (reinterpret_cast<uintptr_t>(dst) & 127);
    const int total = s.positions * s.element;
    const int head = min(total, int(-reinterpret_cast<uintptr_t>(dst) & uintptr_t(Trim - 1)));
    const int body = (total - head) & ~(Trim - 1);
    if (lane == 0 && body > 0)
      asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(
                       reinterpret_cast<uint64_t>(dst + head)),
                   "r"(smem(src + head)), "r"(body)
                   : "memory");
    if (s.ends) {
      if (s.element == 4) {
        copy_elements<float>(dst, src, head, lane);
        copy_elements<float>(dst + head + body, src + head + body, total - head - body, lane);
      } else {
        copy_elements<uint16_t>(dst, src, head, lane);
        copy_elements<uint16_t>(dst + head + body, src + head + body, total - head - body, lane);
      }
    }
  });
}


int main() {
  int sms;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int64_t rows = 4096;
  uint8_t* out;
  CHECK(cudaMalloc(&out, rows * (131072 + 64) * 4));
  for (int64_t length : {int64_t(131070), int64_t(131072)}) {
    for (auto [element, positions] : {std::pair{4, 256}, std::pair{2, 256}, std::pair{2, 512}}) {
      for (int trim : {16, 32, 128}) {
        for (bool ends : {false, true}) {
          for (int warps : {2, 8}) {
            if (length % 64 == 0 && (trim != 16 || ends)) continue;  // aligned rows: one reference
            Shape s{out, element, positions, ends, length, length / positions - 1, 0};
            s.tiles = rows / kRows * s.tiles_per_row_block;
            // Bytes written: every row's positions, or only the copies' bodies without the ends.
            double bytes = 0;
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t pb = 0; pb < s.tiles_per_row_block; ++pb) {
                const uint64_t address = uint64_t((r * length + pb * positions) * element);
                const int total = positions * element;
                const int head = std::min<int>(total, int((trim - address % trim) % trim));
                bytes += ends ? total : (total - head) / trim * trim;
              }
            const int sm = kSlots * kRows * (positions * element + 128);
            void (*kernel)(Shape) = nullptr;
            if (trim == 16) kernel = warps == 2 ? rows_kernel<2, 16> : rows_kernel<8, 16>;
            if (trim == 32) kernel = warps == 2 ? rows_kernel<2, 32> : rows_kernel<8, 32>;
            if (trim == 128) kernel = warps == 2 ? rows_kernel<2, 128> : rows_kernel<8, 128>;
            CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, sm));
            const float ms = time_ms([&] { kernel<<<sms, 32 * warps, sm>>>(s); }, 9);
            printf("L %ld  %dB x %3d pos (%4d B rows)  copies trimmed to %3d B%s  %d warps  %7.3f ms  %5.0f GB/s\n",
                   long(length), element, positions, positions * element, trim, ends ? " + plain ends" : "            ",
                   warps, ms, bytes / ms / 1e6);
          }
        }
      }
    }
  }
  CHECK(cudaFree(out));
  return 0;
}
