// Run-time choice of the CPU kernels' instruction set (cpu_microkernel.h).

#include "ops/conv1d/cpu/cpu_microkernel.h"

#include <cstdlib>
#include <cstring>

namespace custom_ops::conv1d::cpu {
namespace {

Isa detect_isa() {
  Isa best = Isa::kGeneric;
#ifdef CUSTOM_OPS_X86_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::kAvx2;
  if (best == Isa::kAvx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    best = Isa::kAvx512;
  if (best == Isa::kAvx512 && __builtin_cpu_supports("avx512bf16")) best = Isa::kAvx512Bf16;
#endif
  if (const char* env = std::getenv("CUSTOM_OPS_CPU_ISA")) {
    Isa asked = best;
    if (std::strcmp(env, "generic") == 0) asked = Isa::kGeneric;
    else if (std::strcmp(env, "avx2") == 0) asked = Isa::kAvx2;
    else if (std::strcmp(env, "avx512") == 0) asked = Isa::kAvx512;
    else if (std::strcmp(env, "avx512bf16") == 0) asked = Isa::kAvx512Bf16;
    if (static_cast<int>(asked) < static_cast<int>(best)) best = asked;
  }
  return best;
}
}  // namespace

Isa cpu_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

}  // namespace custom_ops::conv1d::cpu
