"""Every CPU instruction-set path of custom::conv1d against F.conv1d in float64.

The CPU kernel picks its micro-kernels at run time (AVX-512-BF16, AVX-512, AVX2+FMA, portable);
CUSTOM_OPS_CPU_ISA lowers the choice once per process, so each level runs in a subprocess. On a CPU
without a level the kernel falls back to the best it has (the case then repeats a lower level).

Each case also checks the three gradients of custom::conv1d_backward (grad_input runs the forward's
kernels on grad_output; grad_weight is a GEMM on the same micro-kernels, blocked by 128 output channels,
192 channel-tap rows and chunks of 128 positions summed in float32 over 1024).

The sweep aims at the kernel's edges: output lengths around the vector, micro-tile (16/32/64) and tile
(256) widths, output channel counts around the 4-row micro-tile and 32-channel blocks, odd channel counts
(bfloat16 pairs channels), channel counts past a reduction block, strides (phase decomposition) and
dilations, paddings that put tiles partly outside the input, non-contiguous inputs. Outputs are poisoned
(NaN in the block the op is likely to get next) before each call.

    CUSTOM_OPS_CPU_ISA=avx2 python tests/python/test_cpu_isa.py --isa avx2 [--cases 300]
"""
import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
TOLERANCE = {"float64": 1e-12, "float32": 2e-6, "bfloat16": 1e-2, "float16": 2e-3}
# Gradients: reductions over batch x positions (grad_weight) or channels x taps (grad_input); half types'
# inputs and outputs are rounded, the sums are in float32.
GRAD_TOLERANCE = {"float64": 1e-10, "float32": 1e-5, "bfloat16": 4e-2, "float16": 8e-3}


def sweep(cases, seed):
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(HERE.parents[2] / "python"))
    import custom_ops

    custom_ops.load_library()
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    failures = []
    for i in range(cases):
        dtype_name = rng.choice(["float32", "float32", "bfloat16", "bfloat16", "float64", "float16"])
        dtype = getattr(torch, dtype_name)
        groups = rng.choice([1, 1, 1, 2, 3, "depthwise"])
        if groups == "depthwise":
            groups = rng.choice([1, 5, 16])
            c, o = groups, groups * rng.choice([1, 2])
        else:
            c = groups * rng.choice([1, 2, 3, 5, 8, 17, 64, 130])
            o = groups * rng.choice([1, 3, 4, 5, 31, 32, 33, 64, 65, 257])
        k = rng.choice([1, 2, 3, 5, 7, 10, 31])
        stride = rng.choice([1, 1, 2, 3, 4, 5])
        dilation = rng.choice([1, 1, 2, 4])
        span = dilation * (k - 1) + 1
        padding = rng.choice([0, 1, k // 2, span - 1, span + 3])
        l_out = rng.choice([1, 15, 16, 17, 31, 47, 48, 49, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 300, 513,
                            1025, 2100])
        length = max(1, (l_out - 1) * stride + span - 2 * padding)
        n = rng.choice([1, 1, 2, 3])
        while n * o * c * k * l_out > 4_000_000 and o > groups:
            o = max(groups, (o // 2) // groups * groups)
        contiguous = rng.random() < 0.8
        if contiguous:
            x = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
        else:
            x = torch.randn(n, length * 2, c, generator=gen, dtype=torch.float64).transpose(1, 2)[:, :, ::2]
        w = torch.randn(o, c // groups, k, generator=gen, dtype=torch.float64)
        b = torch.randn(o, generator=gen, dtype=torch.float64) if rng.random() < 0.7 else None
        x, w = x.to(dtype), w.to(dtype)
        b = None if b is None else b.to(dtype)
        ref = F.conv1d(x.double(), w.double(), None if b is None else b.double(), stride, padding, dilation, groups)
        poison = torch.full(ref.shape, float("nan"), dtype=dtype)
        del poison
        out = torch.ops.custom.conv1d(x, w, b, [stride], [padding], [dilation], groups)
        case = dict(dtype=dtype_name, n=n, c=c, o=o, k=k, length=length, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, bias=b is not None, contiguous=contiguous)
        if out.shape != ref.shape:
            failures.append(f"case {i} {case}: shape {tuple(out.shape)} != {tuple(ref.shape)}")
            continue
        diff = (out.double() - ref).abs()
        err = float("inf") if torch.isnan(diff).any() else (diff.max() / ref.abs().max().clamp_min(1e-30)).item()
        if not err <= TOLERANCE[dtype_name]:
            failures.append(f"case {i} {case}: relative error {err:.3e}")
        failures += check_gradients(i, case, x, w, b, stride, padding, dilation, groups, ref.shape, gen, rng)
    return failures


def check_gradients(i, case, x, w, b, stride, padding, dilation, groups, out_shape, gen, rng):
    """custom::conv1d_backward against aten's float64 gradients for a random upstream gradient (sometimes
    a non-contiguous one)."""
    import torch
    import torch.nn.functional as F

    dtype = x.dtype
    if rng.random() < 0.8:
        gy = torch.randn(out_shape, generator=gen, dtype=torch.float64)
    else:
        gy = torch.randn(out_shape[0], out_shape[2], out_shape[1], generator=gen, dtype=torch.float64).transpose(1, 2)
    mask = [True, True, b is not None]
    grads = torch.ops.custom.conv1d_backward(gy.to(dtype), x, w, [stride], [padding, padding], [dilation], groups,
                                             mask)
    inputs = [t.double().requires_grad_() for t in (x, w) + ((b,) if b is not None else ())]
    ref_y = F.conv1d(inputs[0], inputs[1], inputs[2] if b is not None else None, stride, padding, dilation, groups)
    refs = torch.autograd.grad(ref_y, inputs, gy.to(dtype).double())
    failures = []
    for name, got, ref in zip(("input", "weight", "bias"), grads, refs):
        if got.shape != ref.shape:
            failures.append(f"case {i} {case}: grad_{name} shape {tuple(got.shape)} != {tuple(ref.shape)}")
            continue
        diff = (got.double() - ref).abs()
        err = float("inf") if torch.isnan(diff).any() else (diff.max() / ref.abs().max().clamp_min(1e-30)).item()
        if not err <= GRAD_TOLERANCE[case["dtype"]]:
            failures.append(f"case {i} {case}: grad_{name} relative error {err:.3e}")
    return failures


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512", "avx512bf16"])
def test_cpu_isa_path_matches_fconv_float64(isa):
    env = dict(os.environ, CUSTOM_OPS_CPU_ISA=isa)
    result = subprocess.run([sys.executable, str(HERE), "--isa", isa, "--cases", "250"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "cases passed" in result.stdout


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--isa", required=True)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    assert os.environ.get("CUSTOM_OPS_CPU_ISA") == args.isa, "run with CUSTOM_OPS_CPU_ISA set to --isa"
    failed = sweep(args.cases, args.seed)
    for line in failed[:20]:
        print(line)
    if failed:
        print(f"{len(failed)} of {args.cases} cases failed")
        sys.exit(1)
    print(f"{args.cases} cases passed ({args.isa})")
