"""custom_ops.conv1d: F.conv1d's signature and argument forms (int, tuple, list, "same"/"valid", keywords),
in eager mode, TorchScript (script and trace) and with autograd; and what `import custom_ops` provides."""
import inspect
import io
import typing

import pytest
import torch
import torch.nn.functional as F

import custom_ops
from conftest import TOLERANCE, relative_max_error

# (keyword arguments of both functions, (N, C, L), (O, C/groups, K))
FORMS = [
    (dict(), (2, 4, 16), (8, 4, 3)),
    (dict(padding=1), (2, 4, 16), (8, 4, 3)),
    (dict(stride=2, padding=(1,), dilation=[2]), (2, 4, 17), (8, 4, 3)),
    (dict(stride=(3,), padding=[2], dilation=(1,), groups=2), (2, 4, 20), (6, 2, 5)),
    (dict(padding="same", dilation=2), (2, 4, 16), (8, 4, 4)),
    (dict(padding="valid", stride=2), (2, 4, 16), (8, 4, 3)),
    (dict(padding="same"), (4, 16), (8, 4, 3)),  # unbatched
]


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("kwargs, input_shape, weight_shape", FORMS)
def test_matches_f_conv1d_for_every_argument_form(kwargs, input_shape, weight_shape, with_bias, device):
    x = torch.randn(*input_shape, dtype=torch.float64, device=device)
    w = torch.randn(*weight_shape, dtype=torch.float64, device=device)
    b = torch.randn(weight_shape[0], dtype=torch.float64, device=device) if with_bias else None
    out = custom_ops.conv1d(x, w, b, **kwargs)
    ref = F.conv1d(x, w, b, **kwargs)
    assert out.shape == ref.shape
    assert relative_max_error(out, ref) <= TOLERANCE[torch.float64]


def test_positional_arguments_as_f_conv1d():
    x, w, b = torch.randn(2, 4, 20), torch.randn(6, 2, 5), torch.randn(6)
    assert torch.allclose(custom_ops.conv1d(x, w, b, 2, 1, 2, 2), F.conv1d(x, w, b, 2, 1, 2, 2), atol=1e-5)


def test_signature_is_f_conv1d_s():
    parameters = inspect.signature(custom_ops.conv1d).parameters
    assert list(parameters) == ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
    defaults = {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}
    assert defaults == dict(bias=None, stride=1, padding=0, dilation=1, groups=1)
    hints = typing.get_type_hints(custom_ops.conv1d)
    assert hints["return"] is torch.Tensor and str in typing.get_args(hints["padding"])
    assert custom_ops.conv1d.__doc__ and "padding" in custom_ops.conv1d.__doc__


def test_gradients_flow():
    x = torch.randn(2, 4, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: custom_ops.conv1d(*t, padding="same", dilation=2), (x, w, b))


class UsesTheFunction(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(8, 4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = custom_ops.conv1d(x, self.weight, None, 1, "same")
        y = custom_ops.conv1d(y, self.weight.repeat(1, 2, 1), None, (2,), [1], 1)
        return custom_ops.conv1d(y, self.weight.repeat(1, 2, 1), stride=1, padding=2, dilation=(2,))


def test_scripts_and_traces():
    model = UsesTheFunction()
    x = torch.randn(2, 4, 33)
    expected = model(x)
    scripted = torch.jit.script(model)
    assert torch.equal(scripted(x), expected)
    assert "custom::conv1d" in str(scripted.inlined_graph)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    assert torch.equal(torch.jit.load(buffer)(x), expected)
    scripted_function = torch.jit.script(custom_ops.conv1d)
    assert torch.equal(scripted_function(x, model.weight, None, 1, "same"), custom_ops.conv1d(x, model.weight, padding="same"))
    traced = torch.jit.trace(model, x)
    assert torch.equal(traced(x), expected)


def test_invalid_arguments_name_the_argument():
    x, w = torch.randn(2, 4, 16), torch.randn(8, 4, 3)
    with pytest.raises(RuntimeError, match="expected 'weight' to be a tensor, but got None"):
        custom_ops.conv1d(x, None)
    with pytest.raises(RuntimeError, match="expected 'input' to be a tensor, but got None"):
        custom_ops.conv1d(None, w, padding="same")
    with pytest.raises(RuntimeError, match="expected 'stride' to have 1 element"):
        custom_ops.conv1d(x, w, stride=(1, 1))
    with pytest.raises(RuntimeError, match="'padding' to be \"valid\" or \"same\""):
        custom_ops.conv1d(x, w, padding="full")


def test_import_registers_the_ops_and_gives_the_cmake_prefix():
    assert torch.ops.custom.conv1d.default is not None
    assert (custom_ops.library_path()).is_file()
    assert isinstance(custom_ops.cmake_prefix_path, str)
