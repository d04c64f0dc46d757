"""custom_ops: the custom::conv1d operator (CPU and CUDA kernels, autograd, TorchScript) for PyTorch.

    import torch, custom_ops                  # importing loads libcustom_ops.so: torch.ops.custom.* exist
    y = custom_ops.conv1d(x, w, b, stride=1, padding="same")   # F.conv1d's signature and argument forms
    y = torch.ops.custom.conv1d(x, w, b, [1], [1], [1], 1)     # the operator itself
    model = custom_ops.swap_conv1d(model)     # every nn.Conv1d now runs custom::conv1d
    custom_ops.cmake_prefix_path              # for C++: find_package(CustomOps) from this installation
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch
from torch import nn

__all__ = ["conv1d", "Conv1d", "swap_conv1d", "library_path", "load_library", "cmake_prefix_path"]

_LIBRARY_NAME = "libcustom_ops.so"
_HERE = Path(__file__).resolve().parent


def _installation_prefix() -> Path:
    """The CMake install prefix this package belongs to: the package folder itself in a wheel
    (custom_ops/lib/libcustom_ops.so), else <prefix> for the layout `cmake --install` writes
    (<prefix>/python/custom_ops and <prefix>/lib)."""
    if (_HERE / "lib" / _LIBRARY_NAME).is_file():
        return _HERE
    return _HERE.parent.parent


def library_path() -> Path:
    """Where libcustom_ops.so is: $CUSTOM_OPS_LIBRARY, else the installation this package belongs to
    (a wheel, or a `cmake --install` prefix), else the repository's default build (build/install)."""
    candidates: List[Path] = []
    if os.environ.get("CUSTOM_OPS_LIBRARY"):
        candidates.append(Path(os.environ["CUSTOM_OPS_LIBRARY"]))
    candidates.append(_installation_prefix() / "lib" / _LIBRARY_NAME)
    candidates.append(_HERE.parent.parent / "build" / "install" / "lib" / _LIBRARY_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{_LIBRARY_NAME} not found (looked at: {', '.join(map(str, candidates))}); "
        "install the package with `pip install --no-build-isolation .`, or build it with scripts/build.sh, "
        "or set CUSTOM_OPS_LIBRARY")


def _is_loaded() -> bool:
    try:
        torch.ops.custom.conv1d.default
        return True
    except (AttributeError, RuntimeError):
        return False


def load_library() -> Path:
    """Loads the plugin once (importing the package already does); registers torch.ops.custom.*.
    Returns the library's path."""
    path = library_path()
    if not _is_loaded():
        torch.ops.load_library(str(path))
    return path


try:
    load_library()
except FileNotFoundError as error:
    raise ImportError(str(error)) from error

# For C++ consumers: CMAKE_PREFIX_PATH entry under which find_package(CustomOps CONFIG) finds this
# installation's package (lib/cmake/CustomOps), as torch.utils.cmake_prefix_path does for libtorch.
cmake_prefix_path: str = str(_installation_prefix())


def _single(value: Union[int, List[int], Tuple[int]]) -> List[int]:
    # F.conv1d takes an int or a one-element sequence for stride, padding and dilation; the operator's
    # SymInt[1] takes both too, but TorchScript needs one type per call, so ints become lists here.
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return value
    if torch.jit.is_scripting():
        return [value[0]]  # Tuple[int] holds exactly one element
    return list(value)  # eager: any length; the operator rejects more than one element, naming the argument


def conv1d(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
           stride: Union[int, List[int], Tuple[int]] = 1,
           padding: Union[int, List[int], Tuple[int], str] = 0,
           dilation: Union[int, List[int], Tuple[int]] = 1,
           groups: int = 1) -> torch.Tensor:
    """1-d convolution with torch.nn.functional.conv1d's signature and semantics, computed by custom::conv1d.

    Args:
        input: (N, C, L) or unbatched (C, L); float32, float64, float16 or bfloat16, on CPU or CUDA.
        weight: (out_channels, C / groups, K), of input's dtype and device.
        bias: optional (out_channels,).
        stride: an int or a one-element tuple/list.
        padding: an int, a one-element tuple/list, or "valid" (no padding) or "same" (output length equals
            the input length; needs stride 1; an odd total puts the extra element on the right, as aten).
        dilation: an int or a one-element tuple/list.
        groups: splits input and output channels into this many groups.

    Returns:
        (N, out_channels, L_out), or (out_channels, L_out) for unbatched input. Differentiable with
        respect to input, weight and bias (first derivatives). Works in TorchScript (script and trace).

    Raises:
        RuntimeError: an invalid argument; the message names it, what was expected and what came.
    """
    if isinstance(padding, str):  # the overload custom::conv1d.padding
        return torch.ops.custom.conv1d(input, weight, bias, _single(stride), padding, _single(dilation), groups)
    return torch.ops.custom.conv1d(input, weight, bias, _single(stride), _single(padding), _single(dilation), groups)


class Conv1d(nn.Conv1d):
    """nn.Conv1d whose convolution is custom::conv1d. Same constructor, parameters and state_dict
    keys as nn.Conv1d, so it loads nn.Conv1d checkpoints; it scripts and traces."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor,
                      bias: Optional[torch.Tensor]) -> torch.Tensor:
        if self.padding_mode != "zeros":
            padded = nn.functional.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return torch.ops.custom.conv1d(padded, weight, bias, self.stride, [0], self.dilation, self.groups)
        return torch.ops.custom.conv1d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def swap_conv1d(module: nn.Module) -> nn.Module:
    """Replaces, in place, every nn.Conv1d inside `module` (or `module` itself) by a custom_ops.Conv1d
    that shares its parameters. Returns the (possibly new) top module."""
    if type(module) is nn.Conv1d:
        module.__class__ = Conv1d
        return module
    for child in module.children():
        swap_conv1d(child)
    return module
