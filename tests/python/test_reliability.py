"""Reliability of custom::conv1d beyond single calls: bitwise determinism, CUDA graphs, non-default
streams, no host synchronisation, concurrent callers, flat memory over many calls, and an input of more
than 2^31 elements. References are aten's conv1d in float64 (or float32 on slices for the huge case)."""
import threading

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICES, TOLERANCE, relative_max_error

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU present")
op = torch.ops.custom.conv1d

# One shape per CUDA kernel family (and the CPU kernel's paths): (N, C, O, K, L), stride, padding,
# dilation, groups.
SHAPES = [
    ((2, 64, 128, 3, 2000), 1, 1, 1, 1),      # tensorcore_large
    ((3, 40, 48, 5, 777), 1, 2, 2, 1),        # tensorcore_medium
    ((2, 64, 64, 5, 999), 1, 2, 1, 8),        # tensorcore_small
    ((2, 32, 128, 4, 900), 2, 1, 1, 1),       # tensorcore_wide_window
    ((2, 16, 16, 4, 3000), 1, 3, 1, 16),      # depthwise_sliding
    ((2, 8, 8, 5, 2500), 3, 7, 2, 8),         # depthwise
    ((2, 16, 96, 3, 2000), 8, 0, 1, 1),       # direct
]
SHAPE_IDS = ["large", "medium", "small", "wide-window", "depthwise-sliding", "depthwise", "direct"]


