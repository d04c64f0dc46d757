// Launcher of the general CUDA-core kernel (conv1d_direct_kernel.cuh): the fallback for the shapes the
// fast kernels do not serve (float64, strides > 1, long halos).

#include "ops/conv1d/cuda/conv1d_cuda_launch.h"
#include "ops/conv1d/cuda/conv1d_direct_kernel.cuh"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>

#include <algorithm>
#include <type_traits>

namespace custom_ops::conv1d::cuda {

// Tile configurations (threads along O, along L, accumulators per thread along O, along L, reduction
// rows per chunk, blocks per SM). Few instantiations on purpose: each is compiled for several dtypes.
using DirectLarge = DirectConvConfig<16, 16, 8, 8, 16, 1>;  // 128 channels x 128 positions, 256 threads
using DirectWide = DirectConvConfig<8, 32, 4, 4, 16, 2>;    // 32 channels x 128 positions
using DirectNarrow = DirectConvConfig<1, 256, 1, 2, 8, 2>;  // 1 channel x 512 positions

namespace {

template <typename scalar_t, typename Config>
void launch(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
            const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  // The kernel walks the reduction (C_g x K rows) in 32-bit chunks of Config::kChunk rows.
  TORCH_CHECK(g.in_channels_per_group() * g.kernel_size <= (int64_t{1} << 31) - Config::kChunk,
              "custom::conv1d: expected in_channels / groups * kernel_size at most 2^31 - ", Config::kChunk,
              ", but got ", g.in_channels_per_group(), " * ", g.kernel_size);
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
  const int64_t resident = int64_t(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) *
                           resident_blocks_per_sm(reinterpret_cast<const void*>(kernel), Config::kThreads, 0);
  const int64_t grid = std::min<int64_t>(args.total_tiles, resident);
  kernel<<<static_cast<unsigned>(grid), Config::kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void launch_direct(KernelChoice choice, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
                   at::Tensor& out, const Geometry& g) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d (CUDA direct)", [&] {
    switch (choice) {
      case KernelChoice::kDirectLarge:
        if constexpr (!std::is_same_v<scalar_t, double>) {
          launch<scalar_t, DirectLarge>(input, weight, bias, out, g);
          return;
        }
        break;  // float64 would not fit this tile's registers; never selected for it
      case KernelChoice::kDirectWide:
        launch<scalar_t, DirectWide>(input, weight, bias, out, g);
        return;
      case KernelChoice::kDirectNarrow:
        launch<scalar_t, DirectNarrow>(input, weight, bias, out, g);
        return;
      default:
        break;
    }
    TORCH_INTERNAL_ASSERT(false, "custom::conv1d: ", kernel_name(choice, input.scalar_type(), false),
                          " is not a direct kernel for this dtype");
  });
}

}  // namespace custom_ops::conv1d::cuda
