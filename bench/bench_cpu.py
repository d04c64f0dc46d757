"""custom::conv1d against aten's CPU conv1d (oneDNN/MKL-DNN or native), side by side, float32.

    python bench/bench_cpu.py [--threads N]

Median wall time of repeated calls after warm-up; each output is checked against float64.
"""
import argparse
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
    ("depthwise k4", (8, 512, 512, 4, 4096), 1, 3, 1, 512),
    ("strided front end", (4, 1, 128, 10, 32000), 5, 0, 1, 1),
    ("dilated", (4, 64, 64, 3, 16384), 1, 4, 4, 1),
    ("small k7", (1, 64, 64, 7, 8192), 1, 3, 1, 1),
]


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    custom_ops.load_library()
    print(f"torch {torch.__version__}, {args.threads} threads, float32")
    print("| shape | ours ms | aten ms | aten / ours | rel. error |")
    print("|---|---|---|---|---|")
    for name, (n, c, o, k, length), s, p, d, g in SHAPES:
        torch.manual_seed(0)
        x, w, b = torch.randn(n, c, length), torch.randn(o, c // g, k), torch.randn(o)
        ours = median_ms(lambda: torch.ops.custom.conv1d(x, w, b, [s], [p], [d], g), args.repeats)
        aten = median_ms(lambda: F.conv1d(x, w, b, s, p, d, g), args.repeats)
        out = torch.ops.custom.conv1d(x, w, b, [s], [p], [d], g)
        ref = F.conv1d(x.double(), w.double(), b.double(), s, p, d, g)
        err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
        print(f"| {name} {(n, c, o, k, length)} | {ours:.2f} | {aten:.2f} | {aten / ours:.2f} | {err:.1e} |")


if __name__ == "__main__":
    main()
