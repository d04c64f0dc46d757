// Probe: where may a TMA tensor box start in its innermost dimension? One load (or store) of a 64 x 64
// bf16 box of a 1024 x 64 tensor (rank 2; `rank1` views it as 65,536 elements, box 64) at start element
// X of row 0, swizzle none or 128B; the first elements landed are printed. An illegal start ends the
// process with "an illegal instruction was encountered", so each start runs as its own process:
//   nvcc -O3 -std=c++17 -arch=sm_90a bench/probes/tma_box_start.cu -lcuda -o /tmp/tma_box_start
//   for x in 0 8 -8 4 3 -3; do for m in none swizzle rank1 rank1-store; do /tmp/tma_box_start $m $x; done; done
// H200, driver 580.159.04 (2026-12-04): loads starting on a multiple of 16 bytes (x = 0, 8, -8; a negative
// start zero-fills) land the right elements, in every mode; x = 4, 3, -3 fault in every mode, stores as
// well as loads; a store starting before the tensor (x = -8) faults too.
// Hence the kernels' window_start (boxes start a vector early, the shift is taken in shared memory), and
// no TMA box can start at a tap's shift or at an output row's unaligned start (bench/NOTES.md, h12, r8).
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(x)                                                                          \
  do {                                                                                    \
    cudaError_t e = (x);                                                                  \
    if (e != cudaSuccess) {                                                               \
      printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__); \
      return 1;                                                                           \
    }                                                                                     \
  } while (0)

constexpr int kLength = 1024, kRows = 64, kBox = 64;

__global__ void box_kernel(const __grid_constant__ CUtensorMap map, int x, int rank, int store, uint16_t* first) {
  __shared__ __align__(1024) uint16_t box[kBox * kBox];
  __shared__ __align__(8) uint64_t bar;
  if (threadIdx.x != 0) return;
  const uint32_t destination = static_cast<uint32_t>(__cvta_generic_to_shared(box));
  const uint32_t b = static_cast<uint32_t>(__cvta_generic_to_shared(&bar));
  const uint64_t m = reinterpret_cast<uint64_t>(&map);
  if (store) {  // a rank-1 box is one row: elements 1000, 1001, ...
    for (int i = 0; i < kBox; ++i) box[i] = uint16_t(1000 + i);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    asm volatile("cp.async.bulk.tensor.1d.global.shared::cta.bulk_group [%0, {%1}], [%2];" ::"l"(m), "r"(x),
                 "r"(destination)
                 : "memory");
    asm volatile("cp.async.bulk.commit_group;\ncp.async.bulk.wait_group 0;" ::: "memory");
    return;
  }
  const int bytes = (rank == 1 ? kBox : kBox * kBox) * 2;
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(b));
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(b), "r"(bytes));
  if (rank == 1) {
    asm volatile(
        "cp.async.bulk.tensor.1d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2}], [%3];" ::"r"(
            destination),
        "l"(m), "r"(x), "r"(b)
        : "memory");
  } else {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
            destination),
        "l"(m), "r"(x), "r"(0), "r"(b)
        : "memory");
  }
  asm volatile("{\n.reg .pred p;\nWAIT: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], 0;\n@!p bra WAIT;\n}" ::"r"(b));
  for (int i = 0; i < 8; ++i) first[i] = box[i];  // row 0's first 16 bytes: not moved by the swizzle
}

int main(int argc, char** argv) {
  if (argc < 3) {
    printf("usage: %s none|swizzle|rank1|rank1-store START\n", argv[0]);
    return 2;
  }
  const char* mode = argv[1];
  const int x = atoi(argv[2]);
  const bool rank1 = strncmp(mode, "rank1", 5) == 0, store = strcmp(mode, "rank1-store") == 0;
  CHECK(cudaFree(nullptr));  // a context for the driver API
  std::vector<uint16_t> host(kLength * kRows);
  for (size_t i = 0; i < host.size(); ++i) host[i] = uint16_t(i % kLength);  // element l of a row holds l
  uint16_t *tensor, *first;
  CHECK(cudaMalloc(&tensor, host.size() * 2));
  CHECK(cudaMalloc(&first, 16));
  CHECK(cudaMemcpy(tensor, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
  CUtensorMap map;
  const cuuint64_t dims[2] = {rank1 ? cuuint64_t(kLength) * kRows : cuuint64_t(kLength), cuuint64_t(kRows)};
  const cuuint64_t strides[1] = {cuuint64_t(kLength) * 2};  // a rank-1 map has none, but no null array either
  const cuuint32_t box[2] = {kBox, kBox}, element_strides[2] = {1, 1};
  const CUresult r = cuTensorMapEncodeTiled(
      &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rank1 ? 1 : 2, tensor, dims, strides, box, element_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, strcmp(mode, "swizzle") == 0 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
      CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    printf("%s x %d: cuTensorMapEncodeTiled failed (%d)\n", mode, x, int(r));
    return 1;
  }
  printf("%s x %d: ", mode, x);
  fflush(stdout);
  box_kernel<<<1, 32>>>(map, x, rank1 ? 1 : 2, store ? 1 : 0, first);
  CHECK(cudaDeviceSynchronize());
  uint16_t landed[8];
  if (store) {
    CHECK(cudaMemcpy(landed, tensor + (x > 0 ? x : 0), 16, cudaMemcpyDeviceToHost));
  } else {
    CHECK(cudaMemcpy(landed, first, 16, cudaMemcpyDeviceToHost));
  }
  printf("ok, first elements");
  for (uint16_t v : landed) printf(" %d", v);
  printf("\n");
  return 0;
}
