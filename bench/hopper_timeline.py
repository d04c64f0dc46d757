"""Where each role of the Hopper forward kernel spends its time, from the event stamps of one CTA
(ops/conv1d/cuda/hopper/hopper_timeline.cuh). Needs a build with -DCUSTOM_OPS_HOPPER_TIMELINE=1:

    CMAKE_ARGS="... -DCMAKE_CUDA_FLAGS=-DCUSTOM_OPS_HOPPER_TIMELINE=1" scripts/build.sh
    python bench/hopper_timeline.py --dtype bfloat16 --shape 32 64 128 3 131072 [--raw FILE]

For each role (producer, storer 0/1, consumer 0/1) it prints the time between consecutive events summed
over the steady state (the first tiles skipped), per tile, and as a share of the role's time.
"""
import argparse
import collections
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
import custom_ops  # noqa: E402
from bench_conv1d import time_calls  # noqa: E402

EVENTS = {1: "tile start", 2: "stage wait", 3: "stage ready", 4: "tap issued", 5: "tap done",
          6: "epilogue start", 7: "slot wait", 8: "slot ready", 9: "round staged/sent", 10: "slot released"}
ROLES = ["producer", "storer 0", "storer 1", "consumer 0", "consumer 1"]


def summarise(lines, skip_tiles):
    by_role = collections.defaultdict(list)
    for line in lines:
        recorder, event, clock = (int(v) for v in line.split())
        by_role[recorder].append((event, clock))
    for recorder in sorted(by_role):
        events = by_role[recorder]
        starts = [i for i, (e, _) in enumerate(events) if e == 1]
        if len(starts) <= skip_tiles + 1:
            print(f"{ROLES[recorder]}: {len(starts)} tiles recorded, too few")
            continue
        first, last = starts[skip_tiles], starts[-1]  # whole tiles only
        tiles = len(starts) - 1 - skip_tiles
        span = events[last][1] - events[first][1]
        sums = collections.Counter()
        counts = collections.Counter()
        for (e0, c0), (e1, c1) in zip(events[first:last], events[first + 1:last + 1]):
            key = f"{EVENTS[e0]} -> {EVENTS[e1]}"
            sums[key] += c1 - c0
            counts[key] += 1
        print(f"\n{ROLES[recorder]}: {tiles} tiles, {span / tiles:.0f} cycles a tile")
        for key, total in sums.most_common():
            print(f"  {key:42s} {counts[key] / tiles:5.1f}x a tile  {total / tiles:8.0f} cycles a tile"
                  f"  {100 * total / span:5.1f}%")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", type=int, nargs=5, metavar=("N", "C", "O", "K", "L"), default=[32, 64, 128, 3, 131072])
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--strict", action="store_true", help="float32 with TF32 off")
    parser.add_argument("--bias", action="store_true")
    parser.add_argument("--skip-tiles", type=int, default=4)
    parser.add_argument("--raw", help="also keep the raw stamps here")
    args = parser.parse_args()
    custom_ops.load_library()
    torch.backends.cudnn.allow_tf32 = not args.strict
    n, c, o, k, length = args.shape
    dtype = getattr(torch, args.dtype)
    x = torch.randn(n, c, length, device="cuda", dtype=dtype)
    w = torch.randn(o, c, k, device="cuda", dtype=dtype)
    b = torch.randn(o, device="cuda", dtype=dtype) if args.bias else None

    def call():
        return torch.ops.custom.conv1d(x, w, b, [1], [0], [1], 1)

    # Timed before a file is named: the launches stamp but neither clear, copy back nor synchronise.
    times = time_calls(call, 10)
    path = args.raw or os.path.join(tempfile.mkdtemp(), "timeline.txt")
    os.environ["CUSTOM_OPS_HOPPER_TIMELINE_FILE"] = path
    call()
    torch.cuda.synchronize()
    print(f"call {statistics.median(times):.3f} ms (median of 10, the stamping build)")
    lines = Path(path).read_text().split("\n")
    lines = [line for line in lines if line.strip()]
    if not lines:
        sys.exit("no stamps: was the plugin built with -DCUSTOM_OPS_HOPPER_TIMELINE=1?")
    print(f"{args.dtype} {'strict' if args.strict else ''} shape {args.shape}: {len(lines)} stamps")
    summarise(lines, args.skip_tiles)


if __name__ == "__main__":
    main()
