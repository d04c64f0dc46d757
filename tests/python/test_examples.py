"""The examples run end to end: the Python demo, the TorchScript export, and the C++ inference program
built against the installed CMake package with -Wl,--as-needed, loading the archives saved from Python."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
INSTALL_PREFIX = Path(os.environ.get("CUSTOM_OPS_INSTALL_PREFIX", REPO / "build" / "install"))


def run(cmd, **kwargs):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_python_demo():
    out = run([sys.executable, REPO / "examples" / "python_demo.py"])
    assert "python demo: OK" in out


def test_train_demo():
    out = run([sys.executable, REPO / "examples" / "train_demo.py"])
    assert "train demo: OK" in out


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("archives")
    run([sys.executable, REPO / "examples" / "export_models.py", out_dir])
    return out_dir


@pytest.fixture(scope="module")
def cpp_inference_binary(tmp_path_factory):
    build = tmp_path_factory.mktemp("cpp_inference")
    prefix_path = f"{INSTALL_PREFIX};{torch.utils.cmake_prefix_path}"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"] if shutil.which("ccache") else []
    run(["cmake", "-S", REPO / "examples" / "cpp_inference", "-B", build, *generator, *launcher,
         "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_PREFIX_PATH={prefix_path}",
         "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed"])
    run(["cmake", "--build", build])
    return build / "conv1d_inference"


def test_cpp_binary_records_the_plugin_despite_as_needed(cpp_inference_binary):
    dynamic = run(["readelf", "-d", cpp_inference_binary])
    assert "[libcustom_ops.so]" in dynamic


@pytest.mark.parametrize("archive", ["model_scripted.pt", "model_traced.pt"])
def test_cpp_inference_runs_python_archives(cpp_inference_binary, archives, archive):
    out = run([cpp_inference_binary, archives / archive, archives / "sample.pt"])
    assert "C++ inference: OK" in out
    assert "max abs difference from the Python result" in out


def test_cpp_training_of_a_python_archive(cpp_inference_binary, archives):
    out = run([cpp_inference_binary.parent / "conv1d_train", archives / "model_scripted.pt", archives / "sample.pt"])
    assert "C++ training: OK" in out
