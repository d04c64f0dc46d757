"""The Hopper (sm_90a) tensor-core family (ops/conv1d/cuda/hopper/).

Every case is a branch of its plan (resident or streamed weights, one or two 64-position tiles per
consumer, channel tiles of 32/64/128, partial channel chunks and tap groups, strides, dilation,
padding, groups, short rows that pair sub-tiles of different batch items, key changes along a CTA's
persistent loop, one, two or four epilogue staging slots, inputs TMA cannot read in place and so
runs on a repacked copy). The kernel query, asked for an sm_90 GPU (arch=90), must name the family on every
machine; on an sm_90 GPU the op's output is compared with F.conv1d in float64, with and without bias,
in all four precisions, and again with the family switched off (the mma.sync kernels).
"""
import pytest
import torch
import torch.nn.functional as F

from conftest import TOLERANCE, relative_max_error

HOPPER_GPU = torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0)

# (name, (N, C, O, K, L), conv arguments, input layout)
CASES = [
    # 16-bit: resident weights, a staging slot per round; TF32: streamed weights for a slot per round
    ("headline-like", (2, 64, 128, 3, 4096), dict(), None),
    ("partial channel chunk and tile", (3, 37, 70, 5, 616), dict(padding=4, dilation=3), None),
    ("streamed weights", (2, 512, 256, 3, 1024), dict(padding=1), None),
    ("grouped, 8 channels a group", (2, 64, 64, 5, 1000), dict(padding=2, groups=8), None),
    ("groups change along the persistent loop", (8, 256, 256, 3, 2048), dict(padding=1, groups=4), None),
    ("three channel tiles", (2, 64, 300, 3, 512), dict(), None),
    ("stride 2", (2, 32, 128, 4, 904), dict(stride=2, padding=1), None),
    ("stride 3, dilation 2", (3, 24, 40, 5, 776), dict(stride=3, padding=2, dilation=2), None),
    ("pointwise", (2, 32, 16, 1, 1032), dict(), None),
    ("long kernel, resident", (1, 16, 48, 31, 704), dict(padding=15), None),
    ("long kernel, streamed tap groups", (2, 128, 128, 31, 512), dict(padding=15), None),
    ("short rows, sub-tiles of two batch items", (64, 64, 64, 3, 64), dict(padding=1), None),
    ("odd number of sub-tiles", (3, 16, 32, 3, 120), dict(), None),
    # rows of a few positions: a copy of one 16-byte vector or none, the rest stored as row ends
    ("rows of 6", (5, 16, 40, 3, 8), dict(), None),
    ("rows of 13, ends on both sides of a copy", (4, 16, 40, 4, 16), dict(), None),
    ("right padding only reached", (2, 16, 24, 4, 328), dict(padding=3), None),
    ("batch of one, aligned slice", (1, 48, 96, 3, 512), dict(padding=1), "slice"),
    ("unbatched", (None, 32, 64, 3, 256), dict(padding=1), None),
    # TF32: a staging slot for each of a tile's 4 rounds; 5 sub-tiles a row, so tiles straddle rows and
    # the last one has no second sub-tile
    ("four staging slots, tiles across rows", (3, 16, 128, 1, 600), dict(), None),
    # Long rows that start anywhere in a 32-byte line (L_out 19998): tiles of one row overlapping by a line
    # (hopper_row_tiles.h), whatever the dtype and tile width; 70 channels: a partial channel tile
    ("long unaligned rows, overlapping tiles", (2, 32, 70, 3, 20000), dict(), None),
    # Inputs TMA cannot read as they are: the family runs on a copy with 16-byte aligned rows
    ("rows of odd length, repacked", (2, 64, 128, 3, 1001), dict(padding=1), None),
    ("offset view, stride 2, repacked", (2, 32, 128, 4, 905), dict(stride=2, padding=1), "offset"),
    ("channels-last view, grouped, dilated, repacked", (3, 48, 64, 5, 333), dict(padding=2, dilation=2, groups=2),
     "channels-last"),
]

