"""Every branch of the CUDA dispatch table (ops/conv1d/cuda/conv1d_cuda_dispatch.cpp) below the Hopper
family is reached by a shape here: the kernel query custom::conv1d_cuda_kernel, asked for a GPU without
it (arch=80), says which kernel serves it (checked on every machine, the table is plain C++), and on a
GPU that kernel's output is compared with F.conv1d in float64 (outputs poisoned first), with the Hopper
family switched off so that an H100 runs these kernels too. tests/python/test_hopper.py covers the
family itself."""
import pytest
import torch
import torch.nn.functional as F

from conftest import TOLERANCE, relative_max_error

HAS_CUDA = torch.cuda.is_available()

# (name, (N, C, O, K, L), conv arguments, extra: 'noncontig' / 'offset' input layouts)
CASES = [
    ("headline-like", (2, 64, 128, 3, 1000), dict(), None),
    ("odd channels, dilation, padding", (3, 37, 70, 5, 613), dict(padding=4, dilation=3), None),
    ("many chunks", (2, 200, 96, 3, 517), dict(padding=1), None),
    ("unaligned rows", (2, 40, 64, 7, 301), dict(padding=3), "offset"),
    ("non-contiguous", (2, 24, 48, 3, 300), dict(padding=1), "noncontig"),
    ("grouped small O", (2, 64, 64, 5, 999), dict(padding=2, groups=8), None),
    ("few channels", (3, 3, 16, 4, 777), dict(), None),
    ("pointwise", (2, 32, 16, 1, 1029), dict(), None),
    ("long kernel", (1, 16, 48, 31, 700), dict(padding=15), None),
    ("depthwise causal", (2, 16, 16, 4, 3000), dict(padding=3, groups=16), None),
    ("depthwise k2 multiplier, unaligned", (2, 8, 24, 2, 1001), dict(padding=1, groups=8), "offset"),
    ("depthwise k3 non-contiguous, long", (3, 12, 12, 3, 4500), dict(padding=1, groups=12), "noncontig"),
    ("depthwise k1", (2, 6, 6, 1, 333), dict(groups=6), None),
    ("depthwise k5", (2, 16, 16, 5, 3000), dict(padding=4, groups=16), None),
    ("depthwise strided dilated", (2, 8, 8, 5, 2500), dict(padding=7, stride=3, dilation=2, groups=8), "noncontig"),
    ("channel multiplier front end", (2, 1, 24, 10, 5003), dict(stride=5), None),
    ("strided wide", (2, 32, 128, 4, 900), dict(stride=2, padding=1), None),
    ("strided odd, dilated, unaligned", (3, 24, 40, 5, 777), dict(stride=3, padding=2, dilation=2), "offset"),
    ("long stride", (2, 16, 96, 3, 2000), dict(stride=8), None),
    ("strided medium", (2, 32, 16, 4, 900), dict(stride=2, padding=1), None),
    ("strided narrow", (2, 8, 8, 3, 900), dict(stride=2, groups=4), None),
    ("halo too long", (2, 16, 64, 9, 900), dict(dilation=9), None),  # for the large and small tiles
]

# Which kernel each case gets, per dtype (float32 under TF32 allowed / not allowed).
EXPECTED = {
    "headline-like": "tensorcore_large",
    "odd channels, dilation, padding": "tensorcore_large",
    "many chunks": "tensorcore_large",
    "unaligned rows": "tensorcore_medium",
    "non-contiguous": "tensorcore_medium",
    "grouped small O": "tensorcore_small",
    "few channels": "tensorcore_small",
    "pointwise": "tensorcore_small",
    "long kernel": "tensorcore_medium",
    "depthwise causal": "depthwise_sliding",
    "depthwise k2 multiplier, unaligned": "depthwise_sliding",
    "depthwise k3 non-contiguous, long": "depthwise_sliding",
    "depthwise k1": "depthwise_sliding",
    "depthwise k5": "depthwise",
    "depthwise strided dilated": "depthwise",
    "channel multiplier front end": "depthwise",
    "strided wide": "tensorcore_wide_window",
    "strided odd, dilated, unaligned": "tensorcore_wide_window",
    "long stride": "direct_large",
    "strided medium": "direct_wide",
    "strided narrow": "direct_narrow",
    "halo too long": "tensorcore_wide_window",
}

