"""DTensor cases for custom::conv1d, run by test_distributed.py under torchrun (2 processes).

    torchrun --nproc_per_node=2 tests/python/dtensor_worker.py --backend gloo   # CPU
    torchrun --nproc_per_node=2 tests/python/dtensor_worker.py --backend nccl   # one GPU per process

Every case runs the op on DTensor inputs (forward and the gradients of input, weight and bias for a
given upstream gradient) and compares with the unsharded op on the full tensors, in float64. It also
checks the placements of the output and of the gradients, the collectives that ran (none where the
rule promises none) and whether the replicate fallback warned. Rank 0 prints one line per case:
"CASE <name> OK ..." or "CASE <name> FAIL ...", then "DTENSOR: DONE". A case's failure does not stop
the others; the exit status is 0 unless the run itself broke.
"""
import argparse
import datetime
import gc
import os
import sys
import traceback
import zlib
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from torch.distributed.tensor import DTensor, Partial, Replicate, Shard, distribute_tensor  # noqa: E402
from torch.distributed.tensor.debug import CommDebugMode  # noqa: E402

import custom_ops  # noqa: E402
import custom_ops.distributed  # noqa: E402

TOL = 1e-12  # float64: max |dtensor - reference| / max |reference|


def rel_err(out, ref):
    out = out.full_tensor() if isinstance(out, DTensor) else out
    return ((out.double() - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-30)).item()


class Case:
    """placements: (input, weight, bias), each a Placement (1-D mesh) or a tuple, one per dimension of
    a mesh of shape mesh_shape; out and grads (input, weight, bias) likewise: the expected placements."""

    def __init__(self, name, *, C, Cout, groups, placements, padding=(1,), stride=1, dilation=1, bias=True,
                 out=None, grads=None, collectives=None, fallback=False, N=4, L=37, K=3, mesh_shape=None):
        self.__dict__.update(locals())
        del self.__dict__["self"]


def per_dim(p):
    return tuple(p) if isinstance(p, (tuple, list)) else (p,)


