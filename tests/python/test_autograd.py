"""Gradients of custom::conv1d (autograd through custom::conv1d_backward) and autocast.

References are aten's conv1d through autograd, in float64 on the CPU. Inputs are random, gradients
come from random upstream gradients (not ones), and the CUDA checks run the fast kernels in every dtype.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICES, TOLERANCE, relative_max_error

import custom_ops

HAS_CUDA = torch.cuda.is_available()
op = torch.ops.custom.conv1d

# (N, C, O, K, L), stride, padding (int or "same"/"valid"), dilation, groups, bias
CASES = [
    ((2, 4, 6, 3, 17), 1, 1, 1, 1, True),
    ((2, 6, 4, 5, 23), 2, 2, 2, 2, False),       # stride, dilation, groups
    ((1, 3, 3, 4, 19), 1, 5, 1, 3, True),        # depthwise, padding wider than the kernel
    ((3, 4, 8, 2, 20), 3, 0, 3, 4, True),        # stride 3, dilation 3, groups 4
    ((2, 4, 6, 4, 21), 1, "same", 2, 1, True),   # "same" with an odd total (extra element right)
    ((2, 6, 6, 3, 15), 1, "valid", 1, 2, False),
    ((None, 4, 6, 3, 13), 1, 1, 1, 1, True),     # unbatched
    ((2, 5, 7, 1, 9), 2, 0, 1, 1, True),         # pointwise, strided
    ((2, 16, 24, 3, 301), 12, 1, 1, 1, True),    # stride 12: more phases than one pass interleaves
    ((2, 4, 8, 1, 3), 5, 0, 1, 1, False),        # stride 5 over 3 positions: empty phases
]
IDS = ["dense", "stride-dilation-groups", "depthwise-wide-pad", "stride3", "same-odd", "valid-groups",
       "unbatched", "pointwise-strided", "stride12", "stride-past-length"]


def make(case, dtype, device, gen):
    (n, c, o, k, length), stride, padding, dilation, groups, bias = case
    shape = (c, length) if n is None else (n, c, length)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    w = torch.randn(o, c // groups, k, generator=gen, dtype=torch.float64)
    b = torch.randn(o, generator=gen, dtype=torch.float64) if bias else None
    cast = lambda t: None if t is None else t.to(device=device, dtype=dtype).requires_grad_()  # noqa: E731
    return cast(x), cast(w), cast(b), ([stride], padding if isinstance(padding, str) else [padding], [dilation], groups)


def call(x, w, b, args):
    stride, padding, dilation, groups = args
    if isinstance(padding, str):
        return op.padding(x, w, b, stride, padding, dilation, groups)
    return op(x, w, b, stride, padding, dilation, groups)


def gradients_and_reference(case, dtype, device, seed):
    """Our gradients (input, weight, bias if any) for a random upstream gradient, and aten's float64
    gradients of the same (rounded) inputs and upstream gradient."""
    gen = torch.Generator().manual_seed(seed)
    x, w, b, args = make(case, dtype, device, gen)
    y = call(x, w, b, args)
    gy = torch.randn(y.shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    inputs = [t for t in (x, w, b) if t is not None]
    grads = torch.autograd.grad(y, inputs, gy)
    ref_inputs = [t.detach().double().cpu().requires_grad_() for t in inputs]
    stride, padding, dilation, groups = args
    ref_y = F.conv1d(ref_inputs[0], ref_inputs[1], ref_inputs[2] if b is not None else None, stride, padding,
                     dilation, groups)
    return grads, torch.autograd.grad(ref_y, ref_inputs, gy.double().cpu())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case, device):
    gen = torch.Generator().manual_seed(1)
    x, w, b, args = make(case, torch.float64, device, gen)
    inputs = (x, w) if b is None else (x, w, b)
    assert torch.autograd.gradcheck(lambda *t: call(*t, None, args) if len(t) == 2 else call(*t, args), inputs)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_aten(case, dtype, device, strict_fp32):
    grads, ref_grads = gradients_and_reference(case, dtype, device, seed=2)
    # Gradients are reductions over many terms: allow the dtype's tolerance scaled for half types.
    tol = TOLERANCE[dtype] * (4 if dtype in (torch.float16, torch.bfloat16) else 1)
    for name, g, r in zip(("input", "weight", "bias"), grads, ref_grads):
        assert g.dtype == dtype and g.shape == r.shape
        err = relative_max_error(g, r)
        assert err <= tol, f"grad_{name}: relative error {err:.3e} > {tol:.1e}"


@pytest.mark.parametrize("device", DEVICES)
def test_only_requested_gradients(device):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 16, generator=gen, dtype=torch.float64).to(device)
    w = torch.randn(6, 4, 3, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    y = op(x, w, None, [1], [1], [1], 1)
    (gw,) = torch.autograd.grad(y.sum(), [w])
    ref_w = w.detach().cpu().requires_grad_()
    (rw,) = torch.autograd.grad(F.conv1d(x.cpu(), ref_w, None, 1, 1).sum(), [ref_w])
    assert relative_max_error(gw, rw) <= 1e-12
    gi, gwm, gb = torch.ops.custom.conv1d_backward(torch.randn(2, 6, 16, dtype=torch.float64, device=device), x,
                                                    w.detach(), [1], [1, 1], [1], 1, [False, True, False])
    assert gi is None and gb is None and gwm.shape == w.shape


def test_double_backward_raises_clearly():
    x = torch.randn(2, 3, 10, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(op(x, w, None, [1], [1], [1], 1).sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError, match="derivative for custom::conv1d_backward is not implemented"):
        gx.sum().backward()


def test_backward_validates_grad_output():
    x, w = torch.randn(2, 3, 10), torch.randn(4, 3, 3)
    with pytest.raises(RuntimeError, match="'grad_output' of the output's shape"):
        torch.ops.custom.conv1d_backward(torch.randn(2, 4, 9), x, w, [1], [1, 1], [1], 1, [True, True, True])
    with pytest.raises(RuntimeError, match="'padding' to have 2 elements"):
        torch.ops.custom.conv1d_backward(torch.randn(2, 4, 10), x, w, [1], [1], [1], 1, [True, True, True])


def opcheck_samples(device):
    gen = torch.Generator().manual_seed(4)

    def r(*shape, grad=True):
        return torch.randn(*shape, generator=gen).to(device).requires_grad_(grad)

    yield op.default, (r(2, 4, 17), r(6, 4, 3), r(6), [1], [1], [1], 1)
    yield op.default, (r(3, 6, 40), r(6, 2, 5), None, [2], [3], [2], 3)
    yield op.default, (r(5, 33), r(7, 5, 4), r(7), [1], [0], [1], 1)
    yield op.default, (r(2, 4, 17, grad=False), r(6, 4, 3), None, [1], [1], [1], 1)  # weight gradient only
    yield op.padding, (r(2, 4, 19), r(4, 4, 4), r(4), [1], "same", [3], 1)
    yield torch.ops.custom.conv1d_backward.default, (r(2, 6, 17, grad=False), r(2, 4, 17, grad=False),
                                                      r(6, 4, 3, grad=False), [1], [1, 1], [1], 1, [True, True, True])
    yield torch.ops.custom.conv1d_backward.default, (r(3, 6, 19, grad=False), r(3, 6, 40, grad=False),
                                                      r(6, 2, 5, grad=False), [2], [3, 3], [2], 3, [True, False, True])


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_with_gradients(device):
    """opcheck's autograd-registration and AOT-dispatch checks with inputs that require grad."""
    count = 0
    for fn, args in opcheck_samples(device):
        torch.library.opcheck(fn, args)
        count += 1
    assert count == 7


