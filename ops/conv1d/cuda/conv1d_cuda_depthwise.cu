// Launcher of the depthwise kernel (conv1d_depthwise_kernel.cuh).

#include "ops/conv1d/cuda/conv1d_cuda_launch.h"
#include "ops/conv1d/cuda/conv1d_depthwise_kernel.cuh"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>

namespace custom_ops::conv1d::cuda {

using Depthwise = DepthwiseConfig<256, 8>;  // 2048 positions per tile
static_assert(Depthwise::kTileL == DepthwiseLimits::kTileL, "dispatch table and kernel agree");

namespace {

template <typename scalar_t>
void launch(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
            const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const cudaDeviceProp* props = at::cuda::getCurrentDeviceProperties();
  DepthwiseArgs<scalar_t> args;
  args.input = input.const_data_ptr<scalar_t>();
  args.weight = weight.const_data_ptr<scalar_t>();
  args.bias = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
  args.output = out.mutable_data_ptr<scalar_t>();
  args.input_stride_n = input.stride(0);
  args.input_stride_c = input.stride(1);
  args.input_stride_l = input.stride(2);
  args.in_length = g.in_length;
  args.out_length = g.out_length;
  args.out_channels = g.out_channels;
  args.groups = g.groups;
  args.out_channels_per_group = g.out_channels_per_group();
  args.kernel_size = g.kernel_size;
  args.stride = g.stride;
  args.dilation = g.dilation;
  args.pad_left = g.pad_left;
  args.length_tiles = (g.out_length + Depthwise::kTileL - 1) / Depthwise::kTileL;
  // A channel multiplier reuses each staged window for a run of output channels; split the runs only
  // as far as needed to give every SM several tiles.
  const int64_t base_tiles = g.batch * g.groups * args.length_tiles;
  const int64_t wanted_tiles = int64_t(props->multiProcessorCount) * 32;
  const int64_t runs = std::clamp<int64_t>((wanted_tiles + base_tiles - 1) / base_tiles, 1, args.out_channels_per_group);
  args.run_length = (args.out_channels_per_group + runs - 1) / runs;
  args.channel_runs = (args.out_channels_per_group + args.run_length - 1) / args.run_length;
  args.total_tiles = base_tiles * args.channel_runs;
  args.window = static_cast<int>(depthwise_window(g, sizeof(scalar_t)));
  args.vector_loads = rows_are_16_byte_vectors(input);

  const auto kernel = conv1d_depthwise_kernel<scalar_t, acc_t, Depthwise>;
  const size_t shared_bytes = size_t(args.window) * sizeof(acc_t);
  const int64_t resident = int64_t(props->multiProcessorCount) *
                           resident_blocks_per_sm(reinterpret_cast<const void*>(kernel), Depthwise::kThreads, shared_bytes);
  const int64_t grid = std::min<int64_t>(args.total_tiles, resident * 4);
  kernel<<<static_cast<unsigned>(grid), Depthwise::kThreads, shared_bytes, at::cuda::getCurrentCUDAStream()>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void launch_depthwise(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
                      const Geometry& g) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d (CUDA depthwise)",
                                  [&] { launch<scalar_t>(input, weight, bias, out, g); });
}

}  // namespace custom_ops::conv1d::cuda
