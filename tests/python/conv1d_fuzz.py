"""Differential fuzzing of custom::conv1d against F.conv1d in float64.

A seeded generator draws every parameter (batch 0..512, channels with primes and 1, groups up to
depthwise, K 1..64, stride 1..8, dilation 1..16, integer and "same"/"valid" padding, lengths from the
smallest legal one to 10^6, bias or not, non-contiguous and unbatched inputs, all four dtypes, TF32
on and off), keeping each case's work bounded. Each case is compared with F.conv1d on the same values
in float64; a failure prints a one-line reproducer.

    python tests/python/conv1d_fuzz.py --device cuda --cases 20000 [--seed 0] [--seconds 600]
    python tests/python/conv1d_fuzz.py --repro '<the line a failure printed>'
"""
import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import custom_ops  # noqa: E402

# max |out - ref| / max |ref| per dtype; float32 under TF32 is checked at TF32's precision.
TOLERANCE = {"float64": 1e-10, "float32": 1e-5, "float32-tf32": 5e-3, "float16": 2e-3, "bfloat16": 1e-2}
PRIMES = [2, 3, 5, 7, 11, 13, 17, 31, 37, 61, 97, 127]
MAX_ELEMENTS = 1 << 21   # input and output elements of a case (at most)
MAX_MACS = 1 << 26       # multiply-adds of a case (at most)


def log_uniform(rng, low, high):
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))