@pytest.mark.parametrize("device_type, dtype", [("cpu", torch.bfloat16)] +
                         ([("cuda", torch.float16), ("cuda", torch.bfloat16)] if HAS_CUDA else []))
def test_autocast_matches_aten(device_type, dtype):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 8, 50, generator=gen).to(device_type)
    w = torch.randn(16, 8, 3, generator=gen).to(device_type).requires_grad_()
    b = torch.randn(16, generator=gen).to(device_type)
    with torch.autocast(device_type, dtype=dtype):
        ours = op(x, w, b, [1], [1], [1], 1)
        ref = F.conv1d(x, w, b, 1, 1)
        same = op.padding(x, w, b, [1], "same", [1], 1)
    assert ours.dtype == ref.dtype == same.dtype == dtype
    assert relative_max_error(ours, ref) <= 1e-2
    ours.float().sum().backward()  # the gradient flows back to the float32 weight through the cast
    assert w.grad is not None and w.grad.dtype == torch.float32


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU present")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_backward_is_bitwise_reproducible(dtype):
    torch.use_deterministic_algorithms(True)
    try:
        gen = torch.Generator().manual_seed(6)
        x = torch.randn(4, 64, 3000, generator=gen).to("cuda", dtype).requires_grad_()
        w = torch.randn(128, 64, 3, generator=gen).to("cuda", dtype).requires_grad_()
        b = torch.randn(128, generator=gen).to("cuda", dtype).requires_grad_()
        gy = torch.randn(4, 128, 3000, generator=gen).to("cuda", dtype)
        runs = [torch.autograd.grad(op(x, w, b, [1], [1], [1], 1), [x, w, b], gy) for _ in range(3)]
        for other in runs[1:]:
            for a, c in zip(runs[0], other):
                assert torch.equal(a, c)
    finally:
        torch.use_deterministic_algorithms(False)


