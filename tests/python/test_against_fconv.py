"""Seeded randomised comparison of custom::conv1d with F.conv1d in float64, plus Python-side errors."""
import random

import pytest
import torch
import torch.nn.functional as F

from conftest import TOLERANCE, relative_max_error


def random_case(rng: random.Random):
    groups = rng.choice([1, 1, 2, 3, 4])
    depthwise = rng.random() < 0.2
    if depthwise:
        channels = rng.choice([1, 3, 8, 16])
        groups, in_channels, out_channels = channels, channels, channels * rng.choice([1, 2])
    else:
        in_channels = groups * rng.randint(1, 6)
        out_channels = groups * rng.randint(1, 12)
    kernel_size = rng.randint(1, 9)
    dilation = rng.randint(1, 4)
    stride = rng.randint(1, 4)
    string_padding = rng.random() < 0.3
    if string_padding:
        padding = rng.choice(["valid", "same"])
        if padding == "same":
            stride = 1
    else:
        padding = rng.randint(0, 5)
    reach = dilation * (kernel_size - 1) + 1
    pad_total = 0 if isinstance(padding, str) else 2 * padding
    length = rng.randint(max(1, reach - pad_total), 300)
    return dict(batch=rng.randint(0, 4), in_channels=in_channels, out_channels=out_channels, length=length,
                kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups,
                bias=rng.random() < 0.6, batched=rng.random() < 0.85, contiguous=rng.random() < 0.7)


def make_inputs(case, dtype, device, gen):
    n, c, length = case["batch"], case["in_channels"], case["length"]
    if case["contiguous"]:
        x = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
    else:  # channels-last storage, every other position
        x = torch.randn(n, 2 * length, c, generator=gen, dtype=torch.float64).transpose(1, 2)[:, :, ::2]
    x = x.to(device=device, dtype=dtype)
    if not case["batched"]:
        x = torch.randn(c, length, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    w = torch.randn(case["out_channels"], c // case["groups"], case["kernel_size"], generator=gen,
                    dtype=torch.float64).to(device=device, dtype=dtype)
    b = torch.randn(case["out_channels"], generator=gen, dtype=torch.float64).to(device=device, dtype=dtype) \
        if case["bias"] else None
    return x, w, b


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_random_cases_match_fconv_float64(device, dtype, strict_fp32):
    rng = random.Random(2026)
    gen = torch.Generator().manual_seed(2026)
    count = 150
    for i in range(count):
        case = random_case(rng)
        x, w, b = make_inputs(case, dtype, device, gen)
        ref = F.conv1d(x.cpu().double(), w.cpu().double(), None if b is None else b.cpu().double(),
                       case["stride"], case["padding"], case["dilation"], case["groups"])
        out = torch.ops.custom.conv1d(x, w, b, [case["stride"]],
                                      case["padding"] if isinstance(case["padding"], str) else [case["padding"]],
                                      [case["dilation"]], case["groups"])
        assert out.shape == ref.shape, (i, case)
        assert out.dtype == dtype and out.device.type == device
        err = relative_max_error(out, ref)
        assert err <= TOLERANCE[dtype], f"case {i}: {case}: relative error {err:.3e}"


def test_module_swap_keeps_state_dict_and_outputs(device):
    import custom_ops
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(3, 8, 5, padding=2, padding_mode="reflect"),
                                torch.nn.Conv1d(8, 8, 3, padding="same", groups=2)).to(device).double()
    x = torch.randn(2, 3, 50, device=device, dtype=torch.float64)
    expected = model(x)
    keys = list(model.state_dict())
    custom_ops.swap_conv1d(model)
    assert all(isinstance(m, custom_ops.Conv1d) for m in model)
    assert list(model.state_dict()) == keys
    assert relative_max_error(model(x), expected) <= 1e-12


