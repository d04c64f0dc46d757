"""Script and trace a model that uses custom::conv1d, and save the TorchScript archives.

    python examples/export_models.py OUT_DIR

Writes OUT_DIR/model_scripted.pt, OUT_DIR/model_traced.pt and OUT_DIR/sample.pt; the latter holds the
input and the Python outputs, which the C++ inference example compares against.
"""
import _common  # noqa: F401  (puts python/ on sys.path)

import sys
from pathlib import Path

import torch
from torch import nn

import custom_ops


class SignalEncoder(nn.Module):
    """Conv stack built directly from custom_ops.Conv1d (integer and "same" padding, groups, bias)."""

    def __init__(self):
        super().__init__()
        self.front = custom_ops.Conv1d(4, 32, kernel_size=7, stride=2, padding=3)
        self.mix = custom_ops.Conv1d(32, 32, kernel_size=3, padding="same", groups=4, bias=False)
        self.head = custom_ops.Conv1d(32, 8, kernel_size=1)

    def forward(self, x):
        h = torch.relu(self.front(x))
        h = torch.relu(self.mix(h))
        return self.head(h)


class Sample(nn.Module):
    """Carries tensors into C++ inside a TorchScript archive (torch::jit::load can read its attributes)."""

    def __init__(self, tensors):
        super().__init__()
        for name, value in tensors.items():
            setattr(self, name, value)

    def forward(self):
        return None


def main(out_dir: Path):
    custom_ops.load_library()
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = SignalEncoder().eval()
    x = torch.randn(2, 4, 257)

    scripted = torch.jit.script(model)
    traced = torch.jit.trace(model, x)
    scripted.save(str(out_dir / "model_scripted.pt"))
    traced.save(str(out_dir / "model_traced.pt"))
    with torch.no_grad():
        expected = model(x)
    torch.jit.script(Sample({"input": x, "expected": expected})).save(str(out_dir / "sample.pt"))

    # The archives round-trip in Python too.
    for name in ("model_scripted.pt", "model_traced.pt"):
        loaded = torch.jit.load(str(out_dir / name))
        err = (loaded(x) - expected).abs().max().item()
        print(f"{name}: reloaded in Python, max abs difference {err:.2e}")
        assert err < 1e-5, err
    print(f"saved TorchScript archives to {out_dir}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/demo"))
