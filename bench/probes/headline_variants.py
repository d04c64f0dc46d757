"""Is the headline's bias (or its same-padding variant) slower, or only measured later?

The benchmark runs its rows in one fixed order, and on the H100 the 16-bit headline row came out at
0.66 ms in some runs and 0.71 in others while "headline + bias" and "headline, same padding" stayed at
0.71-0.75. This times our op alone on the three variants, in rotating order, several rounds, on the
same inputs, so that order, clocks and temperature fall on all of them alike; nvidia-smi's clocks are
printed per round.

    python bench/probes/headline_variants.py [--rounds 4] [--repeats 20] [--dtypes bfloat16 float16]
"""
import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_conv1d import custom_ops, time_calls  # noqa: E402

VARIANTS = {  # name: (bias, padding)
    "plain": (False, 0),
    "bias": (True, 0),
    "same padding": (False, 1),
    "zero bias": ("zeros", 0),
}


def median_ms(fn, repeats):
    return statistics.median(time_calls(fn, repeats))


def clocks():
    query = "clocks.sm,clocks.mem,temperature.gpu,power.draw"
    out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float16"])
    args = parser.parse_args()
    custom_ops.load_library()
    gen = torch.Generator(device="cuda").manual_seed(0)
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        x = torch.randn(32, 64, 131072, device="cuda", dtype=dtype, generator=gen)
        w = torch.randn(128, 64, 3, device="cuda", dtype=dtype, generator=gen)
        b = torch.randn(128, device="cuda", dtype=dtype, generator=gen)
        calls = {}
        for name, (bias, padding) in VARIANTS.items():
            bias_tensor = None if bias is False else (torch.zeros_like(b) if bias == "zeros" else b)
            calls[name] = (lambda bt=bias_tensor, p=padding:
                           torch.ops.custom.conv1d(x, w, bt, [1], [p], [1], 1))
            ref = torch.nn.functional.conv1d(x[:1].double(), w.double(),
                                             None if bias_tensor is None else bias_tensor.double(), 1, padding)
            got = calls[name]()[:1].double()
            err = ((got - ref).abs().max() / ref.abs().max()).item()
            assert err < 1e-2, f"{name}: relative error {err}"
        names = list(VARIANTS)
        results = {name: [] for name in names}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                results[name].append(median_ms(calls[name], args.repeats))
            print(f"{dtype_name} round {r}: " + ", ".join(f"{n} {results[n][-1]:.3f}" for n in order)
                  + f"  [{clocks()}]", flush=True)
        print(f"{dtype_name} medians over rounds: "
              + ", ".join(f"{n} {statistics.median(results[n]):.3f} ms" for n in names), flush=True)


if __name__ == "__main__":
    main()
