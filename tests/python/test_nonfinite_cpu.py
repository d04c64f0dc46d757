"""Inf and NaN through custom::conv1d_backward on the CPU, for an Inf or NaN placed in the input, the
weight or grad_output where it enters at least one product of the convolution:
- a gradient holds a non-finite value exactly when aten's does (what a gradient scaler or an anomaly
  check looks at);
- element by element, the gradients are non-finite exactly where the convolution's own products make
  them so (an exact float64 reference that sums only products that exist, never the padding's zeros):
  grad_input always, grad_weight for values in the input or the weight.

The backward's fast paths compute grad_input as forward convolutions of grad_output, whose zero padding
would meet an Inf weight and, for strided shapes with few channels, whose stacked phases hold zero
weights; those cases are routed to exact loops (conv1d_backward_cpu.cpp). The shapes cover the routes:
dense, strided with few channels (stacked phases), taps that reach only the padding, depthwise, and
grad_weight's GEMM and row loops.

Not compared: a value that enters no product (a tap that reaches only the padding, an input position no
window reads, a grad_output position whose window lies in the padding). aten's result then depends on
the algorithm it picks (the padding's zeros times the value on some paths, NaN; skipped on others), and
so does grad_weight's here: its GEMM reads the input's zero padding (a non-finite grad_output value
whose window reaches the padding gives NaN there, as aten's padded algorithms do).
"""
import random

import pytest
import torch
import torch.nn.functional as F

import conftest  # noqa: F401  (loads the library)


def products(length, l_out, k, s, p, d):
    """(output position, tap, input position) of every product of the convolution."""
    return [(l, t, l * s + t * d - p) for l in range(l_out) for t in range(k) if 0 <= l * s + t * d - p < length]


def cases(count, seed):
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        g = rng.choice([1, 1, 2, "depthwise"])
        if g == "depthwise":
            g = rng.choice([2, 4])
            c, o = g, g * rng.choice([1, 2])
        else:
            c, o = g * rng.choice([1, 2, 5, 16, 40]), g * rng.choice([1, 3, 16, 64])
        k, s, d = rng.choice([1, 2, 3, 5, 10]), rng.choice([1, 1, 2, 3, 5]), rng.choice([1, 1, 2])
        p = rng.choice([0, 1, k // 2, k, d * k])  # d * k: taps that reach only the padding
        length, n = rng.choice([8, 33, 200]), rng.choice([1, 2])
        l_out = (length + 2 * p - d * (k - 1) - 1) // s + 1
        if l_out < 1:
            continue
        dtype = rng.choice([torch.float32, torch.float32, torch.bfloat16])
        where = rng.choice(["input", "weight", "grad_output"])
        value = rng.choice([float("inf"), float("-inf"), float("nan")])
        # A product the value enters: its output position, tap and input position.
        l, t, i = rng.choice(products(length, l_out, k, s, p, d))
        out.append((n, c, o, k, length, s, p, d, g, dtype, where, value, (l, t, i), rng.random()))
    return out


def exact_gradients(x, w, gy, s, p, d, g):
    """grad_input and grad_weight in float64 from the products that exist (per tap, the output
    positions whose input position lies inside the input)."""
    x, w, gy = x.double(), w.double(), gy.double()
    n, c, length = x.shape
    o, c_g, k = w.shape
    o_g, l_out = o // g, gy.shape[2]
    gi, gw = torch.zeros_like(x), torch.zeros_like(w)
    for t in range(k):
        ls = [l for l in range(l_out) if 0 <= l * s + t * d - p < length]
        if not ls:
            continue
        i = torch.tensor([l * s + t * d - p for l in ls])
        ls = torch.tensor(ls)
        for grp in range(g):
            cs, os_ = slice(grp * c_g, (grp + 1) * c_g), slice(grp * o_g, (grp + 1) * o_g)
            gy_t = gy[:, os_][:, :, ls]                      # (N, O_g, positions)
            x_t = x[:, cs][:, :, i]                          # (N, C_g, positions)
            gi[:, cs, :].index_add_(2, i, torch.einsum("oc,nol->ncl", w[os_, :, t], gy_t))
            gw[os_, :, t] += torch.einsum("nol,ncl->oc", gy_t, x_t)
    return gi, gw


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_are_non_finite_exactly_where_atens_are(seed):
    gen = torch.Generator().manual_seed(seed)
    mismatches = []
    for n, c, o, k, length, s, p, d, g, dtype, where, value, (l, t, i), r in cases(150, seed):
        x = torch.randn(n, c, length, generator=gen)
        w = torch.randn(o, c // g, k, generator=gen)
        gy = torch.randn(F.conv1d(x, w, None, s, p, d, g).shape, generator=gen)
        batch, group = int(r * n), int(r * g)
        channel, out_channel = group * (c // g), group * (o // g)
        if where == "input":
            x[batch, channel, i] = value
        elif where == "weight":
            w[out_channel, 0, t] = value
        else:
            gy[batch, out_channel, l] = value
        x, w, gy = x.to(dtype), w.to(dtype), gy.to(dtype)
        ours = torch.ops.custom.conv1d_backward(gy, x, w, [s], [p, p], [d], g, [True, True, True])
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        br = torch.zeros(o, dtype=dtype, requires_grad=True)
        ref = torch.autograd.grad(F.conv1d(xr, wr, br, s, p, d, g), [xr, wr, br], gy)
        case = (f"(N, C, O, K, L) {(n, c, o, k, length)} stride {s} padding {p} dilation {d} groups {g} {dtype} "
                f"{value} in the {where}")
        for name, got, want in zip(("input", "weight", "bias"), ours, ref):
            if bool(torch.isfinite(got).all()) != bool(torch.isfinite(want).all()):
                mismatches.append(f"grad_{name}: {case}: ours finite {bool(torch.isfinite(got).all())}, aten's "
                                  f"{bool(torch.isfinite(want).all())}")
        exact = exact_gradients(x, w, gy, s, p, d, g)
        for name, got, want in zip(("input", "weight"), ours[:2], exact):
            if name == "weight" and where == "grad_output":
                continue
            if not (torch.equal(got.isnan(), want.isnan()) and torch.equal(got.isinf(), want.isinf())):
                mismatches.append(f"grad_{name}: {case}: NaN at {got.isnan().sum()} and Inf at {got.isinf().sum()} "
                                  f"elements, the exact sums' at {want.isnan().sum()} and {want.isinf().sum()}")
    assert not mismatches, "\n".join(mismatches[:10])
