"""Models calling custom::conv1d survive TorchScript (script, trace, save, load), torch.compile with
fullgraph=True, and torch.export."""
import io

import pytest
import torch

import custom_ops
from conftest import relative_max_error


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = custom_ops.Conv1d(4, 16, 5, stride=2, padding=2)
        self.b = custom_ops.Conv1d(16, 16, 4, padding="same", groups=16, bias=False)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def reference(model, x):
    import torch.nn.functional as F
    h = torch.relu(F.conv1d(x.double(), model.a.weight.double(), model.a.bias.double(), 2, 2))
    return F.conv1d(h, model.b.weight.double(), None, 1, "same", 1, 16)


@pytest.fixture
def model_and_input(device, strict_fp32):
    torch.manual_seed(0)
    return Net().to(device), torch.randn(3, 4, 101, device=device)


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_round_trip(model_and_input, how):
    model, x = model_and_input
    exported = torch.jit.script(model) if how == "script" else torch.jit.trace(model, x)
    assert "custom::conv1d" in str(exported.inlined_graph)
    buffer = io.BytesIO()
    torch.jit.save(exported, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer, map_location=x.device)
    x2 = torch.randn_like(x)  # fresh data, not the tracing input
    assert relative_max_error(loaded(x2), reference(model, x2)) <= 2e-6


def test_torch_compile_fullgraph(model_and_input):
    model, x = model_and_input
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        assert relative_max_error(compiled(x), reference(model, x)) <= 2e-6


def test_torch_export(model_and_input):
    model, x = model_and_input
    exported = torch.export.export(model, (x,))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert any("custom.conv1d" in t for t in targets), targets
    x2 = torch.randn_like(x)
    assert relative_max_error(exported.module()(x2), reference(model, x2)) <= 2e-6


def test_export_with_dynamic_batch_and_length(device):
    model = Net().to(device)
    x = torch.randn(3, 4, 101, device=device)
    dims = {"x": {0: torch.export.Dim("batch"), 2: torch.export.Dim("length", min=8, max=4096)}}
    exported = torch.export.export(model, (x,), dynamic_shapes=dims)
    x2 = torch.randn(5, 4, 333, device=device)
    with torch.no_grad():
        assert exported.module()(x2).shape == model(x2).shape
