// Does compute-sanitizer's initcheck see writes made by the copy engine (cp.async.bulk shared -> global)?
// The Hopper forward writes its output that way; initcheck reports the host copy of such an output as
// "uninitialized access ... by cudaMemcpy source". This probe writes one buffer with ordinary stores and
// one with a bulk copy, reads each in a kernel (as fold_taps_kernel reads the unfolded gradient that the
// Hopper kernel stored), then copies both back and checks them on the host: under initcheck, reports for
// the second buffer alone (the kernel's read and the copy's) mean the tool does not track bulk-copy
// writes.
//   nvcc -arch=sm_90a -o /tmp/bulk_store_initcheck bench/probes/bulk_store_initcheck.cu
//   compute-sanitizer --tool initcheck /tmp/bulk_store_initcheck
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>

constexpr int kCount = 1024;  // floats, 4 KB

__global__ void write_plain(float* out) {
  for (int i = threadIdx.x; i < kCount; i += blockDim.x) out[i] = float(i);
}

__global__ void write_bulk(float* out) {
  __shared__ alignas(128) float staged[kCount];
  for (int i = threadIdx.x; i < kCount; i += blockDim.x) staged[i] = float(i);
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  if (threadIdx.x == 0) {
    const auto source = static_cast<uint32_t>(__cvta_generic_to_shared(staged));
    asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(out), "r"(source),
                 "r"(kCount * 4) : "memory");
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
    asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
  }
}

__global__ void read_sum(const float* in, float* sum) {
  float s = 0.f;
  for (int i = threadIdx.x; i < kCount; i += blockDim.x) s += in[i];
  atomicAdd(sum, s);
}

int main() {
  float *plain, *bulk;
  cudaMalloc(&plain, kCount * 4);
  cudaMalloc(&bulk, kCount * 4);
  write_plain<<<1, 256>>>(plain);
  write_bulk<<<1, 256>>>(bulk);
  float* sums;
  cudaMalloc(&sums, 2 * sizeof(float));
  cudaMemset(sums, 0, 2 * sizeof(float));
  std::printf("read plain-stored buffer in a kernel\n");
  read_sum<<<1, 256>>>(plain, sums);
  cudaDeviceSynchronize();
  std::printf("read bulk-stored buffer in a kernel\n");
  read_sum<<<1, 256>>>(bulk, sums + 1);
  cudaDeviceSynchronize();
  static float host[2][kCount];
  std::printf("copy plain-stored buffer\n");
  cudaMemcpy(host[0], plain, kCount * 4, cudaMemcpyDeviceToHost);
  std::printf("copy bulk-stored buffer\n");
  cudaMemcpy(host[1], bulk, kCount * 4, cudaMemcpyDeviceToHost);
  float host_sums[2];
  cudaMemcpy(host_sums, sums, sizeof(host_sums), cudaMemcpyDeviceToHost);
  int wrong = 0;
  for (int i = 0; i < kCount; ++i) wrong += (host[0][i] != float(i)) + (host[1][i] != float(i));
  const float expected = float(kCount) * (kCount - 1) / 2;
  wrong += (host_sums[0] != expected) + (host_sums[1] != expected);
  std::printf("%s: %d wrong values (%s)\n", wrong ? "FAIL" : "ok", wrong, cudaGetErrorString(cudaGetLastError()));
  return wrong != 0;
}