def draw(rng, device):
    """One case as a JSON-able dict."""
    while True:
        groups = rng.choice([1, 1, 1, 2, 3, 4, "depthwise"])
        per_group = rng.choice([1, 1, 2, 3, 4, 8, 16, 24, 32, 64, rng.choice(PRIMES)])
        if groups == "depthwise":
            groups = log_uniform(rng, 1, 512)
            c = groups
            o = groups * rng.choice([1, 1, 1, 2, 3])
        else:
            c = groups * per_group
            o = groups * rng.choice([1, 2, 3, 8, 16, 32, 64, rng.choice(PRIMES)])
        k = rng.choice([1, 2, 3, 3, 4, 5, 7, 9, log_uniform(rng, 1, 64)])
        stride = rng.choice([1, 1, 1, 2, 3, rng.randint(1, 8)])
        dilation = rng.choice([1, 1, 1, 2, rng.randint(1, 16)])
        span = dilation * (k - 1) + 1
        padding = rng.choice([0, 0, 1, k // 2, span - 1, rng.randint(0, 2 * span), "same", "valid"])
        if padding == "same" and stride != 1:
            padding = "valid"
        pad_total = 0 if isinstance(padding, str) else 2 * padding
        if padding == "same":
            pad_total = span - 1
        smallest = max(1, span - pad_total)
        length = rng.choice([smallest, smallest + rng.randint(0, 7), log_uniform(rng, smallest, max(smallest, 10**6)),
                             log_uniform(rng, smallest, max(smallest, 5000))])
        n = rng.choice([0, 1, 1, 2, 3, 4, 7, 16, log_uniform(rng, 1, 512)])
        unbatched = rng.random() < 0.1
        if unbatched:
            n = 1
        l_out = (length + pad_total - span) // stride + 1
        elements = n * (c * length + o * l_out)
        macs = n * o * l_out * (c // groups) * k
        if elements <= MAX_ELEMENTS and macs <= MAX_MACS and l_out >= 1:
            break
    dtype = rng.choice(["float32", "float32", "float64", "float16", "bfloat16"])
    return dict(device=device, n=n, c=c, o=o, k=k, length=length, stride=stride, padding=padding, dilation=dilation,
                groups=groups, bias=rng.random() < 0.5, layout=rng.choice(["contiguous", "contiguous", "transposed",
                                                                           "sliced", "offset"]),
                unbatched=unbatched, dtype=dtype, tf32=rng.random() < 0.5, seed=rng.randrange(1 << 30))


def make_input(case, gen, dtype, device):
    """The input in its layout, already in dtype on device (views are taken after the conversion)."""
    n, c, length = case["n"], case["c"], case["length"]
    layout = case["layout"]

    def values(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device, dtype)

    if layout == "transposed":    # (N, L, C) storage viewed as (N, C, L)
        x = values(n, length, c).transpose(1, 2)
    elif layout == "sliced":      # every other position of a longer row
        x = values(n, c, 2 * length)[:, :, ::2]
    elif layout == "offset":      # rows one element off 16-byte alignment
        x = values(n * c * length + 1)[1:].view(n, c, length)
    else:
        x = values(n, c, length)
    return x[0] if case["unbatched"] else x


def run_case(case):
    """Returns (relative error, tolerance); raises on an unexpected exception."""
    dtype = getattr(torch, case["dtype"])
    device = case["device"]
    gen = torch.Generator().manual_seed(case["seed"])
    x = make_input(case, gen, dtype, device)
    w = torch.randn(case["o"], case["c"] // case["groups"], case["k"], generator=gen, dtype=torch.float64).to(device, dtype)
    b = torch.randn(case["o"], generator=gen, dtype=torch.float64).to(device, dtype) if case["bias"] else None
    # The reference sees the same (rounded) values.
    x64, w64 = x.double().cpu(), w.double().cpu()
    b64 = None if b is None else b.double().cpu()
    args = ([case["stride"]], case["padding"] if isinstance(case["padding"], str) else [case["padding"]],
            [case["dilation"]], case["groups"])
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = case["tf32"]
    try:
        if isinstance(case["padding"], str):
            out = torch.ops.custom.conv1d.padding(x, w, b, *args)
        else:
            out = torch.ops.custom.conv1d(x, w, b, *args)
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    ref = F.conv1d(x64, w64, b64, case["stride"], case["padding"], case["dilation"], case["groups"])
    assert out.shape == ref.shape, f"shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert out.dtype == dtype and out.device.type == torch.device(device).type
    key = case["dtype"] + ("-tf32" if case["dtype"] == "float32" and case["tf32"] and device == "cuda" else "")
    if ref.numel() == 0:
        return 0.0, TOLERANCE[key]
    diff = (out.double().cpu() - ref).abs()
    err = float("inf") if torch.isnan(diff).any() else (diff.max() / ref.abs().max().clamp_min(1e-30)).item()
    return err, TOLERANCE[key]


def repro_line(case):
    return "python tests/python/conv1d_fuzz.py --repro '" + json.dumps(case, sort_keys=True) + "'"


def fuzz(device, cases, seed, seconds=None, log=print):
    """Runs up to `cases` cases (fewer if `seconds` run out). Returns (run, failures)."""
    rng = random.Random(seed)
    start, run, failures = time.monotonic(), 0, []
    for _ in range(cases):
        if seconds is not None and time.monotonic() - start > seconds:
            break
        case = draw(rng, device)
        try:
            err, tol = run_case(case)
            ok = err <= tol
            detail = f"relative error {err:.2e} > {tol:.0e}"
        except Exception as e:  # noqa: BLE001 (any exception on a legal case is a failure)
            ok, detail = False, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        run += 1
        if not ok:
            failures.append(case)
            log(f"FAIL ({detail}): {repro_line(case)}")
    return run, failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--repro", help="one case, as a failure printed it")
    args = parser.parse_args()
    custom_ops.load_library()
    if args.repro:
        err, tol = run_case(json.loads(args.repro))
        print(f"relative error {err:.3e} (tolerance {tol:.0e}): {'ok' if err <= tol else 'FAIL'}")
        sys.exit(0 if err <= tol else 1)
    t0 = time.monotonic()
    run, failures = fuzz(args.device, args.cases, args.seed, args.seconds)
    print(f"fuzz: {run} cases on {args.device} (seed {args.seed}) in {time.monotonic() - t0:.0f} s, "
          f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
