#pragma once
// The Hopper (sm_90a) instructions the conv1d kernels use, as thin inline-PTX wrappers: mbarriers, the
// bulk tensor copy engine (TMA) and plain bulk copies completing on an mbarrier, wgmma ordering, and
// setmaxnreg. Every wrapper is only meant to be reached from code compiled for sm_90a (see
// CUSTOM_OPS_HOPPER_DEVICE_CODE).

#include <cuda.h>

#include <cstdint>

// True in the device pass that targets sm_90a: the kernels have real bodies only there, so a build for
// several architectures (sm_80 too) still compiles, with empty kernels the host never launches.
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define CUSTOM_OPS_HOPPER_DEVICE_CODE 1
#else
#define CUSTOM_OPS_HOPPER_DEVICE_CODE 0
#endif
// A plain sm_90 target would run these kernels' empty bodies on a Hopper GPU: only 9.0a is accepted.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "custom_ops: build Hopper code as 9.0a (TORCH_CUDA_ARCH_LIST=9.0a), not 9.0: the kernels need wgmma and setmaxnreg"
#endif

namespace custom_ops::conv1d::cuda::hopper {

__device__ __forceinline__ uint32_t shared_address(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

// ---- mbarriers -------------------------------------------------------------------------------------
__device__ __forceinline__ void barrier_init(uint32_t barrier, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(barrier), "r"(arrivals) : "memory");
}

// Makes the initialised barriers visible to the async proxy (TMA) before anyone uses them.
__device__ __forceinline__ void barrier_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

__device__ __forceinline__ void barrier_arrive(uint32_t barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(barrier) : "memory");
}

// One arrival that also announces `bytes` of asynchronous copies that will complete on the barrier.
__device__ __forceinline__ void barrier_arrive_expect_bytes(uint32_t barrier, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(barrier), "r"(bytes) : "memory");
}

// Waits until the barrier's phase of the given parity has completed.
__device__ __forceinline__ void barrier_wait(uint32_t barrier, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT_AGAIN:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_AGAIN;\n"
      "}\n" ::"r"(barrier),
      "r"(parity)
      : "memory");
}

// Whether the barrier's phase of the given parity has completed, without waiting.
__device__ __forceinline__ bool barrier_test(uint32_t barrier, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "mbarrier.test_wait.parity.shared::cta.b64 done, [%1], %2;\n"
      "selp.u32 %0, 1, 0, done;\n"
      "}\n"
      : "=r"(done)
      : "r"(barrier), "r"(parity)
      : "memory");
  return done != 0;
}

// ---- copies into shared memory -------------------------------------------------------------------------
// A 4-D box of the tensor map at signed coordinates (innermost first); elements outside the tensor are
// filled with zeros, and the whole box's bytes count towards the barrier.
__device__ __forceinline__ void tma_load_4d(uint32_t destination, const CUtensorMap* map, uint32_t barrier, int c0,
                                            int c1, int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(
          destination),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(barrier), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}

// A contiguous copy (16-byte aligned addresses, a multiple of 16 bytes).
__device__ __forceinline__ void bulk_load(uint32_t destination, const void* source, uint32_t bytes, uint32_t barrier) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(destination),
      "l"(reinterpret_cast<uint64_t>(source)), "r"(bytes), "r"(barrier)
      : "memory");
}

// ---- copies out of shared memory ---------------------------------------------------------------------
// A contiguous shared -> global copy by the copy engine (16-byte aligned addresses, a multiple of 16
// bytes), in this thread's bulk group. Shared memory written with ordinary stores needs
// async_proxy_fence() in the writing threads (and a barrier) first.
__device__ __forceinline__ void bulk_store(void* destination, uint32_t source, uint32_t bytes) {
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(
                   reinterpret_cast<uint64_t>(destination)),
               "r"(source), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Until at most `Pending` of this thread's latest bulk store groups are still reading their shared
// memory (the sources of the others may then be rewritten).
template <int Pending>
__device__ __forceinline__ void bulk_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(Pending) : "memory");
}
// Until this thread's bulk stores are complete.
__device__ __forceinline__ void bulk_wait() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }
__device__ __forceinline__ void async_proxy_fence() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// ---- wgmma ordering ----------------------------------------------------------------------------------
// Before a wgmma whose register operands (A fragments, accumulators) other instructions wrote.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most `Pending` committed groups of this warpgroup are still running.
template <int Pending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
}

// Keeps the compiler from moving register accesses of `value` across the wgmma ordering points.
__device__ __forceinline__ void register_fence(float& value) { asm volatile("" : "+f"(value)::"memory"); }
__device__ __forceinline__ void register_fence(uint32_t& value) { asm volatile("" : "+r"(value)::"memory"); }

// ---- registers per thread of a warpgroup --------------------------------------------------------------
template <int Registers>
__device__ __forceinline__ void raise_register_limit() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Registers));
}
template <int Registers>
__device__ __forceinline__ void lower_register_limit() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Registers));
}

// ---- wgmma shared-memory matrix descriptor ------------------------------------------------------------
// K-major, no swizzle ("interleave"): 8 rows x 16 bytes per core matrix, rows 16 bytes apart; core
// matrices along N `stride_bytes` apart, the two along K of one instruction `leading_bytes` apart.
__device__ __forceinline__ uint64_t matrix_descriptor(uint32_t shared_byte_address, uint32_t leading_bytes,
                                                      uint32_t stride_bytes) {
  uint64_t descriptor = 0;
  descriptor |= uint64_t((shared_byte_address >> 4) & 0x3FFF);
  descriptor |= uint64_t((leading_bytes >> 4) & 0x3FFF) << 16;
  descriptor |= uint64_t((stride_bytes >> 4) & 0x3FFF) << 32;
  return descriptor;  // base offset 0, layout type 0 (no swizzle)
}

// float32 -> TF32, rounded to nearest (the tensor cores would otherwise truncate).
__device__ __forceinline__ uint32_t to_tf32(float value) {
  uint32_t result;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(result) : "f"(value));
  return result;
}

}  // namespace custom_ops::conv1d::cuda::hopper
