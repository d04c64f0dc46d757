"""Every branch of the CUDA backward's dispatch table (ops/conv1d/cuda/conv1d_cuda_backward_dispatch.cpp)
is reached by a shape here. The query custom::conv1d_cuda_backward_kernels says which kernel computes
each gradient (checked on every machine: the table is plain C++); on a GPU the three gradients of that
shape are compared with aten's float64 ones."""
import pytest
import torch
import torch.nn.functional as F

from conftest import TOLERANCE, relative_max_error

HAS_CUDA = torch.cuda.is_available()


def gpu_runs_hopper():
    """Whether this GPU and build run the Hopper family (a shape it takes, asked on the device)."""
    x, w = torch.empty(1, 64, 1024, device="cuda"), torch.empty(64, 64, 3, device="cuda")
    return torch.ops.custom.conv1d_cuda_kernel(x, w).startswith("hopper")

# (name, (N, C, O, K, L), conv arguments, grad_input kind, phases with a kernel, grad_weight kernel)
# grad_weight kernels: "tc_large" / "tc_small" become grad_weight_tensorcore_{large,small}_<precision>
# where tensor cores apply (TF32 allowed, 16-bit), grad_weight_cuda_cores otherwise.
CASES = [
    ("dense", (2, 64, 128, 3, 1000), dict(padding=1), "transposed", 1, "tc_large"),
    # L_out 1001: TMA cannot read grad_output's rows in place, the Hopper family runs on a repacked copy
    ("dense, grad_output rows of odd length", (2, 64, 128, 3, 1003), dict(), "transposed", 1, "tc_large"),
    ("grouped, 32 channels a group", (2, 64, 64, 5, 999), dict(padding=2, groups=2), "transposed", 1, "tc_small"),
    ("few channels, the small tile's 8-tap window too long", (2, 16, 32, 8, 1200),
     dict(stride=2, padding=35, dilation=10), "transposed", 1, "tc_large"),
    ("stride 3, K 2: a phase no tap reaches", (2, 16, 48, 2, 901), dict(stride=3), "transposed", 2, "tc_large"),
    ("stride 4: window too long for the tiles", (2, 16, 32, 3, 2000), dict(stride=4, padding=1), "transposed", 3,
     "grad_weight_cuda_cores"),
    ("stride 2, dilation 3: both phases", (2, 24, 40, 5, 777), dict(stride=2, padding=4, dilation=3), "transposed", 2,
     "tc_large"),
    ("stride 2, dilation 2: one phase", (2, 24, 40, 3, 777), dict(stride=2, padding=2, dilation=2), "transposed", 1,
     "tc_large"),
    ("depthwise", (2, 16, 16, 4, 3000), dict(padding=3, groups=16), "transposed", 1, "grad_weight_one_channel"),
    ("single-channel front end", (2, 1, 24, 10, 5003), dict(stride=5), "grad_input_one_channel", 0,
     "grad_weight_one_channel"),
    ("channel multiplier, stride 4", (2, 8, 16, 3, 701), dict(stride=4, padding=1, groups=8),
     "grad_input_one_channel", 0, "grad_weight_one_channel"),
    ("channel multiplier, window over 48 KB", (2, 8, 16, 9, 700), dict(padding=4, groups=8), "transposed", 1,
     "grad_weight_one_channel"),
    ("empty batch", (0, 8, 16, 3, 100), dict(padding=1), "none", 0, "zero"),
]

# Cases whose grad_weight the Hopper kernel computes on an sm_90 GPU (tensor-core precisions; the others
# have one input channel a group, groups of <= 32 channels (the 32 x 32 tile), an empty batch or a
# window longer than its TMA box).
HOPPER_GRAD_WEIGHT = {"dense", "dense, grad_output rows of odd length",
                      "few channels, the small tile's 8-tap window too long", "stride 3, K 2: a phase no tap reaches",
                      "stride 2, dilation 3: both phases", "stride 2, dilation 2: one phase"}

