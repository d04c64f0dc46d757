"""Training with custom::conv1d from Python: the same small model built on nn.Conv1d and on
custom_ops.Conv1d takes the same SGD steps and ends with the same parameters; on a GPU it also trains
under torch.autocast (bfloat16).

    python examples/train_demo.py
"""
import _common  # noqa: F401  (puts python/ on sys.path)

import copy

import torch
import torch.nn.functional as F
from torch import nn

import custom_ops


def make_model():
    return nn.Sequential(nn.Conv1d(2, 16, 5, padding=2), nn.GELU(), nn.Conv1d(16, 16, 3, padding=2, dilation=2, groups=4),
                         nn.GELU(), nn.Conv1d(16, 2, 1))


def train(model, x, target, steps, autocast_dtype=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = F.mse_loss(model(x).to(target.dtype), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main():
    custom_ops.load_library()
    torch.manual_seed(0)
    ok = True
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        # The task: learn a fixed smoothing filter applied to noise.
        x = torch.randn(8, 2, 256, device=device)
        target = F.conv1d(x, torch.full((2, 1, 7), 1 / 7, device=device), padding=3, groups=2)
        reference = make_model().double().to(device)
        ours = custom_ops.swap_conv1d(copy.deepcopy(reference))
        ref_losses = train(reference, x.double(), target.double(), 20)
        our_losses = train(ours, x.double(), target.double(), 20)
        worst = max((p - q).abs().max().item() for p, q in zip(reference.parameters(), ours.parameters()))
        print(f"[{device}] float64 loss {our_losses[0]:.4f} -> {our_losses[-1]:.4f} (aten: {ref_losses[-1]:.4f}); "
              f"largest parameter difference after 20 steps: {worst:.2e}")
        ok &= worst < 1e-9 and our_losses[-1] < our_losses[0]
        if device == "cuda":
            model = custom_ops.swap_conv1d(make_model().to(device))
            losses = train(model, x, target, 20, autocast_dtype=torch.bfloat16)
            print(f"[{device}] autocast bfloat16 loss {losses[0]:.4f} -> {losses[-1]:.4f}")
            ok &= losses[-1] < losses[0]
    print("train demo: OK" if ok else "train demo: FAILED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
