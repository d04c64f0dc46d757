"""Runs custom::conv1d once per dtype on one shape, for a profiler (ncu) to look at the kernels.

    ncu --kernel-name regex:conv1d --section SpeedOfLight --section WarpStateStats \
        python3 bench/profile_kernels.py --shape 4 64 128 3 131072 --dtypes float32 bfloat16
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
import custom_ops  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", type=int, nargs=5, metavar=("N", "C", "O", "K", "L"), default=[4, 64, 128, 3, 131072])
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--dilation", type=int, default=1)
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--strict", action="store_true", help="float32 with TF32 off (3xTF32 kernels)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--backward", action="store_true", help="also run the backward (all three gradients)")
    args = parser.parse_args()
    custom_ops.load_library()
    torch.backends.cudnn.allow_tf32 = not args.strict
    n, c, o, k, length = args.shape
    for name in args.dtypes:
        dtype = getattr(torch, name)
        x = torch.randn(n, c, length, device="cuda", dtype=dtype, requires_grad=args.backward)
        w = torch.randn(o, c // args.groups, k, device="cuda", dtype=dtype, requires_grad=args.backward)
        y = torch.ops.custom.conv1d(x, w, None, [args.stride], [args.padding], [args.dilation], args.groups)
        if args.backward:
            y.backward(torch.randn_like(y))
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
