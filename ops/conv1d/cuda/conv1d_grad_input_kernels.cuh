#pragma once
// grad_input of custom::conv1d_backward for one input channel per group and several output channels
// per group (single-channel front ends, channel multipliers):
//
//   grad_input[n, c, p] = sum over the group's o and the taps k with (p + pad_left - k*d) = j*s of
//                         W[o, 0, k] * gy[n, o, j]
//
// The general path (conv1d_backward_cuda.cpp) runs one forward convolution per output phase; for this
// shape each phase is an O_g -> 1 channel convolution that fills 1 row of a 16-row tensor-core tile and
// rereads all of grad_output once per phase. Here a block owns Q = (256 / s) * kItems consecutive
// q (positions p = q*s + rho, every phase rho), stages kOutsPerStage rows of grad_output's window once
// and every phase reads it: grad_output is read once, the sum runs in a fixed order (deterministic).
// Thread t: phase rho = t % s and q = q0 + t / s + (256 / s) * item, so neighbouring threads write
// neighbouring positions.

#include <cstdint>

namespace custom_ops::conv1d::cuda {

struct GradInputOneChannel {
  static constexpr int kThreads = 256, kItems = 4, kOutsPerStage = 16;
  static constexpr int kMaxStride = 32;  // at least 8 q per block
};

struct GradInputOneChannelArgs {
  int64_t batch, channels, in_length, out_length;  // channels = C = groups
  int64_t out_channels_per_group;
  int kernel_size, stride, dilation, pad_left;
  int tap_step, tap_dilation;  // s / gcd(s, d), d / gcd(s, d): the taps of one phase and their gy spacing
  int64_t q_tiles;             // tiles of Q q-values per row
  int window, window_offset;   // staged gy positions per row; first one = q0 + window_offset
};

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(GradInputOneChannel::kThreads)
    grad_input_one_channel_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ weight,
                                  scalar_t* __restrict__ grad_input, const GradInputOneChannelArgs a) {
  using P = GradInputOneChannel;
  constexpr int kItems = P::kItems, kRows = P::kOutsPerStage;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  acc_t* gy_s = reinterpret_cast<acc_t*>(shared_bytes);  // [kRows][window]
  acc_t* w_s = gy_s + kRows * a.window;                   // [kRows][K]

  const int s = a.stride, K = a.kernel_size;
  const int q_groups = P::kThreads / s, Q = q_groups * kItems;
  const int64_t row = blockIdx.x / a.q_tiles;  // (n, c)
  const int64_t q0 = (blockIdx.x % a.q_tiles) * Q;
  const int64_t n = row / a.channels, c = row % a.channels;
  const int64_t O_g = a.out_channels_per_group, O = O_g * a.channels;
  const bool active = threadIdx.x < q_groups * s;
  const int rho = threadIdx.x % s, q_group = threadIdx.x / s;

  // This phase's taps: k_first, k_first + tap_step, ...; tap t reads gy at q + first_offset - t * tap_dilation.
  int k_first = 0;
  while (k_first < min(K, a.tap_step) && ((k_first * a.dilation - rho - a.pad_left) % s + s) % s != 0) ++k_first;
  const int taps = (active && k_first < min(K, a.tap_step)) ? (K - k_first + a.tap_step - 1) / a.tap_step : 0;
  const int first_offset = (rho + a.pad_left - k_first * a.dilation) / s;  // exact where taps > 0
  const int local0 = q_group + first_offset - a.window_offset;             // item 0, tap 0, in the window

  acc_t acc[kItems] = {};
  const int64_t j0 = q0 + a.window_offset;
  for (int64_t o0 = 0; o0 < O_g; o0 += kRows) {
    __syncthreads();  // the previous stage is no longer read
    for (int r = 0; r < kRows; ++r) {
      const int64_t o = o0 + r;
      const scalar_t* src = gy + (n * O + c * O_g + o) * a.out_length;
      for (int i = threadIdx.x; i < a.window; i += P::kThreads) {
        const int64_t j = j0 + i;
        gy_s[r * a.window + i] = (o < O_g && j >= 0 && j < a.out_length) ? static_cast<acc_t>(src[j]) : acc_t(0);
      }
    }
    for (int i = threadIdx.x; i < kRows * K; i += P::kThreads) {
      const int64_t o = o0 + i / K;
      w_s[i] = o < O_g ? static_cast<acc_t>(weight[(c * O_g + o0) * K + i]) : acc_t(0);
    }
    __syncthreads();
    for (int r = 0; r < kRows; ++r) {
      const acc_t* gy_row = gy_s + r * a.window + local0;
      const acc_t* w_row = w_s + r * K + k_first;
      for (int t = 0; t < taps; ++t) {
        const acc_t w = w_row[t * a.tap_step];
        const acc_t* src = gy_row - t * a.tap_dilation;
#pragma unroll
        for (int item = 0; item < kItems; ++item) acc[item] += w * src[item * q_groups];
      }
    }
  }
  if (!active) return;
  scalar_t* dst = grad_input + (n * a.channels + c) * a.in_length;
#pragma unroll
  for (int item = 0; item < kItems; ++item) {
    const int64_t p = (q0 + q_group + int64_t(item) * q_groups) * s + rho;
    if (p < a.in_length) dst[p] = static_cast<scalar_t>(acc[item]);
  }
}

}  // namespace custom_ops::conv1d::cuda
