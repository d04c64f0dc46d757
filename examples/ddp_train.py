"""Distributed data-parallel training with custom::conv1d: DistributedDataParallel, or FSDP2
(torch.distributed.fsdp.fully_shard) with --fsdp.

Each rank trains the same small model (its Conv1d layers run custom::conv1d) on its share of a fixed
batch for a few SGD steps. Rank 0 then trains a copy of the initial model in one process on the
combined batch and checks that the distributed parameters match it. With --fsdp every Conv1d layer
and the whole model are fully_shard-ed: each rank keeps a dim-0 shard of every parameter (a DTensor),
FSDP2 all-gathers the full parameters (plain tensors) around each layer's forward and backward and
reduce-scatters the gradients, so custom::conv1d itself only ever sees plain tensors.

    torchrun --nproc_per_node=2 examples/ddp_train.py --backend gloo      # CPU processes
    torchrun --nproc_per_node=2 examples/ddp_train.py --backend nccl      # one GPU per process
    torchrun --nproc_per_node=2 examples/ddp_train.py --backend gloo --fsdp
"""
import _common  # noqa: F401  (puts python/ on sys.path)

import argparse
import copy
import gc
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import custom_ops


def make_model():
    return nn.Sequential(custom_ops.Conv1d(3, 16, 5, padding=2), nn.GELU(),
                         custom_ops.Conv1d(16, 16, 3, stride=2, padding=1, groups=4), nn.GELU(),
                         custom_ops.Conv1d(16, 2, 3, padding="same", dilation=2))


def train(model, x, target, steps, lr=0.05):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), target).backward()
        opt.step()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="combined batch (split evenly across ranks)")
    parser.add_argument("--fsdp", action="store_true", help="FSDP2 (fully_shard) instead of DDP")
    args = parser.parse_args()
    custom_ops.load_library()
    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dtype = torch.float64  # exact enough that DDP and single-process training agree to ~1e-12

    torch.manual_seed(0)  # same initial model and data on every rank
    initial = make_model().to(device, dtype)
    x = torch.randn(args.batch, 3, 64, device=device, dtype=dtype)
    target = torch.randn(args.batch, 2, 32, device=device, dtype=dtype)
    assert args.batch % world == 0, "the combined batch must split evenly across ranks"
    share = slice(rank * args.batch // world, (rank + 1) * args.batch // world)

    if args.fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        # The mesh on the processes' own device: without one, fully_shard takes CUDA whenever a GPU is
        # visible, also for gloo processes that train on the CPU.
        mesh = init_device_mesh(device.type, (world,))
        model = copy.deepcopy(initial)
        for layer in model:
            if isinstance(layer, nn.Conv1d):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        assert all(type(p).__name__ == "DTensor" for p in model.parameters()), "fully_shard left a parameter unsharded"
    else:
        model = DistributedDataParallel(copy.deepcopy(initial),
                                        device_ids=[device.index] if device.type == "cuda" else None)
    # Both average the gradients of the shares: the mean loss over the combined batch is the mean of
    # the shares' means.
    train(model, x[share], target[share], args.steps)
    # The full parameters on every rank (for FSDP2 an all-gather of the shards: all ranks take part).
    trained = [p.full_tensor() if args.fsdp else p.detach() for p in model.parameters()]

    mode = "FSDP2" if args.fsdp else "DDP"
    ok = torch.tensor([1.0], device=device)
    if rank == 0:
        single = copy.deepcopy(initial)
        train(single, x, target, args.steps)
        worst = max((p - q).abs().max().item() for p, q in zip(trained, single.parameters()))
        print(f"[rank 0] {mode} {args.backend} on {world} processes ({device.type}): {args.steps} steps; largest "
              f"parameter difference from single-process training on the combined batch: {worst:.2e}")
        ok.fill_(1.0 if worst < 1e-9 else 0.0)
    dist.broadcast(ok, 0)
    # Orderly shutdown: DDP's reducer (or FSDP2's state) goes before its process group, and no rank
    # leaves while another still uses the group (a rank exiting early aborted in gloo's teardown:
    # "terminate called without an active exception").
    del model
    gc.collect()  # FSDP2's sharded parameters (DTensors on a device mesh) hold the group too
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        print(f"{mode}: OK" if ok.item() == 1.0 else f"{mode}: MISMATCH")
    raise SystemExit(0 if ok.item() == 1.0 else 1)


if __name__ == "__main__":
    main()