def run_case(case, mesh, device, rank):
    gen = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))  # the same on every rank
    f64 = dict(dtype=torch.float64)
    x = torch.randn(case.N, case.C, case.L, generator=gen, **f64).to(device)
    w = torch.randn(case.Cout, case.C // case.groups, case.K, generator=gen, **f64).to(device)
    b = torch.randn(case.Cout, generator=gen, **f64).to(device) if case.bias else None
    padding = case.padding if isinstance(case.padding, str) else list(case.padding)
    args = ([case.stride], padding, [case.dilation], case.groups)

    # Reference: the unsharded op on the full tensors.
    leaves = [t.clone().requires_grad_() for t in (x, w, b) if t is not None]
    y_ref = torch.ops.custom.conv1d(leaves[0], leaves[1], leaves[2] if b is not None else None, *args)
    g = torch.randn(y_ref.shape, generator=gen, **f64).to(device)
    grads_ref = torch.autograd.grad(y_ref, leaves, g)

    px, pw, pb = case.placements
    xd = distribute_tensor(x, mesh, per_dim(px)).requires_grad_()
    wd = distribute_tensor(w, mesh, per_dim(pw)).requires_grad_()
    bd = distribute_tensor(b, mesh, per_dim(pb)).requires_grad_() if b is not None else None
    dleaves = [t for t in (xd, wd, bd) if t is not None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with CommDebugMode() as comm:
            yd = torch.ops.custom.conv1d(xd, wd, bd, *args)
        forward_comms = comm.get_total_counts()
        gd = distribute_tensor(g, mesh, yd.placements)
        with CommDebugMode() as comm:
            grads = torch.autograd.grad(yd, dleaves, gd)
            # Twice: the second call hits DTensor's sharding cache (whose key must include groups etc.).
            yd2 = torch.ops.custom.conv1d(xd, wd, bd, *args)
        total_comms = comm.get_total_counts()  # the backward and the second forward
    problems = []
    err = max([rel_err(yd, y_ref), rel_err(yd2, y_ref)] + [rel_err(a, r) for a, r in zip(grads, grads_ref)])
    if not err <= TOL:
        problems.append(f"error {err:.1e} > {TOL:.0e}")
    if case.out is not None and tuple(yd.placements) != per_dim(case.out):
        problems.append(f"output {tuple(yd.placements)}, expected {per_dim(case.out)}")
    if case.grads is not None:
        got = [tuple(gr.placements) for gr in grads]
        want = [per_dim(p) for p in case.grads[:len(grads)]]
        if got != want:
            problems.append(f"gradients {got}, expected {want}")
    if case.collectives is not None and (forward_comms, total_comms) != (case.collectives, case.collectives):
        problems.append(f"{forward_comms} collectives in the forward, {total_comms} in the backward + 2nd forward; "
                        f"expected {case.collectives}")
    warned = any("falling back to Replicate" in str(m.message) for m in caught)
    if warned != case.fallback:
        problems.append("fell back to replicate with a warning" if warned else "expected the fallback warning")
    return err, forward_comms, problems


def training_case(mesh, device, rank, world):
    """Tensor-parallel depthwise block: a depthwise custom_ops.Conv1d (padding "same") whose weight and
    bias are channel-sharded parameters, fed a channel-sharded input, then GELU and a loss; 3 SGD steps
    match the same block trained unsharded."""
    torch.manual_seed(1)
    ref = nn.Sequential(custom_ops.Conv1d(8, 16, 5, padding="same", groups=8), nn.GELU()).to(device, torch.float64)
    tp = nn.Sequential(custom_ops.Conv1d(8, 16, 5, padding="same", groups=8), nn.GELU()).to(device, torch.float64)
    tp.load_state_dict(ref.state_dict())
    for name, p in list(tp[0].named_parameters()):
        setattr(tp[0], name, nn.Parameter(distribute_tensor(p.detach(), mesh, [Shard(0)])))
    x = torch.randn(4, 8, 50, device=device, dtype=torch.float64)
    target = torch.randn(4, 16, 50, device=device, dtype=torch.float64)
    xd, td = distribute_tensor(x, mesh, [Shard(1)]), distribute_tensor(target, mesh, [Shard(1)])
    for model, inp, tgt in ((ref, x, target), (tp, xd, td)):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            ((model(inp) - tgt) ** 2).mean().backward()
            opt.step()
    err = max(rel_err(p, q.detach()) for p, q in zip(tp.parameters(), ref.parameters()))
    problems = [] if err <= TOL else [f"error {err:.1e} > {TOL:.0e}"]
    if tuple(tp[0].weight.placements) != (Shard(0),):
        problems.append(f"weight placements {tuple(tp[0].weight.placements)}")
    return err, None, problems


def cases():
    R, S0, S1, S2, P = Replicate(), Shard(0), Shard(1), Shard(2), Partial()
    batch_grads = (S0, P, P)
    channel_grads = (S1, S0, S0)
    return [
        # batch: input Shard(0), replicated weight and bias
        Case("batch", C=6, Cout=10, groups=1, placements=(S0, R, R), out=S0, grads=batch_grads, collectives=0),
        Case("batch_stride2_dilation2_nobias", C=6, Cout=4, groups=1, placements=(S0, R, R), stride=2, dilation=2,
             padding=(0,), bias=False, out=S0, grads=batch_grads, collectives=0),
        Case("batch_padding_same_grouped", C=8, Cout=8, groups=2, placements=(S0, R, R), padding="same", K=4,
             out=S0, grads=batch_grads, collectives=0),
        Case("batch_uneven", N=5, C=3, Cout=5, groups=1, placements=(S0, R, R), out=S0, grads=batch_grads,
             collectives=0),
        # channel: depthwise / grouped, input Shard(1), weight and bias Shard(0)
        Case("depthwise", C=8, Cout=8, groups=8, placements=(S1, S0, S0), out=S1, grads=channel_grads,
             collectives=0),
        Case("depthwise_multiplier2_same_nobias", C=6, Cout=12, groups=6, placements=(S1, S0, S0), padding="same",
             K=5, bias=False, out=S1, grads=channel_grads, collectives=0),
        Case("depthwise_valid_stride2", C=4, Cout=4, groups=4, placements=(S1, S0, S0), padding="valid", stride=2,
             out=S1, grads=channel_grads, collectives=0),
        Case("grouped_4", C=8, Cout=16, groups=4, placements=(S1, S0, S0), out=S1, grads=channel_grads,
             collectives=0),
        Case("grouped_replicated_weight", C=8, Cout=16, groups=4, placements=(S1, R, R), out=S1,
             grads=channel_grads, collectives=0),  # the weight and bias are sliced locally
        Case("grouped_replicated_input", C=8, Cout=8, groups=2, placements=(R, S0, S0), out=S1,
             grads=channel_grads, collectives=0),
        # colwise: dense convolution, replicated input, weight and bias Shard(0)
        Case("colwise", C=6, Cout=8, groups=1, placements=(R, S0, S0), out=S1, grads=(P, S0, S0), collectives=0),
        Case("colwise_replicated_bias_pointwise", C=6, Cout=8, groups=1, K=1, padding=(0,), placements=(R, S0, R),
             out=S1, grads=(P, S0, S0), collectives=0),
        # fallback to replicate (with the warning), still correct
        Case("fallback_channels_groups1", C=8, Cout=8, groups=1, placements=(S1, S1, R), out=R, fallback=True),
        Case("fallback_sequence", C=4, Cout=4, groups=1, placements=(S2, R, R), out=R, fallback=True),
        Case("fallback_groups_not_divisible", C=6, Cout=6, groups=3, placements=(S1, S0, S0), out=R,
             fallback=True),
        # batch with a sharded weight: the weight is all-gathered (as FSDP would), no fallback
        Case("batch_weight_sharded_gathered", C=4, Cout=8, groups=1, placements=(S0, S0, R), out=S0,
             grads=batch_grads),
        Case("all_replicate", C=4, Cout=4, groups=2, placements=(R, R, R), out=R, grads=(R, R, R), collectives=0),
        # 2-D meshes: batch on one dimension, channel on the other (the 2 ranks on either dimension)
        Case("mesh1x2_batch_then_channel", mesh_shape=(1, 2), C=8, Cout=8, groups=4,
             placements=((S0, S1), (R, S0), (R, S0)), out=(S0, S1), grads=((S0, S1), (P, S0), (P, S0)),
             collectives=0),
        Case("mesh2x1_channel_then_batch", mesh_shape=(2, 1), C=8, Cout=16, groups=8,
             placements=((S1, S0), (S0, R), (S0, R)), out=(S1, S0), grads=((S1, S0), (S0, P), (S0, P)),
             collectives=0),
    ]


def case_names():
    return [c.name for c in cases()] + ["training_depthwise_tensor_parallel"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    args = parser.parse_args()
    custom_ops.distributed.register_sharding_rules()
    # Bounded: a rank stuck in a collective fails the run instead of hanging it.
    dist.init_process_group(args.backend, timeout=datetime.timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    run_all(device, rank, world)
    # Orderly shutdown: the mesh and every DTensor (which hold the process group) are gone before the
    # group is destroyed, and no rank leaves while another still uses the group (otherwise gloo's
    # teardown aborts now and then: "terminate called without an active exception").
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        print("DTENSOR: DONE", flush=True)


def run_all(device, rank, world):
    mesh = init_device_mesh(device.type, (world,))
    meshes = {(world,): mesh}
    for c in cases():
        if c.mesh_shape is not None and c.mesh_shape not in meshes:
            meshes[c.mesh_shape] = init_device_mesh(device.type, c.mesh_shape)
    todo = [(c.name, (lambda c=c: run_case(c, meshes[c.mesh_shape or (world,)], device, rank))) for c in cases()]
    todo.append(("training_depthwise_tensor_parallel", lambda: training_case(mesh, device, rank, world)))
    for name, fn in todo:
        try:
            err, comms, problems = fn()
        except Exception:  # noqa: BLE001  (reported as the case's failure; the other cases still run)
            err, comms, problems = float("nan"), None, ["raised " + traceback.format_exc().replace("\n", " | ")]
        # A case passes only where it passed on every rank.
        ok = torch.tensor([0.0 if problems else 1.0], device=device)
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        if rank == 0:
            status = "OK" if ok.item() == 1.0 and not problems else "FAIL"
            detail = f"error {err:.1e}" + (f", {comms} collectives in the forward" if comms is not None else "")
            print(f"CASE {name} {status} {detail}" + ("; " + "; ".join(problems) if problems else ""), flush=True)


if __name__ == "__main__":
    main()