# float64 windows are twice as large: these two exceed the depthwise kernel's 48 KB and fall back.
EXPECTED_FLOAT64 = {"depthwise strided dilated": "direct_narrow", "channel multiplier front end": "direct_wide"}

PRECISIONS = [  # (dtype, allow_tf32, suffix of tensor-core kernels, tolerance)
    (torch.float32, True, "_tf32", 5e-3),
    (torch.float32, False, "_3xtf32", TOLERANCE[torch.float32]),
    (torch.float16, True, "_fp16", TOLERANCE[torch.float16]),
    (torch.bfloat16, True, "_bf16", TOLERANCE[torch.bfloat16]),
    (torch.float64, True, "", TOLERANCE[torch.float64]),
]


def make_case(shape, layout, dtype, device, gen):
    n, c, o, k, length = shape
    x = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
    if layout == "noncontig":
        x = torch.randn(n, 2 * length, c, generator=gen, dtype=torch.float64).transpose(1, 2)[:, :, ::2]
    x = x.to(device=device, dtype=dtype)
    if layout == "offset":  # rows start one element off 16-byte alignment
        x = torch.randn(n * c * length + 1, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
        x = x[1:].view(n, c, length)
    return x


@pytest.mark.parametrize("dtype, allow_tf32, suffix, tolerance", PRECISIONS,
                         ids=["fp32-tf32", "fp32-strict", "fp16", "bf16", "fp64"])
@pytest.mark.parametrize("name, shape, conv, layout", CASES, ids=[c[0] for c in CASES])
def test_dispatch_branch(name, shape, conv, layout, dtype, allow_tf32, suffix, tolerance, tf32_setting, hopper_off):
    tf32_setting(allow_tf32)
    n, c, o, k, length = shape
    groups = conv.get("groups", 1)
    x = torch.empty(n, c, length, dtype=dtype, device="meta")
    w = torch.empty(o, c // groups, k, dtype=dtype, device="meta")
    args = ([conv.get("stride", 1)], [conv.get("padding", 0)], [conv.get("dilation", 1)], groups)
    kernel = torch.ops.custom.conv1d_cuda_kernel(x, w, *args, arch=80)
    expected = EXPECTED[name]
    if dtype == torch.float64 and expected.startswith("tensorcore"):
        expected = "direct_large" if o // groups >= 64 else ("direct_wide" if o // groups >= 8 else "direct_narrow")
    if expected.startswith("tensorcore"):
        expected += suffix
    if expected == "direct_large" and dtype == torch.float64:
        expected = "direct_wide"
    if dtype == torch.float64:
        expected = EXPECTED_FLOAT64.get(name, expected)
    assert kernel == expected
    if not HAS_CUDA:
        return

    gen = torch.Generator().manual_seed(hash(name) % 1000)
    xd = make_case(shape, layout, dtype, "cuda", gen)
    wd = torch.randn(o, c // groups, k, generator=gen, dtype=torch.float64).to("cuda", dtype)
    bd = torch.randn(o, generator=gen, dtype=torch.float64).to("cuda", dtype)
    ref = F.conv1d(xd.double().cpu(), wd.double().cpu(), bd.double().cpu(), *args)
    torch.full(ref.shape, float("nan"), dtype=dtype, device="cuda")  # poison the block the op gets next
    out = torch.ops.custom.conv1d(xd, wd, bd, *args)
    err = relative_max_error(out, ref)
    assert err <= tolerance, f"{kernel}: relative error {err:.3e}"
    # Without bias too (a separate epilogue branch).
    ref = F.conv1d(xd.double().cpu(), wd.double().cpu(), None, *args)
    out = torch.ops.custom.conv1d(xd, wd, None, *args)
    assert relative_max_error(out, ref) <= tolerance
