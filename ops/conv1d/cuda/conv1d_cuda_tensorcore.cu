// Launcher of the tensor-core kernel (conv1d_tensorcore_kernel.cuh): re-lays out the weights into
// fragments (one small kernel), then runs the implicit GEMM on a persistent grid.

#include "ops/conv1d/cuda/conv1d_cuda_launch.h"
#include "ops/conv1d/cuda/conv1d_tensorcore_kernel.cuh"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>

namespace custom_ops::conv1d::cuda {

// Warps along O and L, mma tiles per warp along O and L, operand words per chunk, window, blocks/SM.
// The large tile runs one block of 8 warps per SM: capped at 128 registers for two blocks, it spilled
// the staged input registers right after their loads, which serialised the prefetch (bf16 headline
// 2.48 -> 2.06 ms without the cap). 3xTF32 keeps a second accumulator (see the kernel), so its large
// tile is half as tall, and two blocks per SM measured faster for it despite small spills.
using TensorCoreLarge = TensorCoreConfig<2, 4, 4, 4, 16, TensorCoreLimits::kLargeWindow, 1>;       // 128 x 128
using TensorCoreLargeSplit = TensorCoreConfig<2, 4, 2, 4, 16, TensorCoreLimits::kLargeWindow, 2>;  // 64 x 128
// 33-64 output channels a group (and grad_input of the headline's backward): half the large tile's
// channels, so no mma works on padding rows; 3xTF32 uses the large split tile, already 64 rows.
using TensorCoreMedium = TensorCoreConfig<1, 8, 4, 2, 16, TensorCoreLimits::kLargeWindow, 1>;      // 64 x 128
using TensorCoreSmall = TensorCoreConfig<1, 8, 2, 4, 16, TensorCoreLimits::kSmallWindow, 2>;       // 32 x 256
// Strides > 1 and long halos: a quarter of the large tile's positions in a window of 320.
using TensorCoreWideWindow = TensorCoreConfig<2, 4, 4, 2, 16, TensorCoreLimits::kWideWindow, 1>;       // 128 x 64
using TensorCoreWideWindowSplit = TensorCoreConfig<2, 4, 2, 2, 16, TensorCoreLimits::kWideWindow, 2>;  // 64 x 64
static_assert(TensorCoreLarge::kTileL == TensorCoreLimits::kLargeTileL, "dispatch table and kernel agree");
static_assert(TensorCoreLargeSplit::kTileL == TensorCoreLimits::kLargeTileL, "dispatch table and kernel agree");
static_assert(TensorCoreSmall::kTileL == TensorCoreLimits::kSmallTileL, "dispatch table and kernel agree");
static_assert(TensorCoreMedium::kTileL == TensorCoreLimits::kLargeTileL, "dispatch table and kernel agree");
static_assert(TensorCoreWideWindow::kTileL == TensorCoreLimits::kWideWindowTileL &&
                  TensorCoreWideWindowSplit::kTileL == TensorCoreLimits::kWideWindowTileL,
              "dispatch table and kernel agree");

namespace {

template <typename scalar_t, typename Config, bool kSplit>
void launch(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
            const Geometry& g) {
  constexpr int kPerWord = kElemsPerWord<scalar_t>, kParts = kWeightParts<kSplit>;
  TORCH_CHECK(g.in_channels_per_group() < (int64_t{1} << 30) && g.out_channels < (int64_t{1} << 31),
              "custom::conv1d: expected fewer than 2^30 channels per group, but got ", g.in_channels_per_group());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const int64_t C_g = g.in_channels_per_group(), O_g = g.out_channels_per_group();

  TensorCoreArgs<scalar_t> args;
  args.channel_words = static_cast<int>((C_g + kPerWord - 1) / kPerWord);
  args.chunks = (args.channel_words + Config::kChunkWords - 1) / Config::kChunkWords;
  args.out_tiles = static_cast<int>((O_g + Config::kTileO - 1) / Config::kTileO);
  args.m_tiles = args.out_tiles * (Config::kTileO / 16);

  // Weights -> fragments (zero-padded to whole tiles and word steps).
  const int64_t fragments = g.groups * args.m_tiles * args.chunks * g.kernel_size * (Config::kChunkWords / 8);
  at::Tensor fragment_buffer = at::empty({fragments * kParts * 32 * 4}, input.options().dtype(at::kInt));
  {
    const auto kernel = prepare_weight_fragments<scalar_t, Config::kChunkWords, kSplit>;
    const int64_t threads = fragments * 32;
    const int blocks = static_cast<int>(std::min<int64_t>((threads + 255) / 256, 65535));
    kernel<<<blocks, 256, 0, stream>>>(weight.const_data_ptr<scalar_t>(),
                                       reinterpret_cast<uint4*>(fragment_buffer.mutable_data_ptr<int32_t>()),
                                       static_cast<int>(g.groups), args.m_tiles, args.chunks,
                                       static_cast<int>(g.kernel_size), static_cast<int>(C_g), static_cast<int>(O_g));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  args.input = input.const_data_ptr<scalar_t>();
  args.weight_fragments = reinterpret_cast<const uint4*>(fragment_buffer.const_data_ptr<int32_t>());
  args.bias = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
  args.output = out.mutable_data_ptr<scalar_t>();
  args.input_stride_n = input.stride(0);
  args.input_stride_c = input.stride(1);
  args.input_stride_l = input.stride(2);
  args.in_length = g.in_length;
  args.out_length = g.out_length;
  args.in_channels_per_group = static_cast<int>(C_g);
  args.out_channels_per_group = static_cast<int>(O_g);
  args.out_channels = static_cast<int>(g.out_channels);
  args.groups = static_cast<int>(g.groups);
  args.kernel_size = static_cast<int>(g.kernel_size);
  args.stride = static_cast<int>(g.stride);
  args.dilation = static_cast<int>(g.dilation);
  args.pad_left = static_cast<int>(g.pad_left);
  args.length_tiles = (g.out_length + Config::kTileL - 1) / Config::kTileL;
  args.total_tiles = g.batch * g.groups * args.out_tiles * args.length_tiles;
  args.vector_loads = rows_are_16_byte_vectors(input);

  // Weights of a block tile resident in shared memory when they fit beside the stages.
  const int64_t tile_fragment_bytes = int64_t(Config::kTileO / 16) * args.chunks * g.kernel_size *
                                      (Config::kChunkWords / 8) * kParts * 32 * 16;
  // Shared memory a block may use and still leave room for Config::kMinBlocks blocks per SM.
  const cudaDeviceProp* props = at::cuda::getCurrentDeviceProperties();
  const int64_t max_shared = std::min<int64_t>(int64_t(props->sharedMemPerBlockOptin),
                                               int64_t(props->sharedMemPerMultiprocessor) / Config::kMinBlocks - 1024);
  args.weights_resident = Config::kSharedBytes + tile_fragment_bytes <= max_shared;
  const int shared_bytes =
      static_cast<int>(Config::kSharedBytes + (args.weights_resident ? tile_fragment_bytes : 0));

  const auto kernel = conv1d_tensorcore_kernel<scalar_t, Config, kSplit>;
  const int64_t resident =
      int64_t(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) *
      resident_blocks_per_sm(reinterpret_cast<const void*>(kernel), Config::kThreads, shared_bytes);
  const int64_t grid = std::min<int64_t>(args.total_tiles, resident);
  kernel<<<static_cast<unsigned>(grid), Config::kThreads, shared_bytes, stream>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename Config, typename SplitConfig>
void launch_config(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
                   const Geometry& g, bool allow_tf32) {
  switch (input.scalar_type()) {
    case at::kFloat:
      if (allow_tf32) return launch<float, Config, false>(input, weight, bias, out, g);
      return launch<float, SplitConfig, true>(input, weight, bias, out, g);
    case at::kHalf:
      return launch<c10::Half, Config, false>(input, weight, bias, out, g);
    case at::kBFloat16:
      return launch<c10::BFloat16, Config, false>(input, weight, bias, out, g);
    default:
      TORCH_INTERNAL_ASSERT(false, "custom::conv1d: no tensor-core kernel for ", input.scalar_type());
  }
}

}  // namespace

void launch_tensorcore(KernelChoice choice, const at::Tensor& input, const at::Tensor& weight,
                       const at::Tensor& bias, at::Tensor& out, const Geometry& g, bool allow_tf32) {
  switch (choice) {
    case KernelChoice::kTensorCoreLarge:
      return launch_config<TensorCoreLarge, TensorCoreLargeSplit>(input, weight, bias, out, g, allow_tf32);
    case KernelChoice::kTensorCoreMedium:
      return launch_config<TensorCoreMedium, TensorCoreLargeSplit>(input, weight, bias, out, g, allow_tf32);
    case KernelChoice::kTensorCoreSmall:
      return launch_config<TensorCoreSmall, TensorCoreSmall>(input, weight, bias, out, g, allow_tf32);
    case KernelChoice::kTensorCoreWideWindow:
      return launch_config<TensorCoreWideWindow, TensorCoreWideWindowSplit>(input, weight, bias, out, g, allow_tf32);
    default:
      TORCH_INTERNAL_ASSERT(false, "custom::conv1d: not a tensor-core kernel");
  }
}

}  // namespace custom_ops::conv1d::cuda
