"""custom::conv1d from Python: compare it with F.conv1d, then swap the nn.Conv1d layers of a model.

    python examples/python_demo.py
"""
import _common  # noqa: F401  (puts python/ on sys.path)

import warnings

import torch
import torch.nn.functional as F
from torch import nn

import custom_ops


class TinyAudioNet(nn.Module):
    """A small 1-d conv net: strided front end, dilated and depthwise layers, a pointwise head."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, 16, kernel_size=10, stride=5),
            nn.GELU(),
            nn.Conv1d(16, 32, kernel_size=3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv1d(32, 32, kernel_size=4, padding="same", groups=32),
            nn.GELU(),
            nn.Conv1d(32, 8, kernel_size=1),
        )

    def forward(self, x):
        return self.net(x)


def main():
    # aten's reference conv1d notes that its own "same" padding copies the input; not our concern here.
    warnings.filterwarnings("ignore", message="Using padding='same'")
    path = custom_ops.load_library()
    print(f"loaded {path}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    torch.manual_seed(0)
    for device in devices:
        x = torch.randn(4, 16, 1000, device=device)
        w = torch.randn(32, 8, 5, device=device)
        b = torch.randn(32, device=device)
        ours = torch.ops.custom.conv1d(x, w, b, [2], [1], [3], 2)
        ref = F.conv1d(x.double(), w.double(), b.double(), stride=2, padding=1, dilation=3, groups=2)
        err = ((ours.double() - ref).abs().max() / ref.abs().max()).item()
        print(f"[{device}] custom::conv1d vs F.conv1d (stride 2, padding 1, dilation 3, groups 2): "
              f"shape {tuple(ours.shape)}, relative max error {err:.2e}")
        assert err < 1e-3, err

        same = torch.ops.custom.conv1d(x, w[:, :, :4], None, [1], "same", [1], 2)
        ref_same = F.conv1d(x.double(), w[:, :, :4].double(), None, padding="same", groups=2)
        err_same = ((same.double() - ref_same).abs().max() / ref_same.abs().max()).item()
        print(f"[{device}] padding='same' with an even kernel: shape {tuple(same.shape)}, "
              f"relative max error {err_same:.2e}")
        assert err_same < 1e-3, err_same

        model = TinyAudioNet().to(device).eval()
        audio = torch.randn(2, 1, 16000, device=device)
        with torch.no_grad():
            expected = model(audio)
            custom_ops.swap_conv1d(model)
            swapped = sum(isinstance(m, custom_ops.Conv1d) for m in model.modules())
            got = model(audio)
        err_model = ((got - expected).abs().max() / expected.abs().max()).item()
        print(f"[{device}] TinyAudioNet with {swapped} nn.Conv1d layers swapped for custom_ops.Conv1d: "
              f"output {tuple(got.shape)}, relative max error vs nn.Conv1d {err_model:.2e}")
        assert swapped == 4 and err_model < 1e-3, err_model
    print("python demo: OK")


if __name__ == "__main__":
    main()
