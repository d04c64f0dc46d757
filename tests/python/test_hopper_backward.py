"""The Hopper (sm_90a) grad_weight kernel (ops/conv1d/cuda/hopper/grad_weight_hopper_*).

Every case is a branch of its plan: several keys (input-channel tiles, output-channel tiles, tap
groups, groups), strides, dilation, padding, long rows split over many CTAs, rows TMA cannot read in
place (grad_output of odd length, a channels-last input: both repacked), taps a CTA cut short by a
long dilation. The backward kernel query, asked for an sm_90 GPU (arch=90), must name the kernel on
every machine; on an sm_90 GPU the profiler must see it run, the three gradients are compared with
aten's float64 ones, and grad_weight must be bitwise the same on a second call (the splits are added in
a fixed order).
"""
import pytest
import torch
import torch.nn.functional as F

from conftest import TOLERANCE, relative_max_error

HOPPER_GPU = torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0)

# (name, (N, C, O, K, L), conv arguments, input layout)
CASES = [
    ("headline-like, grad_output rows of odd length", (2, 64, 128, 3, 4099), dict(), None),
    ("three channel tiles, two output tiles, two tap groups", (2, 130, 200, 5, 777), dict(padding=2), None),
    ("groups of 40 input and 48 output channels", (3, 160, 192, 3, 500), dict(padding=1, groups=4), None),
    ("stride 2, dilation 3, padding 4", (2, 24, 40, 5, 777), dict(stride=2, padding=4, dilation=3), None),
    ("stride 3", (2, 32, 64, 4, 1000), dict(stride=3, padding=1), None),
    ("long kernel, 8 (TF32) or 11 (16-bit) tap groups", (2, 32, 64, 31, 600), dict(padding=15), None),
    ("one long row over many splits", (1, 48, 64, 3, 70001), dict(padding=1), None),
    ("pointwise", (4, 48, 80, 1, 1024), dict(), None),
    # a dilation that leaves room for 3 taps a CTA in TF32 (of 4) and 2 in 16-bit (of 3): tap groups with a
    # short last (3 + 2; 2 + 2 + 1)
    ("taps a CTA cut by a long dilation", (2, 32, 64, 5, 1000), dict(padding=5, dilation=70), None),
    # a dilation that leaves room for 1 tap a CTA in 16-bit (of 3; a window of at most 256 positions)
    ("one tap a CTA by a longer dilation", (2, 32, 64, 4, 1000), dict(padding=5, dilation=140), None),
    ("channels-last input", (2, 40, 72, 3, 513), dict(padding=1), "channels-last"),
    # many tiles a CTA with 5 stages' room in 16-bit (the plan takes 4: the consumers' alternate stages)
    ("stride 3, many tiles a CTA", (1, 32, 64, 4, 70001), dict(stride=3), None),
]

PRECISIONS = [  # (dtype, suffix, tolerance)
    (torch.float32, "_tf32", 5e-3),
    (torch.float16, "_fp16", 4 * TOLERANCE[torch.float16]),
    (torch.bfloat16, "_bf16", 4 * TOLERANCE[torch.bfloat16]),
]


def conv_args(conv):
    return [conv.get("stride", 1)], [conv.get("padding", 0)], [conv.get("dilation", 1)], conv.get("groups", 1)