# The CPU grad_weight splits its reduction by the shape alone (float32 sums, then float64 across chunks
# and splits in a fixed order): the same bits for every thread count, and aten's float64 gradients within
# the dtype's tolerance. Shapes with several splits of one unit (1,024 positions) each, splits of several
# units (16 groups), one split of several units (64 groups), strides and odd last chunks; every floating
# type (bfloat16 takes the pair path on AVX-512-BF16 CPUs).
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_cpu_backward_same_bits_for_every_thread_count(dtype):
    shapes = [((1, 80, 256, 5, 3000), 1, 2, 1), ((1, 64, 64, 7, 8191), 1, 3, 1), ((2, 40, 200, 4, 777), 3, 2, 1),
              ((1, 96, 160, 3, 2501), 2, 0, 1), ((2, 64, 256, 3, 5000), 1, 1, 16), ((1, 128, 1024, 3, 3000), 1, 1, 64)]
    threads = torch.get_num_threads()
    try:
        for i, ((n, c, o, k, length), stride, padding, groups) in enumerate(shapes):
            gen = torch.Generator().manual_seed(20 + i)
            x64 = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
            w64 = torch.randn(o, c // groups, k, generator=gen, dtype=torch.float64)
            out_length = (length + 2 * padding - k) // stride + 1
            gy64 = torch.randn(n, o, out_length, generator=gen, dtype=torch.float64)
            x, w, gy = x64.to(dtype), w64.to(dtype), gy64.to(dtype)
            runs = []
            for count in (1, 2, 3):
                torch.set_num_threads(count)
                runs.append(torch.ops.custom.conv1d_backward(gy, x, w, [stride], [padding, padding], [1], groups,
                                                             [True, True, True]))
            for other in runs[1:]:
                for a, b in zip(runs[0], other):
                    assert torch.equal(a, b), (i, dtype)
            leaves = [x.double().requires_grad_(), w.double().requires_grad_()]
            refs = torch.autograd.grad(F.conv1d(*leaves, None, stride, padding, 1, groups), leaves, gy.double())
            for got, ref in zip(runs[0][:2], refs):
                assert relative_max_error(got, ref) <= TOLERANCE[dtype], (i, dtype)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("device", DEVICES)
def test_scripted_module_trains_like_nn_conv1d(device):
    torch.manual_seed(7)
    ref = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv1d(8, 2, 5, padding="same", dilation=2)).double().to(device)
    ours = torch.jit.script(custom_ops.swap_conv1d(copy.deepcopy(ref)))
    x = torch.randn(3, 4, 40, dtype=torch.float64, device=device)
    target = torch.randn(3, 2, 40, dtype=torch.float64, device=device)
    for model in (ref, ours):
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        for _ in range(4):
            opt.zero_grad()
            F.mse_loss(model(x), target).backward()
            opt.step()
    for (name, p), q in zip(ref.named_parameters(), ours.parameters()):
        assert relative_max_error(q, p) <= 1e-12, name