PRECISIONS = [  # (dtype, allow_tf32, precision suffix of tensor-core kernels or None: CUDA cores, tolerance)
    (torch.float32, True, "_tf32", 5e-3),
    (torch.float32, False, None, 1e-5),
    (torch.float16, True, "_fp16", 4 * TOLERANCE[torch.float16]),
    (torch.bfloat16, True, "_bf16", 4 * TOLERANCE[torch.bfloat16]),
    (torch.float64, True, None, TOLERANCE[torch.float64]),
]


def expected_grad_weight(kernel, suffix):
    if kernel.startswith("tc_"):
        return "grad_weight_cuda_cores" if suffix is None else \
            "grad_weight_tensorcore_" + kernel[3:] + suffix
    return kernel


def conv_args(conv):
    return [conv.get("stride", 1)], [conv.get("padding", 0)], [conv.get("dilation", 1)], conv.get("groups", 1)


@pytest.mark.parametrize("dtype, allow_tf32, suffix, tolerance", PRECISIONS,
                         ids=["fp32-tf32", "fp32-strict", "fp16", "bf16", "fp64"])
@pytest.mark.parametrize("name, shape, conv, input_kind, phases, weight_kernel", CASES, ids=[c[0] for c in CASES])
def test_backward_dispatch_branch(name, shape, conv, input_kind, phases, weight_kernel, dtype, allow_tf32, suffix,
                                  tolerance, tf32_setting):
    tf32_setting(allow_tf32)
    n, c, o, k, length = shape
    args = conv_args(conv)
    groups = args[3]
    x = torch.empty(n, c, length, dtype=dtype, device="meta")
    w = torch.empty(o, c // groups, k, dtype=dtype, device="meta")
    for arch in (80, 90):
        grad_input, grad_weight, grad_bias = torch.ops.custom.conv1d_cuda_backward_kernels(x, w, *args, arch=arch)
        if arch == 90 and suffix is not None and name in HOPPER_GRAD_WEIGHT:
            assert grad_weight == "grad_weight_hopper" + suffix
        else:
            assert grad_weight == expected_grad_weight(weight_kernel, suffix)
        # grad_bias rides along the Hopper grad_weight's pass over grad_output; else aten's sum
        assert grad_bias == ("fused_with_grad_weight" if grad_weight.startswith("grad_weight_hopper") else "sum")
        if input_kind != "transposed":
            assert grad_input == input_kind
            continue
        # One forward kernel per phase that a tap reaches, each from the forward table.
        assert grad_input.startswith("transposed(") and grad_input.endswith(")")
        kernels = grad_input[len("transposed("):-1].split(",")
        assert len(kernels) == phases
        if arch == 80:
            assert not any(kernel.startswith("hopper") for kernel in kernels)
        if arch == 90 and "odd length" in name and dtype != torch.float64:
            # The Hopper grad_weight has grad_output repacked up front and the phase reads that copy;
            # strict float32 (no Hopper grad_weight) repacks for the phase alone.
            assert kernels[0] == ("hopper" + suffix if suffix is not None else "hopper_3xtf32_repacked")
    if not HAS_CUDA:
        return

    gen = torch.Generator().manual_seed(len(name))
    x64 = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
    w64 = torch.randn(o, c // groups, k, generator=gen, dtype=torch.float64)
    b64 = torch.randn(o, generator=gen, dtype=torch.float64)
    gy64 = torch.randn(F.conv1d(x64, w64, b64, *args).shape, generator=gen, dtype=torch.float64)
    leaves64 = [t.clone().requires_grad_() for t in (x64, w64, b64)]
    refs = torch.autograd.grad(F.conv1d(*leaves64, *args), leaves64, gy64)
    leaves = [t.to("cuda", dtype).requires_grad_() for t in (x64, w64, b64)]
    y = torch.ops.custom.conv1d(*leaves, *args)
    grads = torch.autograd.grad(y, leaves, gy64.to("cuda", dtype))
    reported = torch.ops.custom.conv1d_cuda_backward_kernels(leaves[0], leaves[1], *args)
    expected = torch.ops.custom.conv1d_cuda_backward_kernels(x, w, *args, arch=90 if gpu_runs_hopper() else 80)
    assert reported == expected
    for what, got, ref in zip(("grad_input", "grad_weight", "grad_bias"), grads, refs):
        err = relative_max_error(got, ref)
        assert err <= tolerance, f"{what} ({reported}): relative error {err:.3e}"


@pytest.mark.skipif(not HAS_CUDA, reason="needs a GPU")
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 5e-3), (torch.bfloat16, 4 * TOLERANCE[torch.bfloat16])],
                         ids=["fp32-tf32", "bf16"])
