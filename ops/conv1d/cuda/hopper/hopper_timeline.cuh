#pragma once
// A debugging aid for the Hopper forward kernel: where each role of one CTA spends its time. Built only
// with -DCUSTOM_OPS_HOPPER_TIMELINE=1 (otherwise every stamp compiles to nothing): then CTA 0's producer
// thread, its two storer warps' lane 0 and its two consumers' first threads record clock64() at the
// events below (a Timeline per role), and a launch writes them as text lines "recorder event clock" to
// the file that CUSTOM_OPS_HOPPER_TIMELINE_FILE names where it is set (the launch then synchronises).
// bench/hopper_timeline.py runs a shape and sums the time between consecutive events by role.

#include <c10/cuda/CUDAException.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#ifndef CUSTOM_OPS_HOPPER_TIMELINE
#define CUSTOM_OPS_HOPPER_TIMELINE 0
#endif

namespace custom_ops::conv1d::cuda::hopper {

enum class TimelineEvent : uint32_t {
  kTileStart = 1,    // a role begins a tile (all roles)
  kStageWait,        // producer: waits for an empty stage; consumer: for a full one
  kStageReady,       // the wait above is over
  kTapLoaded,        // consumer: a tap's wgmma group is issued (its A fragments loaded)
  kTapDone,          // consumer: the tap's wgmmas have completed
  kEpilogueStart,    // consumer: after the main loop's last stage
  kSlotWait,         // consumer: waits for a staging slot; storer: for a staged round
  kSlotReady,        // the wait above is over
  kRoundStaged,      // consumer: a round is staged; storer: its copies are issued
  kSlotReleased,     // storer: a slot is handed back
};

#if CUSTOM_OPS_HOPPER_TIMELINE
constexpr int kTimelineRecorders = 5, kTimelineEvents = 1 << 14;
// Zeroed before every launch: a recorder's stamps end at its first zero.
static __device__ unsigned long long timeline_events[kTimelineRecorders][kTimelineEvents];

// One per role and thread; the recording threads (thread 0, lane 0 of warps 1 and 2, the first thread
// of each consumer warpgroup) of CTA 0 record, counting in a register (a count in memory would put a
// load's latency on every stamp).
struct Timeline {
  unsigned long long* events = nullptr;
  unsigned count = 0;
  __device__ __forceinline__ Timeline() {
    if (blockIdx.x != 0) return;
    const int recorders[5] = {0, 32, 64, 128, 256};
#pragma unroll
    for (int r = 0; r < kTimelineRecorders; ++r)
      if (threadIdx.x == recorders[r]) events = timeline_events[r];
  }
  __device__ __forceinline__ void stamp(TimelineEvent event) {
    if (events != nullptr && count < kTimelineEvents)
      events[count++] = (clock64() << 8) | static_cast<uint32_t>(event);
  }
};

inline void timeline_reset(cudaStream_t stream) {
  if (std::getenv("CUSTOM_OPS_HOPPER_TIMELINE_FILE") == nullptr) return;
  void* events = nullptr;
  C10_CUDA_CHECK(cudaGetSymbolAddress(&events, timeline_events));
  C10_CUDA_CHECK(cudaMemsetAsync(events, 0, sizeof(timeline_events), stream));
}

inline void timeline_dump(cudaStream_t stream) {
  const char* path = std::getenv("CUSTOM_OPS_HOPPER_TIMELINE_FILE");
  if (path == nullptr) return;
  C10_CUDA_CHECK(cudaStreamSynchronize(stream));
  static unsigned long long events[kTimelineRecorders][kTimelineEvents];
  C10_CUDA_CHECK(cudaMemcpyFromSymbol(events, timeline_events, sizeof(events)));
  FILE* file = std::fopen(path, "w");
  TORCH_CHECK(file != nullptr, "custom::conv1d: cannot write the Hopper timeline to ", path);
  for (int r = 0; r < kTimelineRecorders; ++r)
    for (int i = 0; i < kTimelineEvents && events[r][i] != 0; ++i)
      std::fprintf(file, "%d %u %llu\n", r, unsigned(events[r][i] & 0xff), events[r][i] >> 8);
  std::fclose(file);
}
#else
struct Timeline {
  __device__ __forceinline__ void stamp(TimelineEvent) {}
};
inline void timeline_reset(cudaStream_t) {}
inline void timeline_dump(cudaStream_t) {}
#endif

}  // namespace custom_ops::conv1d::cuda::hopper