# Larger shapes for the CUDA backward's kernel choices: tensor-core grad_weight with partial 64-channel
# tiles and several chunks and splits, tap groups (K > 4), grad_input phases at strides 2 and 3 (with
# dilations sharing a factor with the stride, where some phases get no tap), the one-channel
# grad_weight (depthwise), and padding wider than the dilated kernel; one input channel with several
# output channels (the one-channel grad_input kernel, grad_weight sharing inputs over output channels,
# partial chunks of both); the 32 x 32 tensor-core grad_weight tile with an odd length (element loads)
# and with two tap groups.
LARGE_CASES = [
    ((3, 70, 130, 3, 1000), 1, 1, 1, 1, True),
    ((2, 96, 96, 5, 777), 2, 2, 1, 2, False),
    ((2, 40, 48, 9, 500), 3, 4, 2, 1, True),
    ((2, 24, 32, 6, 600), 2, 3, 2, 1, False),
    ((2, 64, 64, 4, 3001), 1, 3, 1, 64, True),
    ((1, 16, 16, 3, 300), 1, 7, 1, 1, False),
    ((2, 1, 42, 10, 2003), 5, 3, 1, 1, True),
    ((2, 6, 18, 3, 1001), 1, 2, 2, 6, False),
    ((2, 64, 64, 5, 999), 1, 2, 1, 2, True),
    ((2, 24, 20, 11, 517), 2, 5, 1, 1, False),
]
LARGE_IDS = ["tc-partial-tiles", "stride2-groups", "stride3-dilation2-k9", "stride2-dilation2", "depthwise",
             "wide-padding", "one-channel-front-end", "channel-multiplier", "small-tile-odd-length",
             "small-tile-tap-groups"]
# (dtype, TF32 allowed, tolerance on max |grad - ref| / max |ref|)
LARGE_PRECISIONS = [(torch.float64, False, TOLERANCE[torch.float64]), (torch.float32, True, 5e-3),
                    (torch.float32, False, 1e-5), (torch.float16, True, 4 * TOLERANCE[torch.float16]),
                    (torch.bfloat16, True, 4 * TOLERANCE[torch.bfloat16])]


@pytest.mark.parametrize("dtype, allow_tf32, tol", LARGE_PRECISIONS, ids=["fp64", "fp32-tf32", "fp32-strict", "fp16", "bf16"])
@pytest.mark.parametrize("case", LARGE_CASES, ids=LARGE_IDS)
def test_gradients_match_aten_larger_shapes(case, dtype, allow_tf32, tol, device):
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    try:
        grads, ref_grads = gradients_and_reference(case, dtype, device, seed=8)
        for name, g, r in zip(("input", "weight", "bias"), grads, ref_grads):
            err = relative_max_error(g, r)
            assert err <= tol, f"grad_{name}: relative error {err:.3e} > {tol:.1e}"
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def test_cpu_backward_cost_follows_the_products_not_the_stride_or_dilation():
    """A huge stride (few phases have taps) or a huge dilation (taps far apart, most in the padding):
    the CPU backward's cost is that of the products that exist. Before, every phase up to the stride
    was a tensor operation (1.3 s at stride 2e6), and the fast paths gathered windows as long as the
    dilated kernel (seconds and gigabytes at dilation 2e8; out of memory at 2e9)."""
    import time

    cases = [  # (N, C, O, K, L), stride, padding, dilation
        ((1, 1, 4, 3, 10_000_003), 10_000_000, 0, 1),
        ((1, 4, 16, 2, 10), 1, 1_000_000_000, 2_000_000_000),
    ]
    for (n, c, o, k, length), stride, padding, dilation in cases:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n, c, length, generator=gen)
        w = torch.randn(o, c, k, generator=gen)
        l_out = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
        gy = torch.randn(n, o, l_out, generator=gen)
        start = time.perf_counter()
        grads = torch.ops.custom.conv1d_backward(gy, x, w, [stride], [padding, padding], [dilation], 1,
                                                 [True, True, True])
        seconds = time.perf_counter() - start
        xr, wr = x.double().requires_grad_(), w.double().requires_grad_()
        refs = torch.autograd.grad(F.conv1d(xr, wr, None, stride, padding, dilation), [xr, wr], gy.double())
        for got, ref in zip(grads[:2], refs):
            assert relative_max_error(got, ref) <= 1e-5
        assert seconds < 3, f"stride {stride}, dilation {dilation}: {seconds:.1f} s"
