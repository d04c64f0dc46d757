"""The backward of custom::conv1d on the CPU against aten's (oneDNN), side by side: the suite of
bench_cpu.py, the gradients a training step asks for (input, weight and bias).

    python bench/bench_cpu_backward.py [--threads 1 2] [--dtypes float32 bfloat16] [--only NAME ...]

Each case: random inputs and upstream gradient, one forward of each op with autograd, then
torch.autograd.grad on the retained graph (the backward only), ours and aten's timed interleaved in the
same process (the order alternates each repeat; bench_cpu.interleaved_medians), medians of up to
--repeats. The last gradients of each are checked against aten's float64 gradients (max |grad - ref| /
max |ref| over the three, reported as the worst).
"""
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cpu import interleaved_medians, run_suite  # noqa: E402


def measure_backward(x, w, b, s, p, d, g, repeats, budget):
    x, w, b = x.requires_grad_(), w.requires_grad_(), b.requires_grad_()
    y_ours = torch.ops.custom.conv1d(x, w, b, [s], [p], [d], g)
    y_aten = F.conv1d(x, w, b, s, p, d, g)
    gy = torch.randn(y_aten.shape).to(x.dtype)
    result = {}

    def ours():
        result["ours"] = torch.autograd.grad(y_ours, [x, w, b], gy, retain_graph=True)

    def aten():
        torch.autograd.grad(y_aten, [x, w, b], gy, retain_graph=True)

    ours_ms, aten_ms, ours_min, aten_min, _ = interleaved_medians(ours, aten, repeats, budget)
    refs = [t.detach().double().requires_grad_() for t in (x, w, b)]
    ref_grads = torch.autograd.grad(F.conv1d(*refs, s, p, d, g), refs, gy.double())
    err = max(((got.double() - ref).abs().max() / ref.abs().max()).item()
              for got, ref in zip(result["ours"], ref_grads))
    return ours_ms, aten_ms, ours_min, aten_min, err


def main():
    run_suite("backward (grad_input, grad_weight, grad_bias), ", measure_backward)


if __name__ == "__main__":
    main()