PRECISIONS = [  # (dtype, allow_tf32, kernel suffix, tolerance)
    (torch.float32, True, "_tf32", 5e-3),
    (torch.float32, False, "_3xtf32", TOLERANCE[torch.float32]),
    (torch.float16, True, "_fp16", TOLERANCE[torch.float16]),
    (torch.bfloat16, True, "_bf16", TOLERANCE[torch.bfloat16]),
]


def make_input(shape, layout, dtype, device, gen):
    n, c, _, _, length = shape
    if n is None:
        return torch.randn(c, length, generator=gen, dtype=torch.float64).to(device, dtype)
    if layout == "slice":  # rows of a longer tensor, starting 8 positions in: still 16-byte aligned
        x = torch.randn(n, c, length + 16, generator=gen, dtype=torch.float64).to(device, dtype)
        return x[:, :, 8:8 + length]
    if layout == "offset":  # one element past a 16-byte boundary
        x = torch.randn(n * c * length + 1, generator=gen, dtype=torch.float64).to(device, dtype)
        return x[1:].view(n, c, length)
    if layout == "channels-last":
        return torch.randn(n, length, c, generator=gen, dtype=torch.float64).to(device, dtype).transpose(1, 2)
    return torch.randn(n, c, length, generator=gen, dtype=torch.float64).to(device, dtype)


def tma_reads_as_is(x):
    """Whether TMA can read the input's rows in place (else the family runs on a repacked copy)."""
    x = x if x.dim() == 3 else x.unsqueeze(0)
    size = x.element_size()
    return (x.stride(2) == 1 and x.stride(1) * size % 16 == 0 and (x.size(0) == 1 or x.stride(0) * size % 16 == 0)
            and x.data_ptr() % 16 == 0)


def conv_args(conv):
    return [conv.get("stride", 1)], [conv.get("padding", 0)], [conv.get("dilation", 1)], conv.get("groups", 1)


@pytest.mark.parametrize("dtype, allow_tf32, suffix, tolerance", PRECISIONS, ids=["tf32", "3xtf32", "fp16", "bf16"])
@pytest.mark.parametrize("name, shape, conv, layout", CASES, ids=[c[0] for c in CASES])
def test_hopper_family(name, shape, conv, layout, dtype, allow_tf32, suffix, tolerance, tf32_setting):
    tf32_setting(allow_tf32)
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    device = "cuda" if HOPPER_GPU else "cpu"
    x = make_input(shape, layout, dtype, device, gen)
    _, c, o, k, _ = shape
    groups = conv.get("groups", 1)
    w = torch.randn(o, c // groups, k, generator=gen, dtype=torch.float64).to(device, dtype)
    b = torch.randn(o, generator=gen, dtype=torch.float64).to(device, dtype)
    args = conv_args(conv)
    kernel = "hopper" + suffix + ("" if tma_reads_as_is(x) else "_repacked")
    assert ("repacked" in name) == kernel.endswith("_repacked")
    assert torch.ops.custom.conv1d_cuda_kernel(x, w, *args, arch=90) == kernel
    assert not torch.ops.custom.conv1d_cuda_kernel(x, w, *args, arch=80).startswith("hopper")
    if not HOPPER_GPU:
        return
    assert torch.ops.custom.conv1d_cuda_kernel(x, w, *args) == kernel
    for bias in (b, None):
        ref = F.conv1d(x.double().cpu(), w.double().cpu(), None if bias is None else bias.double().cpu(), *args)
        torch.full((ref.numel() + 1024,), float("nan"), dtype=dtype, device="cuda")  # poison the next block
        out = torch.ops.custom.conv1d(x, w, bias, *args)
        assert out.shape == ref.shape
        err = relative_max_error(out, ref)
        assert err <= tolerance, f"{name} {suffix} bias={bias is not None}: relative error {err:.3e}"


@pytest.mark.skipif(not HOPPER_GPU, reason="needs an sm_90 GPU")
@pytest.mark.parametrize("dtype, allow_tf32, suffix, tolerance", PRECISIONS, ids=["tf32", "3xtf32", "fp16", "bf16"])
def test_switched_off_runs_the_other_kernels(dtype, allow_tf32, suffix, tolerance, tf32_setting, hopper_off):
    tf32_setting(allow_tf32)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 64, 1000, generator=gen, dtype=torch.float64).to("cuda", dtype)
    w = torch.randn(128, 64, 3, generator=gen, dtype=torch.float64).to("cuda", dtype)
    assert torch.ops.custom.conv1d_cuda_kernel(x, w, [1], [1], [1], 1) == "tensorcore_large" + suffix
    ref = F.conv1d(x.double().cpu(), w.double().cpu(), None, 1, 1)
    assert relative_max_error(torch.ops.custom.conv1d(x, w, None, [1], [1], [1], 1), ref) <= tolerance


