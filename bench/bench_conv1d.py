"""custom::conv1d against F.conv1d (cuDNN), side by side in one process, on the GPU.

Each case: fresh random inputs, warm-up, then 20+ calls of each timed with CUDA events; the median is
reported. The timed outputs are checked against a float64 reference (on a slice of the batch for the
large shapes). "floor" is (input + weight + output bytes) / the device-to-device copy bandwidth measured
at start: no kernel that reads its input once and writes its output once beats it. "cuDNN kernel" is the
GPU time of cuDNN's longest kernel in one F.conv1d call (torch.profiler): its compute kernel alone,
without the layout transposes and bias passes around it.

    python bench/bench_conv1d.py [--suite headline|quick|full] [--only NAME ...] [--repeats 20] [--markdown FILE]
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

# name, (N, C, O, K, L), dict(stride, padding, dilation, groups, bias)
HEADLINE = ("headline", (32, 64, 128, 3, 131072), dict())
ANCHORS = [  # every shape of ../shared/ANCHORS.md
    ("depthwise causal k4", (16, 2048, 2048, 4, 4096), dict(groups=2048, padding=3)),
    ("strided front end", (16, 1, 512, 10, 160000), dict(stride=5)),
    ("wide channels", (8, 512, 512, 3, 16384), dict(padding=1)),
    ("dilated", (16, 128, 128, 3, 32768), dict(dilation=4, padding=4)),
    ("grouped", (16, 256, 256, 5, 32768), dict(groups=8, padding=2)),
    ("small", (1, 64, 64, 7, 8192), dict(padding=3)),
    ("causal-conv1d 8x4096x16384", (8, 4096, 4096, 4, 16384), dict(groups=4096, padding=3)),
    ("causal-conv1d 4x1024x131072", (4, 1024, 1024, 3, 131072), dict(groups=1024, padding=2)),
    ("causal-conv1d 64x768x2048", (64, 768, 768, 4, 2048), dict(groups=768, padding=3)),
]
USERS = [  # shapes users hit that the anchors miss
    ("headline + bias", (32, 64, 128, 3, 131072), dict(bias=True)),
    # nn.Conv1d(64, 128, 3, padding=1): L_out = L, rows 16-byte aligned (the headline's are not)
    ("headline, same padding", (32, 64, 128, 3, 131072), dict(padding=1)),
    ("batch-1 inference", (1, 256, 256, 3, 16384), dict(padding=1, bias=True)),
    ("pointwise K=1", (16, 256, 256, 1, 8192), dict(bias=True)),
    ("long kernel K=31", (8, 128, 128, 31, 16384), dict(padding=15)),
    ("stride-2 downsampling", (16, 128, 256, 4, 32768), dict(stride=2, padding=1)),
    ("many short sequences", (4096, 64, 64, 3, 64), dict(padding=1, bias=True)),
    # the input of a layer after an unpadded one (L_out = L - 2 there): rows TMA cannot read in place, so
    # the Hopper family runs on a row-aligned copy (hopper_<p>_repacked), and the backward copies both
    # grad_output and the input for grad_weight
    ("odd length 131071 (headline channels)", (32, 64, 128, 3, 131071), dict()),
]
SHAPES = {
    "headline": [HEADLINE, USERS[0], USERS[1]],
    "quick": [HEADLINE, ANCHORS[0], ANCHORS[2], ANCHORS[5]],
    "full": [HEADLINE] + ANCHORS + USERS,
}
# (label, dtype, allow_tf32)
DTYPES_HEADLINE = [("fp32-tf32", torch.float32, True), ("fp32-strict", torch.float32, False),
                   ("fp16", torch.float16, False), ("bf16", torch.bfloat16, False)]
DTYPES_OTHER = [("fp32-tf32", torch.float32, True), ("bf16", torch.bfloat16, False)]
TOLERANCE = {("fp32-tf32"): 5e-3, "fp32-strict": 1e-5, "fp16": 2e-3, "bf16": 1e-2}


def copy_bandwidth() -> float:
    """Bytes read + written per second by a large device-to-device copy."""
    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    times = time_calls(lambda: dst.copy_(src), 20)
    return 2 * src.numel() / (statistics.median(times) * 1e-3)


def time_calls(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def host_time_ms(fn, repeats, warmup=3):
    """Median host time to issue one call (the device idle before each): how long the GPU waits for the
    host when a call's kernels are short. Near the CUDA-event time, the call is host-bound."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    torch.cuda.synchronize()
    return statistics.median(times)


