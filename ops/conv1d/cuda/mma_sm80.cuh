#pragma once
// Warp-level tensor-core products (mma.sync, sm_80 and later) on 32-bit operand words.
//
// All three element types share one fragment layout when counted in 32-bit words: a word holds one
// TF32 value, or two consecutive reduction elements of a 16-bit type (the lower one in the low half).
// For a lane with g = lane / 4 and t = lane % 4, in words:
//   A (16 x 8 words, row-major):  a0 = A[g][t], a1 = A[g + 8][t], a2 = A[g][t + 4], a3 = A[g + 8][t + 4]
//   B (8 words x 8, k-major):     b0 = B[t][g], b1 = B[t + 4][g]
//   C (16 x 8 floats):            c0 = C[g][2t], c1 = C[g][2t + 1], c2 = C[g + 8][2t], c3 = C[g + 8][2t + 1]
// which is m16n8k8 for TF32 and m16n8k16 for float16/bfloat16 (PTX ISA, "Matrix fragments for mma").

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>

namespace custom_ops::conv1d::cuda {

// Rounds a float to TF32 (to nearest, ties away), as the tensor cores read it; low 13 bits zero.
__device__ __forceinline__ uint32_t round_to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

template <typename scalar_t>
struct MmaOp;

template <>
struct MmaOp<float> {  // TF32 inputs, float32 accumulate
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

template <>
struct MmaOp<c10::BFloat16> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

template <>
struct MmaOp<c10::Half> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

}  // namespace custom_ops::conv1d::cuda
