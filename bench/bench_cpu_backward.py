"""The backward of custom::conv1d on the CPU against aten's (oneDNN), side by side: the suite of
bench_cpu.py, the gradients a training step asks for (input, weight and bias).

    python bench/bench_cpu_backward.py [--threads 1 2] [--dtypes float32 bfloat16] [--only NAME ...]

Each case: random inputs and upstream gradient, one forward of each op with autograd, then
torch.autograd.grad on the retained graph (the backward only), ours and aten's timed interleaved in the
same process (the order alternates each repeat; bench_cpu.interleaved_medians), medians of up to
--repeats. The last gradients of each are checked against aten's float64 gradients (max |grad - ref| /
max |ref| over the three, reported as the worst).
"""
import argparse
import datetime
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cpu import DTYPES, SHAPES, cpu_model, custom_ops, interleaved_medians  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per shape at most (>= 5 repeats)")
    parser.add_argument("--only", nargs="+", default=None, help="shape names (substrings) to run")
    args = parser.parse_args()
    custom_ops.load_library()
    shapes = [s for s in SHAPES if args.only is None or any(o in s[0] for o in args.only)]
    print(f"{datetime.date.today()}, {cpu_model()}, torch {torch.__version__}, backward (grad_input, grad_weight, "
          f"grad_bias), medians of {args.repeats} interleaved repeats (at most {args.budget} s a shape)")
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
                x = torch.randn(n, c, length).to(dtype).requires_grad_()
                w = torch.randn(o, c // g, k).to(dtype).requires_grad_()
                b = torch.randn(o).to(dtype).requires_grad_()
                y_ours = torch.ops.custom.conv1d(x, w, b, [s], [p], [d], g)
                y_aten = F.conv1d(x, w, b, s, p, d, g)
                gy = torch.randn(y_aten.shape).to(dtype)
                result = {}

                def ours():
                    result["ours"] = torch.autograd.grad(y_ours, [x, w, b], gy, retain_graph=True)

                def aten():
                    torch.autograd.grad(y_aten, [x, w, b], gy, retain_graph=True)

                ours_ms, aten_ms, ours_min, aten_min, _ = interleaved_medians(ours, aten, args.repeats, args.budget)
                refs = [t.detach().double().requires_grad_() for t in (x, w, b)]
                ref_grads = torch.autograd.grad(F.conv1d(*refs, s, p, d, g), refs, gy.double())
                err = max(((got.double() - ref).abs().max() / ref.abs().max()).item()
                          for got, ref in zip(result["ours"], ref_grads))
                ratios.append(aten_ms / ours_ms)
                best_ratios.append(aten_min / ours_min)
                print(f"| {name} {(n, c, o, k, length)} | {s}, {p}, {d}, {g} | {ours_ms:.3f} | {aten_ms:.3f} "
                      f"| {aten_ms / ours_ms:.2f} | {aten_min / ours_min:.2f} | {err:.1e} |", flush=True)
            gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            gm_best = math.exp(sum(math.log(r) for r in best_ratios) / len(best_ratios))
            print(f"| geometric mean (lowest) | | | | {gm:.2f} ({min(ratios):.2f}) | {gm_best:.2f} "
                  f"({min(best_ratios):.2f}) | |", flush=True)


if __name__ == "__main__":
    main()
