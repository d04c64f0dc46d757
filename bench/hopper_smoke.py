"""One small call per precision of the Hopper forward family against F.conv1d in float64, output
poisoned first. Meant to run under a short `timeout` before longer tests: a kernel that hangs or
faults shows here within seconds (scripts/gpu-quick.sh).

    timeout 60 python bench/hopper_smoke.py
"""
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
import custom_ops  # noqa: E402,F401

CASES = [  # (dtype, allow TF32, tolerance): each reaches a different precision of the family
    (torch.float32, True, 5e-3),
    (torch.float32, False, 1e-5),
    (torch.float16, True, 5e-3),
    (torch.bfloat16, True, 2e-2),
]


def main() -> int:
    torch.manual_seed(0)
    failures = 0
    for dtype, tf32, tolerance in CASES:
        torch.backends.cudnn.allow_tf32 = tf32
        x = torch.randn(3, 64, 1000, device="cuda", dtype=dtype)  # an odd batch: one consumer idle at the end
        w = torch.randn(128, 64, 3, device="cuda", dtype=dtype)
        b = torch.randn(128, device="cuda", dtype=dtype)
        name = torch.ops.custom.conv1d_cuda_kernel(x, w, [1], [0], [1], 1)
        ref = F.conv1d(x.double(), w.double(), b.double())
        torch.full((ref.numel() + 1024,), float("nan"), dtype=dtype, device="cuda")  # poison the next block
        y = torch.ops.custom.conv1d(x, w, b, [1], [0], [1], 1)
        torch.cuda.synchronize()
        error = ((y.double() - ref).norm() / ref.norm()).item()
        ok = error <= tolerance and not torch.isnan(y).any().item()
        failures += not ok
        print(f"{name:16s} {str(dtype):15s} tf32={tf32!s:5s} relative error {error:.2e} {'ok' if ok else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