def kernel_breakdown(fn, calls=3):
    """[(kernel name, microseconds per call)] of fn's GPU kernels, largest first."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    rows = [(e.key, e.device_time_total / calls) for e in prof.key_averages() if e.device_time_total > 0]
    return sorted(rows, key=lambda r: -r[1])


def relative_error(out, ref):
    return ((out.double() - ref).abs().max() / ref.abs().max()).item()


def run_case(name, dims, params, label, dtype, allow_tf32, repeats, bandwidth):
    n, c, o, k, length = dims
    stride, padding = params.get("stride", 1), params.get("padding", 0)
    dilation, groups = params.get("dilation", 1), params.get("groups", 1)
    torch.backends.cudnn.allow_tf32 = allow_tf32
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(n, c, length, device="cuda", dtype=dtype, generator=gen)
    w = torch.randn(o, c // groups, k, device="cuda", dtype=dtype, generator=gen)
    b = torch.randn(o, device="cuda", dtype=dtype, generator=gen) if params.get("bias") else None
    kernel = torch.ops.custom.conv1d_cuda_kernel(x, w, [stride], [padding], [dilation], groups)
    ours_fn = lambda: torch.ops.custom.conv1d(x, w, b, [stride], [padding], [dilation], groups)  # noqa: E731
    cudnn_fn = lambda: F.conv1d(x, w, b, stride, padding, dilation, groups)  # noqa: E731
    ours_ms = statistics.median(time_calls(ours_fn, repeats))
    cudnn_ms = statistics.median(time_calls(cudnn_fn, repeats))
    cudnn_kernel_ms = kernel_breakdown(cudnn_fn)[0][1] / 1e3
    out, out_cudnn = ours_fn(), cudnn_fn()  # the timed computations, on the same inputs
    torch.cuda.synchronize()
    rows = slice(0, min(n, 2))
    ref = F.conv1d(x[rows].double(), w.double(), None if b is None else b.double(), stride, padding, dilation, groups)
    err, err_cudnn = relative_error(out[rows], ref), relative_error(out_cudnn[rows], ref)
    l_out = out.shape[-1]
    bytes_moved = (x.numel() + w.numel() + out.numel() + (o if b is not None else 0)) * x.element_size()
    floor_ms = bytes_moved / bandwidth * 1e3
    flops = 2.0 * n * o * l_out * (c // groups) * k
    ok = err <= TOLERANCE[label]
    del x, w, b, out, out_cudnn, ref
    torch.cuda.empty_cache()
    return dict(shape=name, dtype=label, ours=ours_ms, cudnn=cudnn_ms, speedup=cudnn_ms / ours_ms,
                cudnn_kernel=cudnn_kernel_ms,
                floor=floor_ms, pct_floor=100 * floor_ms / ours_ms, tflops=flops / ours_ms / 1e9, err=err,
                err_cudnn=err_cudnn, ok=ok, kernel=kernel)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--suite", default="quick", choices=sorted(SHAPES))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", nargs="+", default=None, help="shape names (substrings) of the suite to run")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    custom_ops.load_library()
    props = torch.cuda.get_device_properties(0)
    bandwidth = copy_bandwidth()
    header = (f"GPU {props.name} ({props.multi_processor_count} SMs), torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
              f"copy bandwidth {bandwidth / 1e12:.2f} TB/s (read + write)")
    results = []
    cases = [c for c in SHAPES[args.suite] if args.only is None or any(o in c[0] for o in args.only)]
    for name, dims, params in cases:
        for label, dtype, tf32 in (DTYPES_HEADLINE if name == "headline" else DTYPES_OTHER):
            r = run_case(name, dims, params, label, dtype, tf32, args.repeats, bandwidth)
            results.append(r)
            print(f"  {name:22s} {label:11s} ours {r['ours']:8.3f} ms  cuDNN {r['cudnn']:8.3f} ms "
                  f"(kernel {r['cudnn_kernel']:.3f})  floor {r['floor']:.3f}  "
                  f"err {r['err']:.1e} (cuDNN {r['err_cudnn']:.1e}) {'ok' if r['ok'] else 'WRONG'} {r['kernel']}", flush=True)
    lines = [header, "",
             "| shape | dtype | ours ms | cuDNN ms | speedup | cuDNN kernel ms | vs kernel | floor ms | % of floor "
             "| TFLOP/s | rel. error | kernel |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['ours']:.3f} | {r['cudnn']:.3f} | {r['speedup']:.2f}x | "
                     f"{r['cudnn_kernel']:.3f} | {r['cudnn_kernel'] / r['ours']:.2f}x | "
                     f"{r['floor']:.3f} | {r['pct_floor']:.0f}% | {r['tflops']:.1f} | {r['err']:.1e}"
                     f"{'' if r['ok'] else ' WRONG'} | {r['kernel']} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if not all(r["ok"] for r in results):
        sys.exit("benchmark: some timed outputs were wrong")


if __name__ == "__main__":
    main()