@pytest.mark.parametrize("layout, kernel", [("contiguous", "hopper_tf32"), ("offset", "hopper_tf32_repacked"),
                                            ("channels-last", "hopper_tf32_repacked"),
                                            ("odd length", "hopper_tf32_repacked")])
def test_layouts_tma_cannot_read_are_repacked(layout, kernel):
    x = torch.randn(2, 32, 512)
    if layout == "offset":  # one element past a 16-byte boundary
        x = torch.randn(2 * 32 * 512 + 1)[1:].view(2, 32, 512)
    if layout == "channels-last":
        x = torch.randn(2, 512, 32).transpose(1, 2)
    if layout == "odd length":  # rows 511 * 4 bytes apart
        x = torch.randn(2, 32, 511)
    w = torch.randn(64, 32, 3)
    assert torch.ops.custom.conv1d_cuda_kernel(x, w, [1], [1], [1], 1, arch=90) == kernel


def test_shapes_outside_the_family():
    w = torch.randn(64, 32, 3)
    x = torch.randn(2, 32, 2048)
    assert torch.ops.custom.conv1d_cuda_kernel(x, w, [4], [0], [1], 1, arch=90) != "hopper_tf32"  # stride 4
    assert torch.ops.custom.conv1d_cuda_kernel(x, torch.randn(64, 32, 9), [1], [0], [16], 1, arch=90) \
        .startswith("hopper")  # halo 128: still one window with fewer taps per stage
    assert not torch.ops.custom.conv1d_cuda_kernel(x.double(), w.double(), [1], [0], [1], 1, arch=90) \
        .startswith("hopper")
    empty = torch.randn(2, 32, 0)  # padding only: no tensor map has an empty dimension
    assert not torch.ops.custom.conv1d_cuda_kernel(empty, w, [1], [2], [1], 1, arch=90).startswith("hopper")
    assert not torch.ops.custom.conv1d_cuda_backward_kernels(empty, w, [1], [2], [1], 1, arch=90)[1] \
        .startswith("grad_weight_hopper")
    depthwise = torch.randn(32, 1, 3)
    assert not torch.ops.custom.conv1d_cuda_kernel(x, depthwise, [1], [1], [1], 32, arch=90).startswith("hopper")


@pytest.mark.skipif(not HOPPER_GPU, reason="needs an sm_90 GPU")
def test_padding_only_input_runs_elsewhere():
    """L = 0 with padding: the output is the bias alone; no Hopper kernel (a tensor map has no empty
    dimension), forward and backward still match aten."""
    x = torch.randn(2, 32, 0, device="cuda", requires_grad=True)
    w = torch.randn(64, 32, 3, device="cuda", requires_grad=True)
    b = torch.randn(64, device="cuda", requires_grad=True)
    out = torch.ops.custom.conv1d(x, w, b, [1], [2], [1], 1)
    # aten refuses an empty input on the GPU: its reference is the padded input itself, four zeros
    ref = F.conv1d(torch.zeros(2, 32, 4, dtype=torch.float64), w.detach().double().cpu(), b.detach().double().cpu())
    assert out.shape == ref.shape and relative_max_error(out, ref) <= 1e-6
    grads = torch.autograd.grad(out, (x, w, b), torch.ones_like(out))
    assert grads[0].shape == x.shape and not grads[1].any() and torch.equal(grads[2], torch.full_like(b, 4.0))
