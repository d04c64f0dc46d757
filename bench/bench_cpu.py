"""custom::conv1d against aten's CPU conv1d (oneDNN), side by side: the CPU suite of issue 15.

    python bench/bench_cpu.py [--threads 1 2] [--dtypes float32 bfloat16] [--only NAME ...]

The shapes are what C++ inference users run on CPUs: speech/audio front ends (strided, K 5-10), TCN
layers (dilated), pointwise 1x1, downsampling (stride 2, 4), depthwise (K 3-31), grouped, and batch-1
inference with short sequences. Works with any number of cores (--threads).

Timing: this machine is shared, so ours and aten are measured interleaved in the same process (the
order alternates from one repeat to the next), after warm-up, and the median of each is reported;
"aten / ours" is the ratio of those medians (> 1: ours is faster); "best of each" is the ratio of the
fastest repeat of each, which a process descheduled by a neighbour disturbs less. Each output is checked against
float64 (max |out - ref| / max |ref|). The geometric mean of the ratios closes each table.
"""
import argparse
import datetime
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
import custom_ops  # noqa: E402

SHAPES = [  # name, (N, C, O, K, L), stride, padding, dilation, groups
    ("dense k3", (4, 64, 128, 3, 16384), 1, 1, 1, 1),
    ("small k7", (1, 64, 64, 7, 8192), 1, 3, 1, 1),
    ("front end k5", (1, 80, 256, 5, 3000), 1, 2, 1, 1),
    ("strided front end", (4, 1, 128, 10, 32000), 5, 0, 1, 1),
    ("wav2vec conv0", (1, 1, 512, 10, 16000), 5, 0, 1, 1),
    ("downsample s2 k3", (1, 512, 512, 3, 3199), 2, 0, 1, 1),
    ("downsample s4 k8", (4, 64, 128, 8, 8192), 4, 2, 1, 1),
    ("dilated", (4, 64, 64, 3, 16384), 1, 4, 4, 1),
    ("tcn d8", (1, 128, 128, 3, 4096), 1, 8, 8, 1),
    ("pointwise", (4, 256, 256, 1, 4096), 1, 0, 1, 1),
    ("pointwise b1 short", (1, 512, 512, 1, 100), 1, 0, 1, 1),
    ("depthwise k3", (8, 256, 256, 3, 2048), 1, 1, 1, 256),
    ("depthwise k4", (8, 512, 512, 4, 4096), 1, 3, 1, 512),
    ("depthwise k31", (4, 256, 256, 31, 2048), 1, 15, 1, 256),
    ("grouped g8", (4, 256, 256, 3, 4096), 1, 1, 1, 8),
    ("b1 short k3", (1, 256, 256, 3, 128), 1, 1, 1, 1),
    ("b1 short k5", (1, 512, 512, 5, 64), 1, 2, 1, 1),
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def interleaved_medians(ours, aten, repeats, budget_s):
    """Median ms of each, timed alternately (ours first on even repeats, aten first on odd ones)."""
    for _ in range(2):
        ours()
        aten()
    times = {0: [], 1: []}
    fns = (ours, aten)
    start = time.perf_counter()
    for r in range(repeats):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append((time.perf_counter() - t0) * 1e3)
        if r >= 4 and time.perf_counter() - start > budget_s:
            break
    return (statistics.median(times[0]), statistics.median(times[1]), min(times[0]), min(times[1]),
            len(times[0]))


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_suite(what, measure):
    """The suite's command line and tables, shared by the forward (here) and the backward
    (bench_cpu_backward.py). measure(x, w, b, stride, padding, dilation, groups, repeats, budget) times
    ours and aten's on the case's tensors and returns (ours ms, aten ms, ours fastest, aten fastest,
    relative error against float64)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per shape at most (>= 5 repeats)")
    parser.add_argument("--only", nargs="+", default=None, help="shape names (substrings) to run")
    args = parser.parse_args()
    custom_ops.load_library()
    shapes = [s for s in SHAPES if args.only is None or any(o in s[0] for o in args.only)]
    print(f"{datetime.date.today()}, {cpu_model()}, torch {torch.__version__}, {what}"
          f"medians of {args.repeats} interleaved repeats (at most {args.budget} s a shape)")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for dname in args.dtypes:
            dtype = DTYPES[dname]
            print(f"\n{threads} thread(s), {dname}\n")
            print("| shape (N, C, O, K, L) | stride, pad, dil, groups | ours ms | aten ms | aten / ours "
                  "| best of each: aten / ours | rel. error |")
            print("|---|---|---|---|---|---|---|")
            ratios, best_ratios = [], []
            for name, (n, c, o, k, length), s, p, d, g in shapes:
                torch.manual_seed(0)
                x, w, b = torch.randn(n, c, length), torch.randn(o, c // g, k), torch.randn(o)
                x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
                ours_ms, aten_ms, ours_min, aten_min, err = measure(x, w, b, s, p, d, g, args.repeats, args.budget)
                ratios.append(aten_ms / ours_ms)
                best_ratios.append(aten_min / ours_min)
                print(f"| {name} {(n, c, o, k, length)} | {s}, {p}, {d}, {g} | {ours_ms:.3f} | {aten_ms:.3f} "
                      f"| {aten_ms / ours_ms:.2f} | {aten_min / ours_min:.2f} | {err:.1e} |", flush=True)
            gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            gm_best = math.exp(sum(math.log(r) for r in best_ratios) / len(best_ratios))
            print(f"| geometric mean (lowest) | | | | {gm:.2f} ({min(ratios):.2f}) | {gm_best:.2f} "
                  f"({min(best_ratios):.2f}) | |", flush=True)


def measure_forward(x, w, b, s, p, d, g, repeats, budget):
    ours_ms, aten_ms, ours_min, aten_min, _ = interleaved_medians(
        lambda: torch.ops.custom.conv1d(x, w, b, [s], [p], [d], g),
        lambda: F.conv1d(x, w, b, s, p, d, g), repeats, budget)
    out = torch.ops.custom.conv1d(x, w, b, [s], [p], [d], g)
    ref = F.conv1d(x.double(), w.double(), b.double(), s, p, d, g)
    err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
    return ours_ms, aten_ms, ours_min, aten_min, err


def main():
    run_suite("", measure_forward)


if __name__ == "__main__":
    main()
