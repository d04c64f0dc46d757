#pragma once
// What the store probes share: an error check, the median of a few CUDA-event-timed launches, and the
// walk of a persistent CTA over tiles of rows that leave by bulk stores from recycled staging slots.

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK(x)                                                                                 \
  do {                                                                                           \
    cudaError_t e = (x);                                                                         \
    if (e != cudaSuccess) {                                                                      \
      printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__);             \
      exit(1);                                                                                   \
    }                                                                                            \
  } while (0)

// Median milliseconds of `repeats` launches after a warm-up launch.
template <class Launch>
static float time_ms(Launch launch, int repeats = 7) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  launch();
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  std::vector<float> times;
  for (int i = 0; i < repeats; ++i) {
    CHECK(cudaEventRecord(a));
    launch();
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float ms;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    times.push_back(ms);
  }
  CHECK(cudaGetLastError());
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// CTA b takes tiles b, b + gridDim.x, ... of `Rows` output rows x one row block (`tiles_per_row_block`
// blocks a row block of rows); warp w sends rows w, w + Warps, ... of a tile by calling
// send(row, row block, staging row, lane). A tile's rows come from staging slot k % Slots (k counts the
// CTA's tiles), reused once the bulk stores of Slots tiles ago have read it; with `BlockSync` the whole
// block waits for that before any warp goes on (the first store probes did), else each warp.
template <int Rows, int Slots, int Warps, bool BlockSync, class Send>
__device__ __forceinline__ void walk_tiles(int64_t tiles, int64_t tiles_per_row_block, Send send) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int k = 0;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x, ++k) {
    const int64_t row_block = t / tiles_per_row_block, block = t % tiles_per_row_block;
    if (lane == 0) asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(Slots - 1) : "memory");
    if (BlockSync) __syncthreads();
    else __syncwarp();
    for (int r = warp; r < Rows; r += Warps) send(row_block * Rows + r, block, (k % Slots) * Rows + r, lane);
    if (lane == 0) asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
  }
  if (lane == 0) asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
}
