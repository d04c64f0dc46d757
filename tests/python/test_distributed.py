"""Distributed training and device placement.

* DDP and FSDP2 (fully_shard) with the gloo backend on CPU processes (examples/ddp_train.py under
  torchrun): the trained parameters match single-process training on the combined batch. Runs
  everywhere (CI included).
* DTensor (custom_ops.distributed's sharding rules) on CPU processes with gloo: every case of
  tests/python/dtensor_worker.py, under one torchrun, compared with the unsharded op in float64
  (forward and gradients), with the placements and collectives each rule promises.
* Device placement on a second GPU, and DDP, FSDP2 and DTensor over NCCL: need two GPUs
  (scripts/multi-gpu-check.sh); they skip with fewer.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import dtensor_worker
from conftest import relative_max_error

REPO = Path(__file__).resolve().parents[2]
TWO_GPUS = torch.cuda.is_available() and torch.cuda.device_count() >= 2
needs_two_gpus = pytest.mark.skipif(not TWO_GPUS, reason="needs two CUDA GPUs")


def torchrun(script, *args, expect, nproc=2):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(script), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    assert expect in result.stdout, result.stdout + result.stderr
    return result.stdout


def train(backend, *args, expect="DDP: OK"):
    return torchrun(REPO / "examples" / "ddp_train.py", "--backend", backend, *args, expect=expect)


def test_ddp_gloo_on_cpu_processes_matches_single_process():
    train("gloo")


@needs_two_gpus
def test_ddp_nccl_on_two_gpus_matches_single_process():
    train("nccl")


def test_fsdp2_gloo_on_cpu_processes_matches_single_process():
    train("gloo", "--fsdp", expect="FSDP2: OK")


@needs_two_gpus
def test_fsdp2_nccl_on_two_gpus_matches_single_process():
    train("nccl", "--fsdp", expect="FSDP2: OK")


# DTensor: one torchrun per backend runs every case (process start-up dominates); each case is a test.
DTENSOR_CASES = dtensor_worker.case_names()
_dtensor_runs = {}


def dtensor_results(backend):
    if backend not in _dtensor_runs:
        try:
            out = torchrun(Path(__file__).parent / "dtensor_worker.py", "--backend", backend, expect="DTENSOR: DONE")
        except (AssertionError, subprocess.TimeoutExpired) as error:
            _dtensor_runs[backend] = error
        else:
            _dtensor_runs[backend] = {line.split()[1]: line for line in out.splitlines() if line.startswith("CASE ")}
    results = _dtensor_runs[backend]
    if isinstance(results, BaseException):
        pytest.fail(f"the DTensor worker failed: {results}")
    return results


def check_dtensor_case(backend, name):
    line = dtensor_results(backend).get(name)
    assert line is not None, f"case {name} did not report"
    assert line.split()[2] == "OK", line


@pytest.mark.parametrize("name", DTENSOR_CASES)
def test_dtensor_gloo_on_cpu_processes(name):
    check_dtensor_case("gloo", name)


@needs_two_gpus
@pytest.mark.parametrize("name", DTENSOR_CASES)
def test_dtensor_nccl_on_two_gpus(name):
    check_dtensor_case("nccl", name)


@needs_two_gpus
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_inputs_on_second_gpu_compute_there(dtype):
    torch.cuda.set_device(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 500, generator=gen, dtype=torch.float64)
    w = torch.randn(32, 16, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(32, generator=gen, dtype=torch.float64)
    xd, wd, bd = (t.to("cuda:1", dtype).requires_grad_() for t in (x, w, b))
    stream = torch.cuda.Stream(device="cuda:1")  # the op must use cuda:1's current stream
    with torch.cuda.stream(stream):
        y = torch.ops.custom.conv1d(xd, wd, bd, [1], [1], [1], 1)
        grads = torch.autograd.grad(y, [xd, wd, bd], torch.ones_like(y))
    stream.synchronize()
    assert torch.cuda.current_device() == 0
    assert y.device == torch.device("cuda:1") and all(g.device == torch.device("cuda:1") for g in grads)
    tol = {torch.float32: 5e-3, torch.bfloat16: 1e-2, torch.float64: 1e-12}[dtype]
    assert relative_max_error(y, F.conv1d(x, w, b, 1, 1)) <= tol


@needs_two_gpus
def test_mixing_devices_raises_a_clear_error():
    x = torch.randn(2, 4, 50, device="cuda:0")
    w = torch.randn(8, 4, 3, device="cuda:1")
    with pytest.raises(RuntimeError, match="expected 'weight' on the device of 'input'"):
        torch.ops.custom.conv1d(x, w, None, [1], [0], [1], 1)
    with pytest.raises(RuntimeError, match="expected 'bias' on the device of 'input'"):
        torch.ops.custom.conv1d(x, w.to("cuda:0"), torch.randn(8, device="cuda:1"), [1], [0], [1], 1)


@needs_two_gpus
def test_scripted_model_moved_to_second_gpu_runs_there_in_cpp(tmp_path):
    """A scripted model saved from Python, loaded by the C++ program with --device cuda:1."""
    import custom_ops
    model = torch.jit.script(custom_ops.swap_conv1d(torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3, padding=1))))
    x = torch.randn(2, 4, 40)

    class Sample(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.input = x
            self.expected = model(x).detach()

    # The expected output comes from the model on the CPU, so Sample is built before .to("cuda:1")
    # moves the scripted model (which then refuses a CPU input).
    sample = torch.jit.script(Sample())
    model.to("cuda:1").save(str(tmp_path / "model.pt"))
    sample.save(str(tmp_path / "sample.pt"))
    binary = Path(os.environ.get("CUSTOM_OPS_CPP_INFERENCE", REPO / "build" / "demo" / "cpp_inference" / "conv1d_inference"))
    if not binary.is_file():
        pytest.skip(f"{binary} not built (scripts/demo.sh builds it)")
    out = subprocess.run([str(binary), str(tmp_path / "model.pt"), str(tmp_path / "sample.pt"), "cuda:1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[cuda:1]" in out.stdout and "C++ inference: OK" in out.stdout
