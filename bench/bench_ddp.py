"""DDP training-step scaling: custom::conv1d (custom_ops.Conv1d) against nn.Conv1d (cuDNN), on one and
two GPUs.

The model is a small stack of the convolutions 1-D sequence models train (a dense input projection,
a depthwise, a grouped and a dense output convolution, GELU between). Weak scaling: every GPU gets the
same per-GPU batch, so the ideal is the same step time on two GPUs and twice the samples per second.
A step is zero_grad + forward + MSE loss + backward (DDP all-reduces the gradients, overlapped with the
backward) + SGD step. After --warmup steps, --steps steps are timed on each rank (CUDA events around
each step); a step's time is its slowest rank's, and the table gives the median over the steps.
"scaling" is samples/s on N GPUs / (N x samples/s on one GPU). Before timing, rank 0 checks that the
two models (same initial weights) give the same first loss.

    python bench/bench_ddp.py [--gpus 1,2] [--dtype fp32|bf16] [--steps 30] [--markdown FILE]
    python bench/bench_ddp.py --backend gloo --tiny      # a smoke test of this script on CPU processes

Each configuration runs in fresh processes (torch.multiprocessing.spawn, one per GPU, NCCL).
"""
import argparse
import datetime
import gc
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
import custom_ops  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def make_model(conv, channels, width):
    return nn.Sequential(
        conv(channels, width, 7, padding=3), nn.GELU(),
        conv(width, width, 7, padding=3, groups=width), nn.GELU(),  # depthwise
        conv(width, width, 3, padding=1, groups=8), nn.GELU(),      # grouped
        conv(width, channels, 3, padding=1))


def shapes(args):
    # (per-GPU batch, channels, width, length)
    return (2, 8, 16, 256) if args.tiny else (args.batch, 64, args.width, args.length)


def worker(rank, world, args, port, result_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if args.backend == "gloo":
        torch.set_num_threads(1)  # CPU processes share the cores
    dist.init_process_group(args.backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=300))
    custom_ops.load_library()
    cuda = args.backend == "nccl"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = DTYPES[args.dtype]
    batch, channels, width, length = shapes(args)
    gen = torch.Generator().manual_seed(1234 + rank)  # each rank its own share of the data
    x = torch.randn(batch, channels, length, generator=gen).to(device, dtype)
    target = torch.randn(batch, channels, length, generator=gen).to(device, dtype)

    results = {}
    first_loss = {}
    for impl, conv in (("custom::conv1d", custom_ops.Conv1d), ("nn.Conv1d", nn.Conv1d)):
        torch.manual_seed(0)  # same initial weights for both implementations, on every rank
        model = DistributedDataParallel(make_model(conv, channels, width).to(device, dtype),
                                        device_ids=[rank] if cuda else None)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(x), target)
            loss.backward()
            opt.step()
            return loss

        first_loss[impl] = step().item()
        for _ in range(args.warmup):
            step()
        times = []
        for _ in range(args.steps):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                step()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                step()
                times.append((time.perf_counter() - t0) * 1e3)
        slowest = torch.tensor(times, dtype=torch.float64, device=device)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)  # each step's time is its slowest rank's
        results[impl] = statistics.median(slowest.tolist())
        del model, opt
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        a, b = first_loss["custom::conv1d"], first_loss["nn.Conv1d"]
        with open(result_path, "w") as f:
            json.dump({"step_ms": results, "first_loss": first_loss,
                       "loss_rel_diff": abs(a - b) / max(abs(b), 1e-30)}, f)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(world, args):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.json")
        mp.spawn(worker, args=(world, args, free_port(), path), nprocs=world, join=True)
        with open(path) as f:
            return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", default="1,2", help="process counts to run, e.g. 1,2")
    parser.add_argument("--backend", default="nccl", choices=["nccl", "gloo"])
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--batch", type=int, default=16, help="per-GPU batch")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and 3 steps (smoke test)")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if args.tiny:
        args.warmup, args.steps = 1, 3
    worlds = [int(n) for n in args.gpus.split(",")]
    if args.backend == "nccl":
        available = torch.cuda.device_count()
        if max(worlds) > available:
            raise SystemExit(f"[bench_ddp] needs {max(worlds)} GPUs, found {available}")
        device_name = torch.cuda.get_device_name(0)
    else:
        device_name = "CPU processes (gloo)"

    runs = {world: run(world, args) for world in worlds}
    batch, channels, width, length = shapes(args)
    model = make_model(nn.Conv1d, channels, width)
    params = sum(p.numel() for p in model.parameters())
    unit = "GPUs" if args.backend == "nccl" else "processes"
    lines = [
        f"DDP training step, {device_name}, {args.dtype}, per-GPU batch {batch} x {channels} channels x {length}, "
        f"width {width} ({params / 1e6:.2f} M parameters), median of {args.steps} steps after {args.warmup} warm-up; "
        f"torch {torch.__version__}",
        "",
        f"| conv | {unit} | step (ms) | samples/s | scaling |",
        "|---|---:|---:|---:|---:|",
    ]
    for impl in ("custom::conv1d", "nn.Conv1d"):
        base = None
        for world in worlds:
            ms = runs[world]["step_ms"][impl]
            rate = world * batch / (ms * 1e-3)
            if world == 1:
                base = rate
            scaling = f"{rate / (world * base):.2f}" if base else "-"
            lines.append(f"| {impl} | {world} | {ms:.2f} | {rate:,.0f} | {scaling} |")
    lines.append("")
    for world in worlds:
        r = runs[world]
        lines.append(f"{world} {unit}: first loss custom {r['first_loss']['custom::conv1d']:.6g}, "
                     f"nn.Conv1d {r['first_loss']['nn.Conv1d']:.6g} (relative difference {r['loss_rel_diff']:.1e})")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    tolerance = 1e-2 if args.dtype == "bf16" else 1e-3  # TF32 convolutions allowed in fp32
    bad = [w for w in worlds if not runs[w]["loss_rel_diff"] <= tolerance]
    if bad:
        raise SystemExit(f"[bench_ddp] the first losses differ by more than {tolerance:.0e} on {bad} {unit}")


if __name__ == "__main__":
    main()
