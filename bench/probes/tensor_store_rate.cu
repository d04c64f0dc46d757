// Probe: can a rank-1 tensor map over the whole output write the forward's tile rows at the copy engine's
// full rate, ends included? (NOTES, the next device session, forward item.) The forward kernel's rows sit
// anywhere in a 32-byte sector (the headline's L_out is 131070), so today it sends each row's 16-byte
// aligned body by cp.async.bulk and plain-stores the ends; store_alignment.cu measured that pattern at
// 2.0-2.6 TB/s and ~1.0 TB/s from two issuing warps with the ends. A rank-1 tensor map has no row stride
// for TMA to refuse: one cp.async.bulk.tensor.1d per row piece of `positions` elements, starting at any
// element, writes the whole piece. This probe times that on the headline's rows (and on aligned rows for
// reference), from 1, 2 and 8 issuing warps, with staging rows whose shared-memory pitch is a multiple of
// 128 bytes, and last with a pitch of 16 (mod 128), which the forward's bank-conflict-free staging wants:
// if tensor stores need 128-byte aligned shared memory, that last launch faults (run it last; the error
// is the answer). Every written element is checked afterwards (the output is poisoned first).
//   nvcc -O3 -std=c++17 -arch=sm_90a bench/probes/tensor_store_rate.cu -lcuda -o /tmp/tensor_store_rate
//   /tmp/tensor_store_rate
#include "probe_timing.cuh"

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

constexpr int kRows = 64, kSlots = 2;

__device__ __forceinline__ uint32_t smem(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

struct Shape {
  int element, positions, pitch;  // staging row pitch in bytes
  int64_t length, tiles_per_row_block, tiles;
};

// Each CTA walks tiles of kRows rows x `positions` positions; a tile's rows leave by one 1-D tensor store
// each (lane 0 of a warp issues its rows), from a slot reused every kSlots tiles.
template <int Warps>
__global__ void tensor_rows_kernel(const __grid_constant__ CUtensorMap map, Shape s) {
  extern __shared__ __align__(1024) uint8_t staging[];
  // Staging values: the element's index within its row piece, so that the host can check every element.
  for (int i = threadIdx.x; i < kSlots * kRows * s.positions; i += blockDim.x) {
    const int row = i / s.positions, q = i % s.positions;
    uint8_t* r = staging + row * s.pitch;
    if (s.element == 4) reinterpret_cast<float*>(r)[q] = float(q);
    else reinterpret_cast<uint16_t*>(r)[q] = uint16_t(q);
  }
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  walk_tiles<kRows, kSlots, Warps, false>(s.tiles, s.tiles_per_row_block, [&](int64_t row, int64_t block,
                                                                              int staging_row, int lane) {
    const int coordinate = static_cast<int>(row * s.length + block * s.positions);
    const uint32_t source = smem(staging + staging_row * s.pitch);
    if (lane == 0)
      asm volatile("cp.async.bulk.tensor.1d.global.shared::cta.bulk_group [%0, {%1}], [%2];\n" ::"l"(
                       reinterpret_cast<uint64_t>(&map)),
                   "r"(coordinate), "r"(source)
                   : "memory");
  });
}

static CUtensorMap rank1_map(void* out, int element, int64_t elements, int box) {
  CUtensorMap map;
  const cuuint64_t dims[1] = {cuuint64_t(elements)};
  const cuuint32_t boxes[1] = {cuuint32_t(box)}, steps[1] = {1};
  const CUresult r = cuTensorMapEncodeTiled(&map, element == 4 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32 : CU_TENSOR_MAP_DATA_TYPE_UINT16,
                                            1, out, dims, nullptr, boxes, steps, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                            CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    printf("cuTensorMapEncodeTiled failed (%d)\n", int(r));
    exit(1);
  }
  return map;
}

// Counts the elements of the written row pieces that do not hold their index within the piece.
static int64_t wrong_elements(const uint8_t* device_out, const Shape& s, int64_t rows) {
  std::vector<uint8_t> host(size_t(rows * s.length * s.element));
  CHECK(cudaMemcpy(host.data(), device_out, host.size(), cudaMemcpyDeviceToHost));
  int64_t wrong = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t l = 0; l < s.tiles_per_row_block * s.positions; ++l) {
      const int q = int(l % s.positions);
      const uint8_t* e = host.data() + (r * s.length + l) * s.element;
      if (s.element == 4) {
        float v;
        std::memcpy(&v, e, 4);
        wrong += v != float(q);
      } else {
        uint16_t v;
        std::memcpy(&v, e, 2);
        wrong += v != uint16_t(q);
      }
    }
  return wrong;
}

int main() {
  CHECK(cudaFree(nullptr));  // a context for the driver API
  int sms;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int64_t rows = 4096;
  uint8_t* out;
  CHECK(cudaMalloc(&out, rows * 131072 * 4));
  // The aligned-pitch launches first; the 16 (mod 128) pitch last, since a fault ends the process.
  for (int misaligned = 0; misaligned < 2; ++misaligned) {
    for (int64_t length : {int64_t(131070), int64_t(131072)}) {
      for (auto [element, positions] : {std::pair{4, 256}, std::pair{2, 256}}) {
        for (int warps : {1, 2, 8}) {
          if (misaligned && (length != 131070 || warps != 8)) continue;
          const int row_bytes = positions * element;
          Shape s{element, positions, row_bytes + (misaligned ? 16 : 0), length, length / positions - 1, 0};
          s.tiles = rows / kRows * s.tiles_per_row_block;
          const CUtensorMap map = rank1_map(out, element, rows * length, positions);
          const int sm = kSlots * kRows * s.pitch;
          void (*kernel)(const CUtensorMap, Shape) =
              warps == 1 ? tensor_rows_kernel<1> : (warps == 2 ? tensor_rows_kernel<2> : tensor_rows_kernel<8>);
          CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, sm));
          printf("L %ld  %dB x %3d pos (%4d B rows)  pitch %4d B  %d warps  ", long(length), element, positions, row_bytes,
                 s.pitch, warps);
          fflush(stdout);
          CHECK(cudaMemset(out, 0xff, rows * length * element));
          kernel<<<sms, 32 * warps, sm>>>(map, s);
          CHECK(cudaDeviceSynchronize());
          const int64_t wrong = wrong_elements(out, s, rows);
          const float ms = time_ms([&] { kernel<<<sms, 32 * warps, sm>>>(map, s); }, 9);
          const double bytes = double(rows) * s.tiles_per_row_block * positions * element;
          printf("%7.3f ms  %5.0f GB/s  wrong elements %ld\n", ms, bytes / ms / 1e6, long(wrong));
        }
      }
    }
  }
  CHECK(cudaFree(out));
  return 0;
}
