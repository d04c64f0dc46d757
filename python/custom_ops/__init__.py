"""Python side of the custom_ops plugin: loads libcustom_ops.so and offers a drop-in nn.Conv1d.

    import custom_ops
    custom_ops.load_library()                 # registers torch.ops.custom.conv1d
    y = torch.ops.custom.conv1d(x, w, b, [1], [1], [1], 1)
    model = custom_ops.swap_conv1d(model)     # every nn.Conv1d now runs custom::conv1d
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import torch
from torch import nn

__all__ = ["library_path", "load_library", "Conv1d", "swap_conv1d"]

_LIBRARY_NAME = "libcustom_ops.so"


def library_path() -> Path:
    """Where libcustom_ops.so is: $CUSTOM_OPS_LIBRARY, else the install prefix this package sits in
    (<prefix>/python/custom_ops -> <prefix>/lib), else the repository's default build."""
    candidates: List[Path] = []
    if os.environ.get("CUSTOM_OPS_LIBRARY"):
        candidates.append(Path(os.environ["CUSTOM_OPS_LIBRARY"]))
    here = Path(__file__).resolve().parent
    candidates.append(here.parent.parent / "lib" / _LIBRARY_NAME)
    candidates.append(here.parent.parent / "build" / "install" / "lib" / _LIBRARY_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{_LIBRARY_NAME} not found (looked at: {', '.join(map(str, candidates))}); "
        "build it with scripts/build.sh or set CUSTOM_OPS_LIBRARY")


def load_library() -> Path:
    """Loads the plugin once; registers torch.ops.custom.conv1d. Returns the library's path."""
    path = library_path()
    if not _is_loaded():
        torch.ops.load_library(str(path))
    return path


def _is_loaded() -> bool:
    try:
        torch.ops.custom.conv1d.default
        return True
    except (AttributeError, RuntimeError):
        return False


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
    load_library()
    if type(module) is nn.Conv1d:
        module.__class__ = Conv1d
        return module
    for child in module.children():
        swap_conv1d(child)
    return module
