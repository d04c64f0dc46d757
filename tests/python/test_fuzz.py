"""Differential fuzzing (conv1d_fuzz.py): seeded random cases over every parameter against F.conv1d in
float64. CPU: 3,000 cases (at least 2,000 within the time bound); CUDA: 20,000 cases. The gradients
too: 1,000 CPU and 3,000 CUDA cases against aten's float64 autograd. The bad-input set: 3,000 cases per
device with one argument at an extreme value (None tensors; integers at and past the int64 limits), each
an error naming the argument or, where legal, aten's result. A failure prints a one-line reproducer."""
import warnings

import pytest
import torch

import conv1d_fuzz
from conftest import SUMMARY_LINES

HAS_CUDA = torch.cuda.is_available()


def run(device, cases, seed, seconds, minimum, backward=False):
    messages = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aten's reference warns about "same" padding copies
        run_count, failures = conv1d_fuzz.fuzz(device, cases, seed, seconds, log=messages.append, backward=backward)
    what = "forward and gradients" if backward else "forward"
    SUMMARY_LINES.append(f"fuzz ({what}): {run_count} cases on {device} (seed {seed}), {len(failures)} failures")
    assert not failures, "\n".join(messages[:20])
    assert run_count >= minimum, f"only {run_count} cases ran within {seconds} s"


def run_bad_inputs(device, cases, seed):
    messages = []
    run_count, failures = conv1d_fuzz.fuzz_bad_inputs(device, cases, seed, log=messages.append)
    SUMMARY_LINES.append(f"fuzz (bad inputs): {run_count} cases on {device} (seed {seed}), {len(failures)} failures")
    assert not failures, "\n".join(messages[:20])


def test_fuzz_bad_inputs_cpu():
    run_bad_inputs("cpu", cases=3000, seed=4)


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU present")
def test_fuzz_bad_inputs_cuda():
    run_bad_inputs("cuda", cases=3000, seed=5)


def test_fuzz_cpu():
    run("cpu", cases=3000, seed=0, seconds=240, minimum=2000)


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU present")
def test_fuzz_cuda():
    run("cuda", cases=20000, seed=1, seconds=None, minimum=20000)


def test_fuzz_gradients_cpu():
    run("cpu", cases=1000, seed=2, seconds=240, minimum=500, backward=True)


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU present")
def test_fuzz_gradients_cuda():
    run("cuda", cases=3000, seed=3, seconds=None, minimum=3000, backward=True)
