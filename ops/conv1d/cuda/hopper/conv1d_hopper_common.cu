// Host side shared by the Hopper kernels: the precision switch, the input's tensor map, and whether a
// device can run the family.

#include "ops/conv1d/cuda/hopper/conv1d_hopper.h"
#include "ops/conv1d/cuda/hopper/grad_weight_hopper.h"
#include "ops/conv1d/cuda/hopper/hopper_ptx.cuh"
#include "ops/conv1d/cuda/hopper/hopper_tensor_map.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cudaTypedefs.h>

#include <mutex>
#include <vector>

namespace custom_ops::conv1d::cuda {

void launch_hopper_tf32(const HopperPlan&, const at::Tensor&, const WeightView&, const at::Tensor&, at::Tensor&,
                        const Geometry&);
void launch_hopper_3xtf32(const HopperPlan&, const at::Tensor&, const WeightView&, const at::Tensor&, at::Tensor&,
                          const Geometry&);
void launch_hopper_fp16(const HopperPlan&, const at::Tensor&, const WeightView&, const at::Tensor&, at::Tensor&,
                        const Geometry&);
void launch_hopper_bf16(const HopperPlan&, const at::Tensor&, const WeightView&, const at::Tensor&, at::Tensor&,
                        const Geometry&);

void launch_hopper(const HopperPlan& plan, const at::Tensor& input, const WeightView& weights, const at::Tensor& bias,
                   at::Tensor& out, const Geometry& g) {
  switch (plan.precision) {
    case HopperPrecision::kTF32: return launch_hopper_tf32(plan, input, weights, bias, out, g);
    case HopperPrecision::k3xTF32: return launch_hopper_3xtf32(plan, input, weights, bias, out, g);
    case HopperPrecision::kFP16: return launch_hopper_fp16(plan, input, weights, bias, out, g);
    case HopperPrecision::kBF16: return launch_hopper_bf16(plan, input, weights, bias, out, g);
  }
}

void launch_grad_weight_hopper_tf32(const GradWeightHopperPlan&, const at::Tensor&, const at::Tensor&, at::Tensor&,
                                    at::Tensor*, const Geometry&);
void launch_grad_weight_hopper_fp16(const GradWeightHopperPlan&, const at::Tensor&, const at::Tensor&, at::Tensor&,
                                    at::Tensor*, const Geometry&);
void launch_grad_weight_hopper_bf16(const GradWeightHopperPlan&, const at::Tensor&, const at::Tensor&, at::Tensor&,
                                    at::Tensor*, const Geometry&);

void launch_grad_weight_hopper(const GradWeightHopperPlan& plan, const at::Tensor& grad_output,
                               const at::Tensor& input, at::Tensor& grad_weight, at::Tensor* grad_bias,
                               const Geometry& g) {
  switch (plan.precision) {
    case HopperPrecision::kTF32:
      return launch_grad_weight_hopper_tf32(plan, grad_output, input, grad_weight, grad_bias, g);
    case HopperPrecision::kFP16:
      return launch_grad_weight_hopper_fp16(plan, grad_output, input, grad_weight, grad_bias, g);
    case HopperPrecision::kBF16:
      return launch_grad_weight_hopper_bf16(plan, grad_output, input, grad_weight, grad_bias, g);
    case HopperPrecision::k3xTF32: break;
  }
  TORCH_INTERNAL_ASSERT(false, "custom::conv1d: no Hopper grad_weight kernel for strict float32");
}

namespace hopper {

namespace {

// Has a body only where compiled for sm_90a; its attributes say which code the device would run.
__global__ void hopper_probe_kernel(int* flag) {
#if CUSTOM_OPS_HOPPER_DEVICE_CODE
  *flag = 1;
#endif
}

// cuTensorMapEncodeTiled through the runtime's driver entry point: no link against libcuda.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* function = nullptr;
    cudaDriverEntryPointQueryResult found{};
    C10_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &function, 12000, cudaEnableDefault,
                                                    &found));
    TORCH_CHECK(found == cudaDriverEntryPointSuccess && function != nullptr,
                "custom::conv1d: the CUDA driver offers no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(function);
  }();
  return encode;
}

}  // namespace

CUtensorMap encode_rows_map(const at::Tensor& t, int64_t length, int64_t rows_per_group, int64_t groups,
                            uint32_t box_positions, uint32_t box_rows, bool swizzle_128) {
  const int64_t element_size = t.element_size();
  CUtensorMapDataType type = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  if (t.scalar_type() == at::kHalf) type = CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  if (t.scalar_type() == at::kBFloat16) type = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  const int64_t batch = t.size(0);
  const int64_t stride_c = t.stride(1) * element_size;
  // With one batch row its stride is never used; any valid value will do.
  const int64_t stride_n = batch > 1 ? t.stride(0) * element_size : groups * rows_per_group * stride_c;
  const cuuint64_t dims[4] = {cuuint64_t(length), cuuint64_t(rows_per_group), cuuint64_t(groups), cuuint64_t(batch)};
  const cuuint64_t strides[3] = {cuuint64_t(stride_c), cuuint64_t(rows_per_group * stride_c), cuuint64_t(stride_n)};
  const cuuint32_t box[4] = {box_positions, box_rows, 1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  CUtensorMap map;
  const CUresult result = tensor_map_encoder()(
      &map, type, 4, const_cast<void*>(t.const_data_ptr()), dims, strides, box, element_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle_128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  TORCH_CHECK(result == CUDA_SUCCESS, "custom::conv1d: cuTensorMapEncodeTiled failed (error ", int(result),
              ") for a tensor of sizes ", t.sizes(), " and strides ", t.strides());
  return map;
}

CUtensorMap encode_input_map(const at::Tensor& input, const Geometry& g, const HopperPlan& plan) {
  return encode_rows_map(input, g.in_length, g.in_channels_per_group(), g.groups, uint32_t(plan.window_pitch),
                         uint32_t(plan.chunk_channels), false);
}

}  // namespace hopper

bool hopper_runs_on(int device_index) {
  static std::mutex mutex;
  static std::vector<int> known;  // per device: -1 not asked yet, 0 no, 1 yes
  const std::lock_guard<std::mutex> lock(mutex);
  if (known.empty()) known.assign(at::cuda::device_count(), -1);
  if (device_index < 0 || device_index >= static_cast<int>(known.size())) return false;
  if (known[device_index] < 0) {
    const cudaDeviceProp* props = at::cuda::getDeviceProperties(device_index);
    bool runs = props->major == 9 && props->minor == 0;
    if (runs) {
      // sm_90a machine code, not PTX of an older target compiled for this device at load time. The guard
      // (not a bare cudaSetDevice back) leaves no context behind on a device this thread never used.
      cudaFuncAttributes attributes{};
      cudaError_t status;
      {
        const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_index));
        status = cudaFuncGetAttributes(&attributes, hopper::hopper_probe_kernel);
      }
      if (status != cudaSuccess) (void)cudaGetLastError();
      runs = status == cudaSuccess && attributes.binaryVersion == 90 && attributes.ptxVersion >= 90;
    }
    known[device_index] = runs ? 1 : 0;
  }
  return known[device_index] == 1;
}

}  // namespace custom_ops::conv1d::cuda