def make(shape, dtype, device, seed=0, requires_grad=False):
    (n, c, o, k, length), stride, padding, dilation, groups = shape
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, length, generator=gen, dtype=torch.float64).to(device, dtype).requires_grad_(requires_grad)
    w = torch.randn(o, c // groups, k, generator=gen, dtype=torch.float64).to(device, dtype).requires_grad_(requires_grad)
    b = torch.randn(o, generator=gen, dtype=torch.float64).to(device, dtype).requires_grad_(requires_grad)
    return x, w, b, ([stride], [padding], [dilation], groups)


def reference(x, w, b, args):
    stride, padding, dilation, groups = args
    return F.conv1d(x.detach().double().cpu(), w.detach().double().cpu(), b.detach().double().cpu(), stride, padding,
                    dilation, groups)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_forward_is_bitwise_deterministic(shape, dtype, device):
    x, w, b, args = make(shape, dtype, device)
    first = op(x, w, b, *args)
    for _ in range(3):
        assert torch.equal(op(x, w, b, *args), first)


@needs_cuda
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_cuda_graph_capture_and_replay(shape):
    """Forward and backward captured in one CUDA graph, replayed on new data copied into its inputs."""
    x, w, b, args = make(shape, torch.float32, "cuda", seed=1)
    (n, c, o, k, length), stride, padding, dilation, groups = shape
    gy = torch.randn_like(op(x, w, b, *args))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture, as CUDA graphs require
        for _ in range(2):
            y = op(x, w, b, *args)
            grads = torch.ops.custom.conv1d_backward(gy, x, w, args[0], args[1] * 2, args[2], groups, [True, True, True])
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = op(x, w, b, *args)
        grads = torch.ops.custom.conv1d_backward(gy, x, w, args[0], args[1] * 2, args[2], groups, [True, True, True])
    for seed in (2, 3):
        x_new, w_new, b_new, _ = make(shape, torch.float32, "cuda", seed=seed)
        gy_new = torch.randn(gy.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        x.copy_(x_new), w.copy_(w_new), b.copy_(b_new), gy.copy_(gy_new)
        y.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        tol = 5e-3 if torch.backends.cudnn.allow_tf32 else TOLERANCE[torch.float32]
        assert relative_max_error(y, reference(x, w, b, args)) <= tol
        xr = x.detach().double().cpu().requires_grad_()
        wr = w.detach().double().cpu().requires_grad_()
        yr = F.conv1d(xr, wr, None, *args)
        gx_ref, gw_ref = torch.autograd.grad(yr, [xr, wr], gy.double().cpu())
        assert relative_max_error(grads[0], gx_ref) <= tol
        assert relative_max_error(grads[1], gw_ref) <= tol
        assert relative_max_error(grads[2], gy.double().sum((0, 2)).cpu()) <= 1e-5


@needs_cuda
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_non_default_stream_and_no_host_sync(shape):
    """On a side stream, under set_sync_debug_mode("error"): forward and all gradients, correct."""
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x, w, b, args = make(shape, torch.float32, "cuda", seed=4, requires_grad=True)
        torch.cuda.set_sync_debug_mode("error")
        try:
            y = op(x, w, b, *args)
            gy = torch.ones_like(y).mul_(0.5)
            gx, gw, gb = torch.autograd.grad(y, [x, w, b], gy)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    stream.synchronize()
    tol = 5e-3 if torch.backends.cudnn.allow_tf32 else TOLERANCE[torch.float32]
    assert relative_max_error(y, reference(x, w, b, args)) <= tol
    xr, wr = x.detach().double().cpu().requires_grad_(), w.detach().double().cpu().requires_grad_()
    gx_ref, gw_ref = torch.autograd.grad(F.conv1d(xr, wr, None, *args), [xr, wr], gy.double().cpu())
    assert relative_max_error(gx, gx_ref) <= tol and relative_max_error(gw, gw_ref) <= tol
    assert relative_max_error(gb, gy.double().sum((0, 2)).cpu()) <= 1e-6


@pytest.mark.parametrize("device", DEVICES)
def test_eight_threads_match_serial_calls(device):
    """8 threads call the op at once (CUDA: a stream each); every result equals the serial one bitwise."""
    jobs = [make(SHAPES[i % len(SHAPES)], torch.float32, device, seed=10 + i) for i in range(8)]
    serial = [op(x, w, b, *args) for x, w, b, args in jobs]
    results, errors = [None] * 8, []
    barrier = threading.Barrier(8)

    def worker(i):
        try:
            x, w, b, args = jobs[i]
            stream = torch.cuda.Stream() if device == "cuda" else None
            barrier.wait()
            for _ in range(10):
                if stream is not None:
                    with torch.cuda.stream(stream):
                        out = op(x, w, b, *args)
                    stream.synchronize()
                else:
                    out = op(x, w, b, *args)
                results[i] = out
                assert torch.equal(out, serial[i]), f"thread {i}"
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert all(r is not None for r in results)


@needs_cuda
def test_memory_stays_flat_over_10000_calls():
    x, w, b, args = make(SHAPES[0], torch.float32, "cuda", seed=5)
    gy = torch.randn_like(op(x, w, b, *args))
    for _ in range(3):  # warm-up: the caching allocator's blocks, the kernels' cached attributes
        op(x, w, b, *args)
        torch.ops.custom.conv1d_backward(gy, x, w, args[0], args[1] * 2, args[2], args[3], [True, True, True])
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for _ in range(10000):
        op(x, w, b, *args)
    for _ in range(1000):
        torch.ops.custom.conv1d_backward(gy, x, w, args[0], args[1] * 2, args[2], args[3], [True, True, True])
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before


def check_huge(x, w, pad, groups):
    """ours(x) against F.conv1d in float32 (TF32 off) on chunks of output positions, inputs sliced with
    their halo; x has more than 2^31 elements."""
    assert x.numel() > 2**31
    out = op(x, w, None, [1], [pad], [1], groups)
    k, length = w.shape[-1], x.shape[-1]
    chunk = (1 << 28) // w.shape[0]  # output positions a reference slice covers
    assert out.shape[-1] == length + 2 * pad - k + 1
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        for a in range(0, out.shape[-1], chunk):
            b = min(out.shape[-1], a + chunk)
            lo, hi = a - pad, b - pad + k - 1  # input positions the outputs [a, b) read
            xs = x[:, :, max(lo, 0):min(hi, length)].float()
            xs = F.pad(xs, (max(0, -lo), max(0, hi - length)))
            ref = F.conv1d(xs, w.float(), None, 1, 0, 1, groups)
            diff = (out[:, :, a:b].float() - ref).abs().max()  # on the GPU: the slices are large
            err = (diff / ref.abs().max()).item()
            assert err <= TOLERANCE[torch.bfloat16], f"outputs [{a}, {b}): relative error {err:.2e}"
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    del out


@needs_cuda
@pytest.mark.parametrize("kind", ["depthwise", "tensor-core", "hopper"])
def test_input_over_2_31_elements(kind):
    if torch.cuda.get_device_properties(0).total_memory < 40 * 2**30:
        pytest.skip("needs about 20 GB of GPU memory")
    gen = torch.Generator(device="cuda").manual_seed(6)
    if kind == "depthwise":  # 2 x (2^30 + 4099) bfloat16 elements, depthwise_sliding
        x = torch.randn(1, 2, 2**30 + 4099, device="cuda", dtype=torch.bfloat16, generator=gen)
        w = torch.randn(2, 1, 4, device="cuda", dtype=torch.bfloat16, generator=gen)
        assert torch.ops.custom.conv1d_cuda_kernel(x, w, [1], [3], [1], 2) == "depthwise_sliding"
        check_huge(x, w, pad=3, groups=2)
    else:  # 4 x (2^29 + 1000) elements, 8 output channels: tensorcore_small, or the Hopper family
        x = torch.randn(1, 4, 2**29 + 1000, device="cuda", dtype=torch.bfloat16, generator=gen)
        w = torch.randn(8, 4, 3, device="cuda", dtype=torch.bfloat16, generator=gen)
        if kind == "hopper" and torch.cuda.get_device_capability() != (9, 0):
            pytest.skip("the Hopper family needs an sm_90 GPU")
        previous = torch.ops.custom.conv1d_cuda_use_hopper(kind == "hopper")
        try:
            expected = "hopper_bf16" if kind == "hopper" else "tensorcore_small"
            assert torch.ops.custom.conv1d_cuda_kernel(x, w, [1], [1], [1], 1).startswith(expected)
            check_huge(x, w, pad=1, groups=1)
        finally:
            torch.ops.custom.conv1d_cuda_use_hopper(previous)
    del x
    torch.cuda.empty_cache()
