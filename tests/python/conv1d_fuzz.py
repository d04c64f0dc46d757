"""Differential fuzzing of custom::conv1d against F.conv1d in float64.

A seeded generator draws every parameter (batch 0..512, channels with primes and 1, groups up to
depthwise, K 1..64, stride 1..8, dilation 1..16, integer and "same"/"valid" padding, lengths from the
smallest legal one to 10^6, bias or not, non-contiguous and unbatched inputs, all four dtypes, TF32
on and off), keeping each case's work bounded. Each case is compared with F.conv1d on the same values
in float64; a failure prints a one-line reproducer. With --backward the cases also compare the
gradients (input, weight, bias) with aten's float64 autograd, for float64, float32 (TF32 on and off)
and bfloat16.

    python tests/python/conv1d_fuzz.py --device cuda --cases 20000 [--seed 0] [--seconds 600] [--backward]
    python tests/python/conv1d_fuzz.py --device cpu --cases 1000 --bad-inputs   # extreme argument values
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
# Gradients: reductions over batch x positions; half types get 4x their output tolerance (as in
# test_autograd.py), the others the same.
GRAD_TOLERANCE = {"float64": 1e-10, "float32": 1e-5, "float32-tf32": 5e-3, "bfloat16": 4e-2}
PRIMES = [2, 3, 5, 7, 11, 13, 17, 31, 37, 61, 97, 127]
MAX_ELEMENTS = 1 << 21   # input and output elements of a case (at most)
MAX_MACS = 1 << 26       # multiply-adds of a case (at most)


def log_uniform(rng, low, high):
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))


def draw(rng, device, backward=False):
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
        limit = MAX_MACS // 4 if backward else MAX_MACS  # the backward is three convolutions' work
        if elements <= MAX_ELEMENTS and macs <= limit and l_out >= 1:
            break
    dtype = rng.choice(["float32", "float32", "float64", "float16", "bfloat16"])
    if backward:
        dtype = rng.choice(["float64", "float32", "bfloat16"])
    return dict(device=device, n=n, c=c, o=o, k=k, length=length, stride=stride, padding=padding, dilation=dilation,
                groups=groups, bias=rng.random() < 0.5, layout=rng.choice(["contiguous", "contiguous", "transposed",
                                                                           "sliced", "offset"]),
                unbatched=unbatched, dtype=dtype, tf32=rng.random() < 0.5, seed=rng.randrange(1 << 30),
                backward=backward)


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
    """Returns [(what, relative error, tolerance)] (the output, and the gradients with --backward);
    raises on an unexpected exception."""
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
    backward = case.get("backward", False)
    if backward:
        x, w = x.detach().requires_grad_(), w.requires_grad_()
        b = None if b is None else b.requires_grad_()
        x64, w64 = x64.requires_grad_(), w64.requires_grad_()
        b64 = None if b64 is None else b64.requires_grad_()
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = case["tf32"]
    try:
        if isinstance(case["padding"], str):
            out = torch.ops.custom.conv1d.padding(x, w, b, *args)
        else:
            out = torch.ops.custom.conv1d(x, w, b, *args)
        ref = F.conv1d(x64, w64, b64, case["stride"], case["padding"], case["dilation"], case["groups"])
        if backward:
            gy = torch.randn(ref.shape, generator=gen, dtype=torch.float64).to(device, dtype)
            gy64 = gy.double().cpu()  # the reference sees the same rounded upstream gradient
            inputs = [t for t in (x, w, b) if t is not None]
            grads = torch.autograd.grad(out, inputs, gy, allow_unused=True)
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    assert out.shape == ref.shape, f"shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert out.dtype == dtype and out.device.type == torch.device(device).type
    tf32 = case["dtype"] == "float32" and case["tf32"] and device == "cuda"
    key = case["dtype"] + ("-tf32" if tf32 else "")
    # The output's error scale: max |ref|, but at least the size of a typical output with this many
    # random terms (max of the sum of |terms| / sqrt(terms)). Rounding error follows the terms, so a few
    # outputs that cancel to near zero (one output position, two channels) would otherwise make TF32's
    # rounding of the operands look like a wrong result; a missing or wrong term is still
    # ~1/sqrt(terms) of that scale, far above every tolerance.
    terms = (case["c"] // case["groups"]) * case["k"]
    abs_ref = F.conv1d(x64.detach().abs(), w64.detach().abs(), None, case["stride"], case["padding"],
                       case["dilation"], case["groups"])
    typical = abs_ref.abs().max() / math.sqrt(terms) if abs_ref.numel() else torch.tensor(0.0, dtype=torch.float64)
    output_scale = torch.maximum(ref.detach().abs().max(), typical) if ref.numel() else None
    checks = [("output", relative_error(out, ref, output_scale), TOLERANCE[key])]
    if backward:
        inputs64 = [t for t in (x64, w64, b64) if t is not None]
        ref_grads = torch.autograd.grad(ref, inputs64, gy64, allow_unused=True)
        # Gradients are long sums that can cancel (a bias gradient over 10^5 positions may be near 0),
        # so their error is measured against the sum of the absolute values of their terms, the
        # scale summation error is bounded by: the same gradients of |x|, |w| under |gy|.
        abs_inputs = [t.detach().abs().requires_grad_() for t in inputs64]
        abs_out = F.conv1d(abs_inputs[0], abs_inputs[1], abs_inputs[2] if b64 is not None else None,
                           case["stride"], case["padding"], case["dilation"], case["groups"])
        scales = torch.autograd.grad(abs_out, abs_inputs, gy64.abs(), allow_unused=True)
        for name, g, r, scale in zip(("grad_input", "grad_weight", "grad_bias"), grads, ref_grads, scales):
            if r is not None:
                got = g if g is not None else torch.zeros_like(r)
                checks.append((name, relative_error(got, r, scale), GRAD_TOLERANCE[key]))
    return checks


def relative_error(out, ref, scale=None):
    """max |out - ref| / max |scale| (scale: ref by default; 0 for empty tensors, inf where out has NaN)."""
    if ref.numel() == 0:
        return 0.0
    diff = (out.detach().double().cpu() - ref.detach()).abs()
    if torch.isnan(diff).any():
        return float("inf")
    scale = ref if scale is None else scale
    return (diff.max() / scale.detach().abs().max().clamp_min(1e-30)).item()


def repro_line(case):
    return "python tests/python/conv1d_fuzz.py --repro '" + json.dumps(case, sort_keys=True) + "'"


def fuzz(device, cases, seed, seconds=None, log=print, backward=False):
    """Runs up to `cases` cases (fewer if `seconds` run out). Returns (run, failures)."""
    rng = random.Random(seed)
    start, run, failures = time.monotonic(), 0, []
    for _ in range(cases):
        if seconds is not None and time.monotonic() - start > seconds:
            break
        case = draw(rng, device, backward)
        try:
            bad = [(what, err, tol) for what, err, tol in run_case(case) if not err <= tol]
            ok = not bad
            detail = ", ".join(f"{what}: relative error {err:.2e} > {tol:.0e}" for what, err, tol in bad)
        except Exception as e:  # noqa: BLE001 (any exception on a legal case is a failure)
            ok, detail = False, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        run += 1
        if not ok:
            failures.append(case)
            log(f"FAIL ({detail}): {repro_line(case)}")
    return run, failures


# The bad-input set: a legal case with one argument replaced by an extreme value. Integers at and past the
# int64 limits exercise the overflow checks; none asks for an allocation that could succeed (a huge output
# overflows int64 bytes or exceeds any address space), so a case never eats the machine's memory.
EXTREME_VALUES = {
    "stride": [0, -1, -2**63, 2**31, 2**62, 2**63 - 1],
    "padding": [-1, -2**63, 2**61, 2**62, 2**63 - 1],
    "dilation": [0, -1, -2**63, 2**61, 2**62, 2**63 - 1],
    "groups": [0, -1, -2**63, 2**62, 2**63 - 1],
    "input": [None],
    "weight": [None],
}
INT64_MAX = 2**63 - 1


def draw_bad(rng, device):
    """A legal forward case (float64, integer padding) with one argument replaced by an extreme value."""
    case = draw(rng, device)
    while isinstance(case["padding"], str):
        case = draw(rng, device)
    case.update(dtype="float64", tf32=False, bias=rng.random() < 0.5)
    argument = rng.choice(sorted(EXTREME_VALUES))
    case["bad"] = [argument, rng.choice(EXTREME_VALUES[argument])]
    return case


def expected_length(case):
    """The output length in exact integer arithmetic, or None where the arguments are illegal or a size
    does not fit in int64."""
    k, stride, dilation, padding = case["k"], case["stride"], case["dilation"], case["padding"]
    if stride <= 0 or dilation <= 0 or padding < 0 or case["groups"] <= 0:
        return None
    span, padded = dilation * (k - 1) + 1, case["length"] + 2 * padding
    if span > INT64_MAX or padded > INT64_MAX or span > padded:
        return None
    return (padded - span) // stride + 1


def run_bad_case(case):
    """None where the outcome is right: an error that names the replaced argument, or (where the value is
    legal) the exact output shape and aten's values. Else what went wrong."""
    argument, value = case["bad"]
    good = dict(case)
    gen = torch.Generator().manual_seed(case["seed"])
    x = make_input(case, gen, torch.float64, case["device"])
    w = torch.randn(case["o"], case["c"] // case["groups"], case["k"], generator=gen, dtype=torch.float64).to(case["device"])
    b = torch.randn(case["o"], generator=gen, dtype=torch.float64).to(case["device"]) if case["bias"] else None
    tensors = {"input": x, "weight": w}
    if argument in tensors:
        tensors[argument] = value
    else:
        case = dict(case, **{argument: value})
    try:
        out = torch.ops.custom.conv1d(tensors["input"], tensors["weight"], b, [case["stride"]], [case["padding"]],
                                      [case["dilation"]], case["groups"])
    except RuntimeError as e:
        message = str(e).splitlines()[0]
        if message.startswith("custom::conv1d: ") and f"'{argument}'" in message:
            return None
        if "not enough memory" in message and expected_length(case) is not None:
            return None  # a legal output too large for any machine (its byte count fits in int64)
        return f"error that does not name '{argument}': {message[:200]}"
    length = expected_length(case)
    if length is None:
        return f"no error for {argument}={value}; output shape {tuple(out.shape)}"
    batch = () if case["unbatched"] else (case["n"],)
    if tuple(out.shape) != batch + (case["o"], length):
        return f"shape {tuple(out.shape)}, expected {batch + (case['o'], length)}"
    if out.numel() == 0:
        return None
    # Legal extremes compute what a small equivalent does: a stride past the padded input leaves position
    # 0 only, and a dilation multiplies nothing when K = 1.
    stride = max(1, case["length"] + 2 * case["padding"]) if length == 1 else case["stride"]
    dilation = 1 if case["k"] == 1 else case["dilation"]
    if max(stride, dilation, case["padding"]) > 2**31:
        return f"legal extreme {argument}={value} with no small equivalent to check against"
    ref = F.conv1d(x.cpu(), w.cpu(), None if b is None else b.cpu(), stride, case["padding"], dilation,
                   case["groups"])
    err = relative_error(out, ref)
    return None if err <= TOLERANCE["float64"] else f"relative error {err:.2e} against aten"


def fuzz_bad_inputs(device, cases, seed, log=print):
    """Runs `cases` bad-input cases. Returns (run, failures)."""
    rng = random.Random(seed)
    failures = []
    for _ in range(cases):
        case = draw_bad(rng, device)
        try:
            problem = run_bad_case(case)
        except Exception as e:  # noqa: BLE001 (only a RuntimeError naming the argument is right)
            problem = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        if problem:
            failures.append(case)
            log(f"FAIL ({problem}): {repro_line(case)}")
    return cases, failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--repro", help="one case, as a failure printed it")
    parser.add_argument("--backward", action="store_true", help="also compare the gradients")
    parser.add_argument("--bad-inputs", action="store_true", help="the bad-input set: extreme argument values")
    args = parser.parse_args()
    custom_ops.load_library()
    if args.repro and "bad" in json.loads(args.repro):
        problem = run_bad_case(json.loads(args.repro))
        print(problem or "ok")
        sys.exit(1 if problem else 0)
    if args.repro:
        checks = run_case(json.loads(args.repro))
        for what, err, tol in checks:
            print(f"{what}: relative error {err:.3e} (tolerance {tol:.0e}): {'ok' if err <= tol else 'FAIL'}")
        sys.exit(0 if all(err <= tol for _, err, tol in checks) else 1)
    t0 = time.monotonic()
    if args.bad_inputs:
        run, failures = fuzz_bad_inputs(args.device, args.cases, args.seed)
    else:
        run, failures = fuzz(args.device, args.cases, args.seed, args.seconds, backward=args.backward)
    print(f"fuzz: {run} cases on {args.device} (seed {args.seed}) in {time.monotonic() - t0:.0f} s, "
          f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
