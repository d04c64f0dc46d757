"""The backward of custom::conv1d against F.conv1d's autograd backward (cuDNN), side by side in one
process, on the GPU: grad_input + grad_weight (+ grad_bias) for the shapes of bench_conv1d.py.

Each case: fresh random inputs and upstream gradient, warm-up, then CUDA-event-timed calls of
torch.autograd.grad on a retained graph (the backward only); medians. The timed gradients are checked
against aten's float64 gradients of the whole batch.

    python bench/bench_conv1d_backward.py [--suite quick|full] [--only NAME ...] [--repeats 20] [--markdown FILE]
                                          [--breakdown FILE]

The table also gives cuDNN's compute kernels alone (torch.profiler: every kernel of its backward call
but the NCHW <-> NHWC layout conversions), and which of our kernels computes each gradient
(custom::conv1d_cuda_backward_kernels). --breakdown also writes, per case, the GPU time of each kernel
of one backward call (ours and cuDNN's): which gradient costs what, the evidence behind each shortfall;
and the host's time to issue one call (median, the GPU idle before each), beside the CUDA-event time.
"""
import argparse
import re
import statistics
import sys

import torch
import torch.nn.functional as F

from bench_conv1d import DTYPES_OTHER, SHAPES, custom_ops, host_time_ms, kernel_breakdown, time_calls

TOLERANCE = {"fp32-tf32": 5e-3, "bf16": 2e-2}

# cuDNN's layout conversions around its compute kernels (names as torch.profiler reports them).
LAYOUT_KERNEL = re.compile(r"nchwToNhwc|nhwcToNchw|[Tt]ranspose|convertTensor", re.IGNORECASE)


def gradients(fn, x, w, b, gy):
    inputs = [x, w] + ([b] if b is not None else [])
    y = fn(x, w, b)
    return lambda: torch.autograd.grad(y, inputs, gy, retain_graph=True)


def run_case(name, dims, params, label, dtype, allow_tf32, repeats, breakdown=None):
    n, c, o, k, length = dims
    stride, padding = params.get("stride", 1), params.get("padding", 0)
    dilation, groups = params.get("dilation", 1), params.get("groups", 1)
    torch.backends.cudnn.allow_tf32 = allow_tf32
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(n, c, length, device="cuda", dtype=dtype, generator=gen).requires_grad_()
    w = torch.randn(o, c // groups, k, device="cuda", dtype=dtype, generator=gen).requires_grad_()
    b = torch.randn(o, device="cuda", dtype=dtype, generator=gen).requires_grad_() if params.get("bias") else None
    ours = lambda x, w, b: torch.ops.custom.conv1d(x, w, b, [stride], [padding], [dilation], groups)  # noqa: E731
    cudnn = lambda x, w, b: F.conv1d(x, w, b, stride, padding, dilation, groups)  # noqa: E731
    with torch.no_grad():
        gy = torch.randn(cudnn(x, w, b).shape, device="cuda", dtype=dtype, generator=gen)
    ours_fn, cudnn_fn = gradients(ours, x, w, b, gy), gradients(cudnn, x, w, b, gy)
    ours_ms = statistics.median(time_calls(ours_fn, repeats))
    cudnn_ms = statistics.median(time_calls(cudnn_fn, repeats))
    cudnn_kernels = kernel_breakdown(cudnn_fn)
    cudnn_compute_ms = sum(us for kernel, us in cudnn_kernels if not LAYOUT_KERNEL.search(kernel)) / 1e3
    kernels = torch.ops.custom.conv1d_cuda_backward_kernels(x, w, [stride], [padding], [dilation], groups)
    if breakdown is not None:
        for who, rows, fn, timed in (("ours", kernel_breakdown(ours_fn), ours_fn, ours_ms),
                                     ("cuDNN", cudnn_kernels, cudnn_fn, cudnn_ms)):
            for kernel, us in rows:
                breakdown.append(f"| {name} | {label} | {who} | {us:.0f} | `{kernel[:90]}` |")
            # The host's time to issue the call beside the call's CUDA-event time: the two close
            # together say the GPU waited for the host (autograd and launch overhead), not for kernels.
            host_us = host_time_ms(fn, repeats) * 1e3
            breakdown.append(f"| {name} | {label} | {who} | {host_us:.0f} | host time to issue the call "
                             f"(CUDA-event time {timed * 1e3:.0f}) |")
    got = ours_fn()  # the timed computation
    inputs64 = [t.detach().double().requires_grad_() for t in ([x, w] + ([b] if b is not None else []))]
    ref = torch.autograd.grad(cudnn(inputs64[0], inputs64[1], inputs64[2] if b is not None else None), inputs64,
                              gy.double())
    err = max(((g.double() - r).abs().max() / r.abs().max()).item() for g, r in zip(got, ref))
    ok = err <= TOLERANCE[label]
    del x, w, b, gy, got, ref, inputs64, ours_fn, cudnn_fn
    torch.cuda.empty_cache()
    return dict(shape=name, dtype=label, ours=ours_ms, cudnn=cudnn_ms, speedup=cudnn_ms / ours_ms,
                cudnn_compute=cudnn_compute_ms, err=err, ok=ok, kernels=kernels)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--suite", default="quick", choices=sorted(SHAPES))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", nargs="+", default=None, help="shape names (substrings) of the suite to run")
    parser.add_argument("--markdown")
    parser.add_argument("--breakdown", help="write each case's per-kernel GPU times (markdown) to this file")
    args = parser.parse_args()
    custom_ops.load_library()
    results = []
    breakdown = ["| shape | dtype | who | us per call | kernel |", "|---|---|---|---|---|"] if args.breakdown else None
    cases = [c for c in SHAPES[args.suite] if args.only is None or any(o in c[0] for o in args.only)]
    for name, dims, params in cases:
        for label, dtype, tf32 in DTYPES_OTHER:
            r = run_case(name, dims, params, label, dtype, tf32, args.repeats, breakdown)
            results.append(r)
            print(f"  {name:22s} {label:10s} ours {r['ours']:8.3f} ms  cuDNN {r['cudnn']:8.3f} ms  err {r['err']:.1e} "
                  f"{'ok' if r['ok'] else 'WRONG'}", flush=True)
    lines = ["| shape | dtype | ours backward ms | cuDNN backward ms | speedup | cuDNN compute kernels ms | "
             "vs compute | rel. error (worst gradient) | grad_input / grad_weight kernels |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['ours']:.3f} | {r['cudnn']:.3f} | {r['speedup']:.2f}x | "
                     f"{r['cudnn_compute']:.3f} | {r['cudnn_compute'] / r['ours']:.2f}x | "
                     f"{r['err']:.1e}{'' if r['ok'] else ' WRONG'} | {r['kernels'][0]} / {r['kernels'][1]} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.breakdown:
        with open(args.breakdown, "w") as f:
            f.write("\n".join(breakdown) + "\n")
    if not all(r["ok"] for r in results):
        sys.exit("backward benchmark: some timed gradients were wrong")


if __name__ == "__main__":
    main()