@pytest.mark.parametrize("dtype, suffix, tolerance", PRECISIONS, ids=["tf32", "fp16", "bf16"])
@pytest.mark.parametrize("name, shape, conv, layout", CASES, ids=[c[0] for c in CASES])
def test_hopper_grad_weight(name, shape, conv, layout, dtype, suffix, tolerance, tf32_setting):
    tf32_setting(True)
    n, c, o, k, length = shape
    args = conv_args(conv)
    groups = args[3]
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    x64 = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
    w64 = torch.randn(o, c // groups, k, generator=gen, dtype=torch.float64)
    b64 = torch.randn(o, generator=gen, dtype=torch.float64)
    meta_x = torch.empty(n, c, length, dtype=dtype, device="meta")
    meta_w = torch.empty(o, c // groups, k, dtype=dtype, device="meta")
    kernels = torch.ops.custom.conv1d_cuda_backward_kernels(meta_x, meta_w, *args, arch=90)
    assert kernels[1] == "grad_weight_hopper" + suffix and kernels[2] == "fused_with_grad_weight"
    assert not torch.ops.custom.conv1d_cuda_backward_kernels(meta_x, meta_w, *args, arch=80)[1].startswith(
        "grad_weight_hopper")
    if not HOPPER_GPU:
        return
    gy64 = torch.randn(F.conv1d(x64, w64, b64, *args).shape, generator=gen, dtype=torch.float64)
    leaves64 = [t.clone().requires_grad_() for t in (x64, w64, b64)]
    refs = torch.autograd.grad(F.conv1d(*leaves64, *args), leaves64, gy64)
    x = x64.to("cuda", dtype)
    if layout == "channels-last":
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    leaves = [x.requires_grad_(), w64.to("cuda", dtype).requires_grad_(), b64.to("cuda", dtype).requires_grad_()]
    gy = gy64.to("cuda", dtype)
    assert torch.ops.custom.conv1d_cuda_backward_kernels(leaves[0], leaves[1], *args)[1] == kernels[1]
    y = torch.ops.custom.conv1d(*leaves, *args)
    torch.full((1 << 24,), float("nan"), dtype=torch.float32, device="cuda")  # poison the workspace's blocks
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        grads = torch.autograd.grad(y, leaves, gy)
        torch.cuda.synchronize()
    launches = {event.key: event.count for event in profile.key_averages()}
    # What ran is what the query names: the Hopper grad_weight, and at stride 1 one row repack for each
    # of grad_output and the input that TMA cannot read in place (the grad_input phase reads grad_output's).
    # A channels-last input is copied by aten's strided copy instead (the repack kernel reads rows).
    assert any("grad_weight_hopper_kernel" in key for key in launches), sorted(launches)
    assert any("grad_bias_reduce" in key for key in launches), sorted(launches)  # grad_bias fused
    if args[0] == [1]:
        element = x.element_size()
        expected = int(gy.shape[-1] * element % 16 != 0) + int(length * element % 16 != 0 and layout is None)
        assert sum(count for key, count in launches.items() if "repack_rows_kernel" in key) == expected, sorted(launches)
    for what, got, ref in zip(("grad_input", "grad_weight", "grad_bias"), grads, refs):
        err = relative_max_error(got, ref)
        assert err <= tolerance, f"{name} {what} ({kernels}): relative error {err:.3e}"
    again = torch.autograd.grad(torch.ops.custom.conv1d(*leaves, *args), leaves[1], gy)[0]
    assert torch.equal(again, grads[1]), "grad_weight differs between two calls"


def test_outside_the_kernel(tf32_setting):
    tf32_setting(True)
    x, w = torch.empty(2, 16, 2000, device="meta"), torch.empty(32, 16, 3, device="meta")
    query = torch.ops.custom.conv1d_cuda_backward_kernels
    assert not query(x, w, [4], [1], [1], 1, arch=90)[1].startswith("grad_weight_hopper")  # window over 256
    assert not query(x.double(), w.double(), [1], [1], [1], 1, arch=90)[1].startswith("grad_weight_hopper")
    # groups of <= 32 channels: the 32 x 32 tensor-core tile
    assert query(torch.empty(2, 64, 500, device="meta"), torch.empty(64, 32, 3, device="meta"), [1], [1], [1], 2,
                 arch=90)[1] == "grad_weight_tensorcore_small_tf32"
    # one input channel, fewer than 32 outputs (with more the input is unfolded by taps: test_backward_dispatch.py)
    assert query(x[:, :1], torch.empty(16, 1, 3, device="meta"), [1], [1], [1], 1, arch=90)[1] == \
        "grad_weight_one_channel"
    tf32_setting(False)  # strict float32: no TF32 kernel
    assert not query(x, w, [1], [1], [1], 1, arch=90)[1].startswith("grad_weight_hopper")


@pytest.mark.skipif(not HOPPER_GPU, reason="needs an sm_90 GPU")
def test_tf32_grad_weight_is_unbiased(tf32_setting):
    """TF32 rounds both operands to nearest, as aten's does: on positive inputs the mean signed relative
    error of grad_weight stays near zero. Handing wgmma a float32 operand lets the tensor cores truncate
    it, which shrinks every product (by ~3.5e-4 on average here): within the TF32 tolerance of the
    other tests, but a bias that this test sees."""
    tf32_setting(True)
    gen = torch.Generator().manual_seed(3)
    x64 = torch.rand(2, 64, 4096, generator=gen, dtype=torch.float64) + 0.5
    w64 = torch.randn(128, 64, 3, generator=gen, dtype=torch.float64)
    gy64 = torch.rand(2, 128, 4094, generator=gen, dtype=torch.float64) + 0.5
    ref = torch.nn.grad.conv1d_weight(x64, w64.shape, gy64)
    x, w = x64.to("cuda", torch.float32), w64.to("cuda", torch.float32).requires_grad_()
    assert torch.ops.custom.conv1d_cuda_backward_kernels(x, w, [1], [0], [1], 1)[1] == "grad_weight_hopper_tf32"
    y = torch.ops.custom.conv1d(x, w, None, [1], [0], [1], 1)
    got = torch.autograd.grad(y, w, gy64.to("cuda", torch.float32))[0].double().cpu()
    signed = ((got - ref) / ref).mean().item()
    assert abs(signed) < 1e-4, f"mean signed relative error {signed:.2e}"
    assert relative_max_error(got, ref) <= 5e-3


@pytest.mark.skipif(not HOPPER_GPU, reason="needs an sm_90 GPU")
@pytest.mark.parametrize("wanted", ["weight and bias", "weight only", "bias only"])
def test_grad_bias_with_and_without_grad_weight(wanted, tf32_setting):
    """grad_bias comes from the Hopper grad_weight's pass where both are asked for, from a sum where only
    grad_bias is; grad_weight alone leaves the bias sums out. Each against aten's float64 gradients."""
    tf32_setting(True)
    gen = torch.Generator().manual_seed(5)
    x64 = torch.randn(3, 96, 700, generator=gen, dtype=torch.float64)
    w64 = torch.randn(400, 48, 3, generator=gen, dtype=torch.float64)  # 2 groups of 2 output-channel tiles
    b64 = torch.randn(400, generator=gen, dtype=torch.float64)
    gy64 = torch.randn(3, 400, 698, generator=gen, dtype=torch.float64)
    leaves64 = [t.clone().requires_grad_() for t in (w64, b64)]
    refs = torch.autograd.grad(F.conv1d(x64, *leaves64, groups=2), leaves64, gy64)
    x = x64.to("cuda", torch.bfloat16)
    w = w64.to("cuda", torch.bfloat16).requires_grad_(wanted != "bias only")
    b = b64.to("cuda", torch.bfloat16).requires_grad_(wanted != "weight only")
    assert torch.ops.custom.conv1d_cuda_backward_kernels(x, w, [1], [0], [1], 2)[1:] == [
        "grad_weight_hopper_bf16", "fused_with_grad_weight"]  # the names assume every gradient is asked for
    y = torch.ops.custom.conv1d(x, w, b, [1], [0], [1], 2)
    leaves = [t for t in (w, b) if t.requires_grad]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        grads = torch.autograd.grad(y, leaves, gy64.to("cuda", torch.bfloat16))
        torch.cuda.synchronize()
    launches = {event.key for event in profile.key_averages()}
    # The fused sums run exactly where both gradients are asked for; grad_bias alone is aten's sum.
    assert any("grad_bias_reduce" in key for key in launches) == (wanted == "weight and bias"), sorted(launches)
    assert any("grad_weight_hopper_kernel" in key for key in launches) == (wanted != "bias only"), sorted(launches)
    expected = [r for r, t in zip(refs, (w, b)) if t.requires_grad]
    for got, ref in zip(grads, expected):
        assert relative_max_error(got, ref) <= 4 * TOLERANCE[torch.bfloat16]  # as the other Hopper bf16 cases
