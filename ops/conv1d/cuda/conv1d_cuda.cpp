// CUDA entry of custom::conv1d: picks a kernel for the shape (the table in conv1d_cuda_dispatch.cpp)
// and launches it on the current stream of the input's device. No host synchronisation; memory from
// the caching allocator only.

#include "ops/conv1d/conv1d_kernels.h"
#include "ops/conv1d/cuda/conv1d_cuda_dispatch.h"
#include "ops/conv1d/cuda/conv1d_cuda_launch.h"
#include "ops/conv1d/cuda/conv1d_repack.h"
#include "ops/conv1d/cuda/conv1d_weight_view.h"
#include "ops/conv1d/cuda/hopper/conv1d_hopper.h"

#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>

#include <map>
#include <mutex>
#include <tuple>

namespace custom_ops::conv1d {

namespace cuda {

bool rows_are_16_byte_vectors(const at::Tensor& input) {
  const int64_t vec = 16 / input.element_size();
  return input.stride(2) == 1 && input.stride(1) % vec == 0 && (input.size(0) == 1 || input.stride(0) % vec == 0) &&
         reinterpret_cast<uintptr_t>(input.const_data_ptr()) % 16 == 0;
}

int resident_blocks_per_sm(const void* kernel, int threads, size_t dynamic_shared_bytes) {
  // Asked on every launch, answered by the driver once per (kernel, device, block shape): the launch
  // path then does no driver queries. Raising the dynamic shared-memory limit belongs to the same
  // once-per-key setup (it is per device, and needed before both the query and the launch).
  using Key = std::tuple<const void*, int, int, size_t>;
  static std::mutex mutex;
  static std::map<Key, int> known;
  const Key key{kernel, c10::cuda::current_device(), threads, dynamic_shared_bytes};
  const std::lock_guard<std::mutex> lock(mutex);
  if (const auto it = known.find(key); it != known.end()) return it->second;
  if (dynamic_shared_bytes > 48 * 1024) {  // to the device's maximum, so no key ever lowers it for another
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin)));
  }
  int blocks = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, dynamic_shared_bytes));
  return known[key] = blocks > 0 ? blocks : 1;
}

}  // namespace cuda

at::Tensor conv1d_forward_cuda(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, const Geometry& g) {
  return conv1d_forward_cuda(input, cuda::WeightView::of(weight.contiguous(), g), bias, g);
}

at::Tensor conv1d_forward_cuda(const at::Tensor& input, const cuda::WeightView& weights,
                               const std::optional<at::Tensor>& bias, const Geometry& g) {
  const c10::cuda::CUDAGuard device_guard(input.device());
  at::Tensor out = at::empty({g.batch, g.out_channels, g.out_length}, input.options());
  if (out.numel() == 0) return out;
  const at::Tensor b = (bias.has_value() && bias->defined()) ? bias->contiguous() : at::Tensor();
  // aten's convolution decides TF32 from the cuDNN/conv flag (torch.backends.cudnn.allow_tf32).
  const bool allow_tf32 = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
  const cuda::KernelTarget target = cuda::kernel_target(input, cuda::hopper_runs_on(input.device().index()));
  const cuda::KernelChoice choice = cuda::select_kernel(g, input.scalar_type(), allow_tf32, target);
  switch (choice) {
    case cuda::KernelChoice::kHopper:
    case cuda::KernelChoice::kHopperRepacked: {
      const auto plan = cuda::plan_hopper(g, input.scalar_type(), allow_tf32);
      TORCH_INTERNAL_ASSERT(plan.has_value());
      const at::Tensor x = choice == cuda::KernelChoice::kHopper ? input : cuda::repack_rows_for_tma(input);
      cuda::launch_hopper(*plan, x, weights, b, out, g);  // reads the view in place
      break;
    }
    case cuda::KernelChoice::kTensorCoreLarge:
    case cuda::KernelChoice::kTensorCoreMedium:
    case cuda::KernelChoice::kTensorCoreSmall:
    case cuda::KernelChoice::kTensorCoreWideWindow:
      cuda::launch_tensorcore(choice, input, weights.materialize(g), b, out, g, allow_tf32);
      break;
    case cuda::KernelChoice::kDepthwiseSliding:
    case cuda::KernelChoice::kDepthwise:
      cuda::launch_depthwise(choice, input, weights.materialize(g), b, out, g);
      break;
    case cuda::KernelChoice::kDirectLarge:
    case cuda::KernelChoice::kDirectWide:
    case cuda::KernelChoice::kDirectNarrow:
      cuda::launch_direct(choice, input, weights.materialize(g), b, out, g);
      break;
  }
  return out;
}

}  // namespace custom_ops::conv1d
