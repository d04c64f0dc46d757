import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

import custom_ops  # noqa: E402

custom_ops.load_library()

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture
def tf32_setting():
    """Sets aten's convolution TF32 flag (which ours follows) for a test: tf32_setting(allowed)."""
    previous = torch.backends.cudnn.allow_tf32
    yield lambda allowed: setattr(torch.backends.cudnn, "allow_tf32", allowed)
    torch.backends.cudnn.allow_tf32 = previous


@pytest.fixture
def hopper_off():
    """The Hopper family switched off for a test (custom::conv1d_cuda_use_hopper): the other CUDA kernels
    then serve the shapes it takes, on an H100 too."""
    previous = torch.ops.custom.conv1d_cuda_use_hopper(False)
    yield
    torch.ops.custom.conv1d_cuda_use_hopper(previous)


@pytest.fixture
def strict_fp32():
    """Full float32 precision in aten's convolution and ours (TF32 off) for the duration of a test."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = previous


def relative_max_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.detach().double().cpu(), ref.detach().double().cpu()
    if ref.numel() == 0:
        return 0.0
    diff = (out - ref).abs()
    if torch.isnan(diff).any():
        return float("inf")
    return (diff.max() / ref.abs().max().clamp_min(1e-30)).item()


# max |out - ref| / max |ref| per dtype (float32 with TF32 off).
TOLERANCE = {torch.float64: 1e-12, torch.float32: 2e-6, torch.float16: 2e-3, torch.bfloat16: 1e-2}


# Counts that the reliability tests report (e.g. fuzz cases), printed at the end of the run.
SUMMARY_LINES = []


def pytest_terminal_summary(terminalreporter):
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)