@pytest.mark.parametrize("args, message", [
    (((2, 4, 16, 1), (6, 4, 3)), "expected 'input' to be 2-D"),
    (((2, 4, 16), (6, 3, 3)), "weight.size(1) * groups"),
    (((2, 4, 5), (6, 4, 3), None, [1], [0], [3]), "dilated kernel"),
])
def test_errors_are_raised_from_python(args, message):
    shapes, rest = args[:2], args[2:]
    tensors = [torch.randn(*s) for s in shapes]
    with pytest.raises(RuntimeError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        torch.ops.custom.conv1d(*tensors, *rest)
    with pytest.raises(RuntimeError, match="\"valid\" or \"same\""):
        torch.ops.custom.conv1d(torch.randn(2, 4, 16), torch.randn(6, 4, 3), None, [1], "full")


TWO_TO_62 = 2 ** 62
INT64_MAX = 2 ** 63 - 1


@pytest.mark.parametrize("args, fragments", [
    # Unchecked, dilation * (K - 1) + 1 wraps to 1 and the kernel reads far outside the input (a segfault).
    (((1, 2, 40), (2, 2, 5), None, [3], [0], [TWO_TO_62]), ["'dilation'", "fit in int64", "K = 5"]),
    (((1, 2, 40), (2, 2, 5), None, [1], "same", [TWO_TO_62]), ["'dilation'", "fit in int64"]),
    (((1, 2, 40), (2, 2, 5), None, [1], [0], [INT64_MAX]), ["'dilation'", "fit in int64"]),
    # Unchecked, the padded length wraps negative and the error reports a negative padding.
    (((1, 2, 40), (2, 2, 5), None, [3], [TWO_TO_62]), ["'padding'", "fit in int64", f"40 + {TWO_TO_62} + {TWO_TO_62}"]),
    (((1, 2, 40), (2, 2, 5), None, [1], [INT64_MAX]), ["'padding'", "fit in int64"]),
    # Unchecked, the output's size overflows inside the allocator.
    (((1, 2, 40), (2, 2, 5), None, [3], [TWO_TO_62 // 2]), ["output", "fits in int64", "'padding' [", "'stride' 3"]),
    (((1, 0, 40), (0, 2, 5), None, [1], [0], [1], TWO_TO_62), ["'groups'", "fit in int64"]),
])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_int64_overflow_is_an_error_naming_the_argument(args, fragments, device):
    shapes, rest = args[:2], args[2:]
    tensors = [torch.randn(*s, device=device) for s in shapes]
    with pytest.raises(RuntimeError) as error:
        torch.ops.custom.conv1d(*tensors, *rest)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_int64_overflow_in_the_backward_is_an_error_naming_the_argument():
    with pytest.raises(RuntimeError, match="'padding' on the left"):
        torch.ops.custom.conv1d_backward(torch.randn(1, 2, 10), torch.randn(1, 2, 40), torch.randn(2, 2, 5), [1],
                                         [TWO_TO_62, TWO_TO_62], [1], 1, [True, True, True])


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("padding", [[1], "same"])
def test_none_input_or_weight_is_an_error_naming_the_argument(requires_grad, padding):
    x = torch.randn(2, 4, 16, requires_grad=requires_grad)
    w = torch.randn(6, 4, 3, requires_grad=requires_grad)
    with pytest.raises(RuntimeError, match="expected 'input' to be a tensor, but got None"):
        torch.ops.custom.conv1d(None, w, None, [1], padding)
    with pytest.raises(RuntimeError, match="expected 'weight' to be a tensor, but got None"):
        torch.ops.custom.conv1d(x, None, None, [1], padding)
    with pytest.raises(RuntimeError, match="expected 'grad_output' to be a tensor, but got None"):
        torch.ops.custom.conv1d_backward(None, x, w, [1], [1, 1], [1], 1, [True, True, True])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_cpu_forward_with_taps_far_apart_gathers_one_row_per_tap(dtype):
    """A dilated kernel much longer than the CPU kernel's tiles gathers one row per tap instead of the
    tile plus a halo as long as the kernel (which was 0.5 s at dilation 2e8 and std::bad_alloc at 2e9),
    here with and without stride and phases."""
    gen = torch.Generator().manual_seed(0)
    cases = [  # (N, C, O, K, L), stride, padding, dilation
        ((2, 4, 16, 2, 10), 1, 1_000_000_000, 2_000_000_000),
        ((2, 6, 16, 3, 5000), 2, 3000, 3000),
        ((1, 3, 8, 4, 9000), 3, 7, 1500),
        ((2, 1, 5, 5, 700), 1, 2500, 1250),
    ]
    for (n, c, o, k, length), stride, padding, dilation in cases:
        x = torch.randn(n, c, length, generator=gen, dtype=torch.float64)
        w = torch.randn(o, c, k, generator=gen, dtype=torch.float64)
        b = torch.randn(o, generator=gen, dtype=torch.float64)
        out = torch.ops.custom.conv1d(x.to(dtype), w.to(dtype), b.to(dtype), [stride], [padding], [dilation], 1)
        ref = F.conv1d(x.to(dtype).double(), w.to(dtype).double(), b.to(dtype).double(), stride, padding, dilation)
        assert out.shape == ref.shape
        assert relative_max_error(out, ref) <= TOLERANCE[dtype]
