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
static_assert(Depthwise::kTileL == DepthwiseLimits::kTileL && Depthwise::kPerThread == DepthwiseLimits::kPerThread,
              "dispatch table and kernel agree");

namespace {

// The sliding-window kernel for K taps (1 <= K <= DepthwiseLimits::kSlidingMaxTaps).
template <typename scalar_t, typename acc_t>
const void* sliding_kernel(int64_t taps) {
  switch (taps) {
    case 1: return reinterpret_cast<const void*>(conv1d_depthwise_sliding_kernel<scalar_t, acc_t, Depthwise, 1>);
    case 2: return reinterpret_cast<const void*>(conv1d_depthwise_sliding_kernel<scalar_t, acc_t, Depthwise, 2>);
    case 3: return reinterpret_cast<const void*>(conv1d_depthwise_sliding_kernel<scalar_t, acc_t, Depthwise, 3>);
    case 4: return reinterpret_cast<const void*>(conv1d_depthwise_sliding_kernel<scalar_t, acc_t, Depthwise, 4>);
  }
  TORCH_INTERNAL_ASSERT(false, "custom::conv1d: no sliding depthwise kernel for K = ", taps);
  return nullptr;
}
static_assert(DepthwiseLimits::kSlidingMaxTaps == 4, "sliding_kernel instantiates K = 1 .. kSlidingMaxTaps");

template <typename scalar_t>
void launch(KernelChoice choice, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
            at::Tensor& out, const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const bool sliding = choice == KernelChoice::kDepthwiseSliding;
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
  // Sliding: tiles shifted left so that each tile's first input position is 16-byte aligned.
  const int64_t vec = 16 / int64_t(sizeof(scalar_t));
  args.tile_shift = sliding ? static_cast<int>((vec - g.pad_left % vec) % vec) : 0;
  args.length_tiles = (g.out_length + args.tile_shift + Depthwise::kTileL - 1) / Depthwise::kTileL;
  // A channel multiplier reuses each staged window for a run of output channels; split the runs only
  // as far as needed to give every SM several tiles.
  const int64_t base_tiles = g.batch * g.groups * args.length_tiles;
  const int64_t wanted_tiles = int64_t(props->multiProcessorCount) * 32;
  const int64_t runs = std::clamp<int64_t>((wanted_tiles + base_tiles - 1) / base_tiles, 1, args.out_channels_per_group);
  args.run_length = (args.out_channels_per_group + runs - 1) / runs;
  args.channel_runs = (args.out_channels_per_group + args.run_length - 1) / args.run_length;
  args.total_tiles = base_tiles * args.channel_runs;
  args.window = static_cast<int>(sliding ? depthwise_sliding_window(sizeof(scalar_t)) : depthwise_window(g, sizeof(scalar_t)));
  args.vector_loads = rows_are_16_byte_vectors(input);

  const void* kernel = sliding ? sliding_kernel<scalar_t, acc_t>(g.kernel_size)
                               : reinterpret_cast<const void*>(conv1d_depthwise_kernel<scalar_t, acc_t, Depthwise>);
  // The sliding kernel keeps the tile's outputs after the window (aligned: the window is whole vectors).
  const size_t shared_bytes = size_t(args.window + (sliding ? Depthwise::kTileL : 0)) * sizeof(acc_t);
  const int64_t resident =
      int64_t(props->multiProcessorCount) * resident_blocks_per_sm(kernel, Depthwise::kThreads, shared_bytes);
  const int64_t grid = std::min<int64_t>(args.total_tiles, resident * 4);
  void* params[] = {&args};
  C10_CUDA_CHECK(cudaLaunchKernel(kernel, dim3(static_cast<unsigned>(grid)), dim3(Depthwise::kThreads), params,
                                  shared_bytes, at::cuda::getCurrentCUDAStream()));
}

}  // namespace

void launch_depthwise(KernelChoice choice, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
                      at::Tensor& out, const Geometry& g) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "custom::conv1d (CUDA depthwise)",
                                  [&] { launch<scalar_t>(choice, input, weight, bias, out, g); });
}

}  // namespace custom_ops::conv1d::cuda