@pytest.mark.parametrize("name, shape, conv", [(c[0], c[1], c[2]) for c in CASES if c[5] == "tc_large"],
                         ids=[c[0] for c in CASES if c[5] == "tc_large"])
def test_sm80_kernels_with_hopper_off(name, shape, conv, dtype, tolerance, tf32_setting, hopper_off):
    """On an H100/H200 the Hopper kernels take these shapes; switched off, the sm80 ones must still match."""
    tf32_setting(True)
    n, c, o, k, length = shape
    args = conv_args(conv)
    gen = torch.Generator().manual_seed(len(name) + 7)
    x64 = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
    w64 = torch.randn(o, c // args[3], k, generator=gen, dtype=torch.float64)
    gy64 = torch.randn(F.conv1d(x64, w64, None, *args).shape, generator=gen, dtype=torch.float64)
    leaves64 = [t.clone().requires_grad_() for t in (x64, w64)]
    refs = torch.autograd.grad(F.conv1d(*leaves64, None, *args), leaves64, gy64)
    leaves = [t.to("cuda", dtype).requires_grad_() for t in (x64, w64)]
    kernels = torch.ops.custom.conv1d_cuda_backward_kernels(leaves[0], leaves[1], *args)
    assert kernels[1] == "grad_weight_tensorcore_large" + ("_tf32" if dtype == torch.float32 else "_bf16")
    assert not any(kernel.startswith("hopper") for kernel in kernels[0][len("transposed("):-1].split(","))
    grads = torch.autograd.grad(torch.ops.custom.conv1d(leaves[0], leaves[1], None, *args), leaves,
                                gy64.to("cuda", dtype))
    for what, got, ref in zip(("grad_input", "grad_weight"), grads, refs):
        err = relative_max_error(got, ref)
        assert err <= tolerance, f"{name} {what} ({kernels}): relative error {err:.3e}"


# Valid but absurd geometries (paddings, strides and dilations near the int64 limits the validation
# allows, kernels of half a million taps): the tables route them to kernels whose arithmetic holds them
# (64-bit direct and CUDA-core kernels), without overflowing their own window arithmetic and without
# a loop over every stride phase. Meta tensors: the tables only (plain C++, every machine).
def test_absurd_geometries_avoid_32_bit_kernels(tf32_setting):
    tf32_setting(True)
    forward = torch.ops.custom.conv1d_cuda_kernel
    backward = torch.ops.custom.conv1d_cuda_backward_kernels

    def meta(n, c, o, k, length, dtype, groups=1):
        return (torch.empty(n, c, length, dtype=dtype, device="meta"),
                torch.empty(o, c // groups, k, dtype=dtype, device="meta"))

    for arch in (80, 90):
        # a padding of 2^31: the tensor-core kernels keep it in 32 bits
        x, w = meta(1, 2, 1, 1, 1, torch.bfloat16)
        assert forward(x, w, [1], [2 ** 31], [1], 1, arch=arch).startswith("direct")
        # strides of 2^58: the tile windows' arithmetic would overflow
        x, w = meta(1, 2, 33, 1, 1, torch.bfloat16)
        assert forward(x, w, [2 ** 58], [2 ** 58], [1], 1, arch=arch).startswith("direct")
        x, w = meta(1, 1, 1, 1, 1, torch.float32)
        assert forward(x, w, [2 ** 58], [2 ** 58], [1], 1, arch=arch) == "direct_narrow"
        x, w = meta(1, 2, 1, 1, 1, torch.bfloat16)
        names = backward(x, w, [2 ** 58], [2 ** 58], [1], 1, arch=arch)
        assert not names[1].startswith("grad_weight_tensorcore")
        # a stride of 2^40 over one input position: one phase has positions, not 2^40 to walk
        x, w = meta(1, 2, 4, 1, 1, torch.float32)
        names = backward(x, w, [2 ** 40], [2 ** 40], [1], 1, arch=arch)
        assert names[0].startswith("transposed(") and len(names[0][len("transposed("):-1].split(",")) == 1
        # 524,281 taps: more tap groups than the tensor-core tiles' grid dimension holds
        x, w = meta(1, 2, 1, 524281, 1, torch.bfloat16)
        names = backward(x, w, [1], [262140], [1], 1, arch=arch)
        assert not names[1].startswith("grad_weight_tensorcore")
    # The dilation of the one-channel grad_input kernel's window stays within its 32-bit offsets.
    x, w = meta(1, 1, 2, 2, 1, torch.float32)
    names = backward(x, w, [1], [2 ** 40], [2 ** 41], 1, arch=80)
    assert names[0] != "grad_input_one_channel"


def test_no_input_or_output_channels(tf32_setting):
    """Empty weights, (O, 0, K) or (0, C, K): nothing is launched on an empty grid. With no input channels
    every output is the bias (the sum over nothing: the direct kernels write it without reading), and
    the backward computes no grad_weight terms; with no output channels grad_input is zero. On a GPU the
    gradients equal the CPU kernels' (aten's conv1d answers an input of no channels with an output of no
    channels, so it is no reference here)."""
    tf32_setting(True)
    forward = torch.ops.custom.conv1d_cuda_kernel
    backward = torch.ops.custom.conv1d_cuda_backward_kernels
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        no_inputs = (torch.empty(2, 0, 10, dtype=dtype, device="meta"), torch.empty(4, 0, 3, dtype=dtype, device="meta"))
        no_outputs = (torch.empty(2, 3, 10, dtype=dtype, device="meta"), torch.empty(0, 3, 3, dtype=dtype, device="meta"))
        for arch in (80, 90):
            assert forward(*no_inputs, [1], [0], [1], 1, arch=arch).startswith("direct")
            assert backward(*no_inputs, [1], [0], [1], 1, arch=arch) == ["none", "zero", "sum"]
            assert backward(*no_outputs, [1], [0], [1], 1, arch=arch) == ["transposed(direct_narrow)", "zero", "sum"]
    if not HAS_CUDA:
        return
    gen = torch.Generator().manual_seed(5)
    for c, o in ((0, 4), (3, 0)):
        tensors = (torch.randn(2, c, 10, generator=gen), torch.randn(o, c, 3, generator=gen), torch.randn(o, generator=gen))
        gy = torch.randn(2, o, 8, generator=gen)
        results = []
        for device in ("cpu", "cuda"):
            leaves = [t.to(device).requires_grad_() for t in tensors]
            y = torch.ops.custom.conv1d(*leaves, [1], [0], [1], 1)
            results.append([y] + list(torch.autograd.grad(y, leaves, gy.to(device))))
        for what, cpu, cuda in zip(("output", "grad_input", "grad_weight", "grad_bias"), *results):
            assert cpu.shape == cuda.shape and torch.allclose(cpu, cuda.cpu(), rtol=1e-6, atol=1e-6), (c, o, what)


# One input channel per group and >= 32 output channels per group: in a tensor-core precision on a device
# that runs the Hopper family, the backward of the input unfolded by taps (cuda::backward_unfolds:
# "unfolded(...)" names the pointwise convolution's kernels); in strict float32, float64, on sm_80 or with
# the family switched off, the one-channel kernels as before.
UNFOLDED_CASES = [  # (name, (N, C, O, K, L), conv arguments)
    ("front end, stride 5", (2, 1, 64, 10, 5003), dict(stride=5)),
    ("front end, padded and dilated", (3, 1, 48, 5, 2001), dict(stride=2, padding=4, dilation=3)),
    ("channel multiplier, 32 outputs a channel", (2, 4, 128, 3, 1000), dict(padding=1, groups=4)),
    ("taps past both ends of short rows", (2, 1, 40, 9, 37), dict(stride=3, padding=7)),
]


def unfolded_reference(shape, conv, gen):
    n, c, o, k, length = shape
    args = conv_args(conv)
    x64 = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
    w64 = torch.randn(o, c // args[3], k, generator=gen, dtype=torch.float64)
    b64 = torch.randn(o, generator=gen, dtype=torch.float64)
    gy64 = torch.randn(F.conv1d(x64, w64, b64, *args).shape, generator=gen, dtype=torch.float64)
    leaves64 = [t.clone().requires_grad_() for t in (x64, w64, b64)]
    refs = torch.autograd.grad(F.conv1d(*leaves64, *args), leaves64, gy64)
    return (x64, w64, b64), gy64, refs


@pytest.mark.parametrize("dtype, allow_tf32, suffix, tolerance", PRECISIONS,
                         ids=["fp32-tf32", "fp32-strict", "fp16", "bf16", "fp64"])
@pytest.mark.parametrize("name, shape, conv", UNFOLDED_CASES, ids=[c[0] for c in UNFOLDED_CASES])
def test_one_input_channel_unfolds_by_taps(name, shape, conv, dtype, allow_tf32, suffix, tolerance, tf32_setting):
    tf32_setting(allow_tf32)
    n, c, o, k, length = shape
    args = conv_args(conv)
    x = torch.empty(n, c, length, dtype=dtype, device="meta")
    w = torch.empty(o, c // args[3], k, dtype=dtype, device="meta")
    for arch in (80, 90):
        grad_input, grad_weight, grad_bias = torch.ops.custom.conv1d_cuda_backward_kernels(x, w, *args, arch=arch)
        if arch == 90 and suffix is not None:
            assert grad_input.startswith("unfolded(transposed(hopper" + suffix) and grad_input.endswith("))")
            assert grad_weight.startswith("unfolded(grad_weight_") and grad_weight.endswith(suffix + ")")
            fused = grad_weight.startswith("unfolded(grad_weight_hopper")
            assert grad_bias == ("fused_with_grad_weight" if fused else "sum")
        else:
            assert not grad_input.startswith("unfolded") and grad_weight == "grad_weight_one_channel"
    if not HAS_CUDA:
        return
    leaves64, gy64, refs = unfolded_reference(shape, conv, torch.Generator().manual_seed(len(name)))
    leaves = [t.to("cuda", dtype).requires_grad_() for t in leaves64]
    reported = torch.ops.custom.conv1d_cuda_backward_kernels(leaves[0], leaves[1], *args)
    assert reported == torch.ops.custom.conv1d_cuda_backward_kernels(x, w, *args, arch=90 if gpu_runs_hopper() else 80)
    # Every subset of the gradients (the unfolded input is made only for grad_weight; [1, 2] is a front
    # end's usual one: a waveform needs no gradient).
    for wanted in ([0, 1, 2], [0], [1], [2], [0, 2], [1, 2]):
        y = torch.ops.custom.conv1d(*leaves, *args)
        grads = torch.autograd.grad(y, [leaves[i] for i in wanted], gy64.to("cuda", dtype))
        for i, got in zip(wanted, grads):
            err = relative_max_error(got, refs[i])
            assert err <= tolerance, f"{name} {('grad_input', 'grad_weight', 'grad_bias')[i]} of {wanted} " \
                                     f"({reported}): relative error {err:.3e}"


def test_unfolding_limits(tf32_setting):
    """Where the input is unfolded: >= 32 output channels a group, 2 <= K <= min(64, O_g), the Hopper family
    switched on."""
    tf32_setting(True)
    previous = torch.ops.custom.conv1d_cuda_use_hopper(True)
    try:
        check_unfolding_limits()
    finally:
        torch.ops.custom.conv1d_cuda_use_hopper(previous)


def check_unfolding_limits():
    query = torch.ops.custom.conv1d_cuda_backward_kernels

    def unfolds(c, o, k, length=3000, groups=1):
        x = torch.empty(2, c, length, device="meta")
        w = torch.empty(o, c // groups, k, device="meta")
        names = query(x, w, [1], [0], [1], groups, arch=90)
        assert names[0].startswith("unfolded(") == names[1].startswith("unfolded(")
        return names[1].startswith("unfolded(")

    assert unfolds(1, 32, 32)  # K = O_g
    assert not unfolds(1, 32, 33)  # the unfolded input would outgrow grad_output
    assert unfolds(1, 128, 64) and not unfolds(1, 128, 65)  # the fold's tap table
    assert not unfolds(1, 128, 1)  # one tap: the pointwise problem would be the same one
    assert not unfolds(1, 31, 3)  # too few output channels
    assert unfolds(4, 128, 3, groups=4) and not unfolds(4, 124, 3, groups=4)
    assert not unfolds(2, 64, 3)  # two input channels: the table's kernels as they are
    torch.ops.custom.conv1d_cuda_use_hopper(False)
    assert not unfolds(1, 64, 10)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a GPU")
def test_one_input_channel_same_padding_unbatched_strided_gradient(tf32_setting):
    """The unfolded backward with "same" padding (K 10: 4 left, 5 right), an unbatched input and a grad_output
    that is a transposed view, against aten's float64 gradients."""
    tf32_setting(True)
    gen = torch.Generator().manual_seed(11)
    for dtype, tolerance in ((torch.float32, 5e-3), (torch.bfloat16, 4 * TOLERANCE[torch.bfloat16])):
        for unbatched in (False, True):
            x64 = torch.randn(*(() if unbatched else (2,)), 1, 3001, generator=gen, dtype=torch.float64)
            w64 = torch.randn(64, 1, 10, generator=gen, dtype=torch.float64)
            gy64 = torch.randn(*(() if unbatched else (2,)), 3001, 64, generator=gen, dtype=torch.float64)
            gy64 = gy64.transpose(-1, -2)  # (.., 64, 3001), not contiguous
            leaves64 = [t.clone().requires_grad_() for t in (x64, w64)]
            refs = torch.autograd.grad(F.conv1d(*leaves64, None, 1, "same"), leaves64, gy64)
            leaves = [t.to("cuda", dtype).requires_grad_() for t in (x64, w64)]
            gy = gy64.to("cuda", dtype)
            assert not gy.is_contiguous()
            grads = torch.autograd.grad(torch.ops.custom.conv1d(leaves[0], leaves[1], None, [1], "same"), leaves, gy)
            for what, got, ref in zip(("grad_input", "grad_weight"), grads, refs):
                err = relative_max_error(got, ref)
                assert err <= tolerance, f"{dtype} unbatched={unbatched} {what}: relative error {err:.3e}"


@pytest.mark.skipif(not HAS_CUDA, reason="needs a GPU")
def test_one_input_channel_with_hopper_off(tf32_setting, hopper_off):
    """Switched off, the Hopper family's device runs the one-channel kernels for the unfolded shapes."""
    tf32_setting(True)
    name, shape, conv = UNFOLDED_CASES[0]
    args = conv_args(conv)
    leaves64, gy64, refs = unfolded_reference(shape, conv, torch.Generator().manual_seed(3))
    leaves = [t.to("cuda", torch.bfloat16).requires_grad_() for t in leaves64]
    kernels = torch.ops.custom.conv1d_cuda_backward_kernels(leaves[0], leaves[1], *args)
    assert kernels[:2] == ["grad_input_one_channel", "grad_weight_one_channel"]
    grads = torch.autograd.grad(torch.ops.custom.conv1d(*leaves, *args), leaves, gy64.to("cuda", torch.bfloat16))
    for what, got, ref in zip(("grad_input", "grad_weight", "grad_bias"), grads, refs):
        err = relative_max_error(got, ref)
        assert err <= 4 * TOLERANCE[torch.bfloat16], f"{name} {what} ({kernels}): relative error {err:.3e}"
