// CUDA entry of custom::conv1d: picks a kernel for the shape (the dispatch table below) and launches it
// on the current stream of the input's device. No host synchronisation; memory from the caching
// allocator only.

#include "ops/conv1d/conv1d_kernels.h"
#include "ops/conv1d/cuda/conv1d_cuda_dispatch.h"
#include "ops/conv1d/cuda/conv1d_direct_kernel.cuh"

#include <ATen/Context.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <type_traits>

namespace custom_ops::conv1d {
namespace cuda {

// The tile configurations of the direct kernel (threads along O, along L, accumulators per thread
// along O, along L, reduction rows per chunk, blocks per SM). Few instantiations on purpose: each is
// compiled for several dtypes.
using DirectLarge = DirectConvConfig<16, 16, 8, 8, 16, 1>;  // 128 channels x 128 positions, 256 threads
using DirectWide = DirectConvConfig<8, 32, 4, 4, 16, 2>;    // 32 channels x 128 positions
using DirectNarrow = DirectConvConfig<1, 256, 1, 2, 8, 2>;  // 1 channel x 512 positions, for depthwise-like

// ---------------------------------------------------------------------------------------------------
// Dispatch table: which kernel serves which shapes.
//   out channels per group >= 64, float32/16-bit -> direct_large  (8x8 outputs per thread; float64
//                                                                   would not fit its registers)
//   out channels per group >= 8                  -> direct_wide   (a tile of 32 channels shares each
//                                                                   input load)
//   otherwise                                    -> direct_narrow (depthwise and few-channel groups)
// float32 with TF32 allowed still runs full-precision FFMA here; that satisfies both policies, and the
// tensor-core kernels that use TF32 will slot into this table.
// ---------------------------------------------------------------------------------------------------
KernelChoice select_kernel(const Geometry& g, c10::ScalarType dtype, bool allow_tf32) {
  (void)allow_tf32;
  const int64_t O_g = g.out_channels_per_group();
  if (O_g >= 64 && dtype != at::kDouble) return KernelChoice::kDirectLarge;
  if (O_g >= 8) return KernelChoice::kDirectWide;
  return KernelChoice::kDirectNarrow;
}

const char* kernel_name(KernelChoice choice) {
  switch (choice) {
    case KernelChoice::kDirectLarge: return "direct_large";
    case KernelChoice::kDirectWide: return "direct_wide";
    case KernelChoice::kDirectNarrow: return "direct_narrow";
  }
  return "unknown";
}

namespace {

template <typename scalar_t, typename Config>
void launch_direct(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
                   const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  TORCH_CHECK(g.in_channels_per_group() * g.kernel_size < (int64_t{1} << 31),
              "custom::conv1d: expected in_channels / groups * kernel_size below 2^31, but got ",
              g.in_channels_per_group(), " * ", g.kernel_size);
  DirectConvArgs<scalar_t> args;
  args.input = input.const_data_ptr<scalar_t>();
  args.weight = weight.const_data_ptr<scalar_t>();
  args.bias = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
  args.output = out.mutable_data_ptr<scalar_t>();
  args.input_stride_n = input.stride(0);
  args.input_stride_c = input.stride(1);
  args.input_stride_l = input.stride(2);
  args.in_length = g.in_length;
  args.out_length = g.out_length;
  args.in_channels_per_group = g.in_channels_per_group();
  args.out_channels_per_group = g.out_channels_per_group();
  args.out_channels = g.out_channels;
  args.groups = g.groups;
  args.kernel_size = g.kernel_size;
  args.stride = g.stride;
  args.dilation = g.dilation;
  args.pad_left = g.pad_left;
  args.out_tiles = (args.out_channels_per_group + Config::kTileO - 1) / Config::kTileO;
  args.length_tiles = (g.out_length + Config::kTileL - 1) / Config::kTileL;
  args.total_tiles = g.batch * g.groups * args.out_tiles * args.length_tiles;

  // A persistent grid: as many blocks as fit on the GPU at once, each looping over tiles.
  const auto kernel = conv1d_direct_kernel<scalar_t, acc_t, Config>;
  static const int blocks_per_sm = [&] {
    int blocks = 0;
    C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, Config::kThreads, 0));
    return std::max(blocks, 1);
  }();
  const int64_t resident = int64_t(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * blocks_per_sm;
  const int64_t grid = std::min<int64_t>(args.total_tiles, resident);
  kernel<<<static_cast<unsigned>(grid), Config::kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace
}  // namespace cuda

at::Tensor conv1d_forward_cuda(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, const Geometry& g) {
  const c10::cuda::CUDAGuard device_guard(input.device());
  at::Tensor out = at::empty({g.batch, g.out_channels, g.out_length}, input.options());
  if (out.numel() == 0) return out;
  const at::Tensor w = weight.contiguous();
  const at::Tensor b = (bias.has_value() && bias->defined()) ? bias->contiguous() : at::Tensor();
  // aten's convolution decides TF32 from the cuDNN/conv flag (torch.backends.cudnn.allow_tf32).
  const bool allow_tf32 = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
  const cuda::KernelChoice choice = cuda::select_kernel(g, input.scalar_type(), allow_tf32);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d (CUDA)", [&] {
    switch (choice) {
      case cuda::KernelChoice::kDirectLarge:
        if constexpr (!std::is_same_v<scalar_t, double>) {
          cuda::launch_direct<scalar_t, cuda::DirectLarge>(input, w, b, out, g);
          break;
        }
        TORCH_INTERNAL_ASSERT(false, "direct_large is not built for float64");
      case cuda::KernelChoice::kDirectWide:
        cuda::launch_direct<scalar_t, cuda::DirectWide>(input, w, b, out, g);
        break;
      case cuda::KernelChoice::kDirectNarrow:
        cuda::launch_direct<scalar_t, cuda::DirectNarrow>(input, w, b, out, g);
        break;
    }
  });
  return out;
}

}  // namespace custom_ops::conv1d
