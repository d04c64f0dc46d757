"""DTensor sharding rules for custom::conv1d and custom::conv1d_backward.

A custom operator has no sharding rule until one is registered: without these, a DTensor input
raises "Operator custom.conv1d.default does not have a sharding strategy registered". Register once
per process, after torch.distributed is usable and before the first DTensor call:

    import custom_ops.distributed
    custom_ops.distributed.register_sharding_rules()   # loads the plugin too; idempotent

The rules cover both forward overloads (custom::conv1d and custom::conv1d.padding) and the backward
op that the C++ autograd function calls, so gradients of DTensor inputs follow the same placements.
Each mesh dimension gets one of four modes, chosen from the placements of `input` and `weight`:

  batch     input Shard(0) (weight and bias are made Replicate, an all-gather if they are not)
            -> output Shard(0). No collective in the forward when the weight is replicated.
            Backward: grad_input Shard(0); grad_weight and grad_bias Partial (sum over ranks: the
            reduction happens when they are redistributed, e.g. by the optimizer or full_tensor()).

  channel   grouped or depthwise convolution (groups > 1): input Shard(1) and/or weight Shard(0)
            (bias Shard(0) or Replicate; a Replicate operand is sliced locally, no communication)
            -> output Shard(1), with no collective in the forward or the backward. Each rank holds
            whole groups and runs the op on its shards with groups / (number of channel shards);
            this needs `groups` divisible by that number (else: replicate, below). Backward:
            grad_input Shard(1), grad_weight Shard(0), grad_bias Shard(0).
            The adjusted `groups` is why this is a propagation rule and not a
            torch.distributed.tensor.experimental.register_sharding strategy: a strategy maps
            placements only, and the local call would get the global `groups` (and fail, since the
            local input has fewer channels than groups * weight.size(1)).

  colwise   dense convolution (groups == 1), input Replicate, weight Shard(0) (bias Shard(0) or
            Replicate) -> output Shard(1) (each rank computes its output channels), no collective in
            the forward. Backward: grad_input Partial (sum over ranks), grad_weight and grad_bias
            Shard(0).

  replicate everything else: sequence sharding (input Shard(2): would need a halo exchange, not
            implemented), input channels of a dense convolution (input Shard(1) with groups == 1:
            the output would be a Partial sum, not implemented), Partial inputs, groups not
            divisible by the channel shards, _StridedShard.
            Cost: every sharded or partial operand is all-gathered (or all-reduced) to Replicate and
            every rank computes the whole convolution: the output is Replicate. A UserWarning names
            the placements the first time a given case falls back; all-Replicate inputs are not a
            fallback and do not warn.

Meshes of several dimensions combine these per dimension (e.g. batch on one, channel on another).

The rules go through DTensor's sharding-propagation registry
(DTensor._op_dispatcher.sharding_propagator.register_sharding_prop_rule): a private API of torch, the
one torch's own view ops use to change non-tensor arguments of the local call. Checked with
torch 2.11.
"""
from __future__ import annotations

import warnings
from typing import List, Optional, Sequence, Tuple

import torch

__all__ = ["register_sharding_rules", "conv1d_modes"]

_REGISTERED = False
_WARNED = set()


def register_sharding_rules() -> None:
    """Registers the DTensor sharding rules of custom::conv1d (both overloads) and
    custom::conv1d_backward. Loads the plugin if needed. Safe to call more than once."""
    global _REGISTERED
    if _REGISTERED:
        return
    import custom_ops
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor._op_schema import RuntimeSchemaInfo

    custom_ops.load_library()
    propagator = DTensor._op_dispatcher.sharding_propagator
    # static_argnum=3: stride, padding, dilation, groups (and output_mask) change the decision and
    # the local arguments, so they are part of DTensor's sharding cache key.
    info = RuntimeSchemaInfo(static_argnum=3)
    propagator.register_sharding_prop_rule(torch.ops.custom.conv1d.default, _conv1d_rule, info)
    propagator.register_sharding_prop_rule(torch.ops.custom.conv1d.padding, _conv1d_rule, info)
    propagator.register_sharding_prop_rule(torch.ops.custom.conv1d_backward.default, _conv1d_backward_rule, info)
    _REGISTERED = True


# ----------------------------------------------------------------------------------------------
# The decision, per mesh dimension


def conv1d_modes(input_placements: Sequence, weight_placements: Sequence, bias_placements: Optional[Sequence],
                 groups: int, mesh_shape: Sequence[int]) -> Tuple[List[str], int]:
    """For each mesh dimension, "batch", "channel", "colwise" or "replicate" (see the module's docstring), and
    the number of channel shards (the product of the mesh sizes of the "channel" dimensions), by
    which the local call divides `groups`."""
    from torch.distributed.tensor.placement_types import Replicate, Shard

    def exactly(p, dim):
        return type(p) is Shard and p.dim == dim

    modes = []
    for d in range(len(mesh_shape)):
        px, pw = input_placements[d], weight_placements[d]
        pb = bias_placements[d] if bias_placements is not None else None
        bias_ok = pb is None or isinstance(pb, Replicate) or exactly(pb, 0)
        if exactly(px, 0):
            modes.append("batch")
        elif (groups > 1 and (exactly(px, 1) or isinstance(px, Replicate))
              and (exactly(pw, 0) or isinstance(pw, Replicate)) and bias_ok
              and not (isinstance(px, Replicate) and isinstance(pw, Replicate))):
            modes.append("channel")
        elif groups == 1 and isinstance(px, Replicate) and exactly(pw, 0) and bias_ok:
            modes.append("colwise")
        else:
            modes.append("replicate")
    shards = 1
    for d, mode in enumerate(modes):
        if mode == "channel":
            shards *= mesh_shape[d]
    if groups % shards != 0:
        modes = ["replicate" if m == "channel" else m for m in modes]
        shards = 1
    return modes, shards


def _placements_for(modes: Sequence[str]):
    """(input, weight, bias, output) placements, and those of the backward's outputs
    (grad_input, grad_weight, grad_bias), for each mesh dimension's mode."""
    from torch.distributed.tensor.placement_types import Partial, Replicate, Shard

    table = {
        #            input     weight       bias         output    grad_input grad_weight grad_bias
        "batch": (Shard(0), Replicate(), Replicate(), Shard(0), Shard(0), Partial(), Partial()),
        "channel": (Shard(1), Shard(0), Shard(0), Shard(1), Shard(1), Shard(0), Shard(0)),
        "colwise": (Replicate(), Shard(0), Shard(0), Shard(1), Partial(), Shard(0), Shard(0)),
        "replicate": (Replicate(),) * 7,
    }
    columns = list(zip(*(table[m] for m in modes)))
    return [tuple(c) for c in columns]


def _warn_fallback(op_name: str, specs, groups: int) -> None:
    key = (op_name, tuple(tuple(s.placements) if s is not None else None for s in specs), groups)
    if key in _WARNED:
        return
    _WARNED.add(key)
    names = ("input", "weight", "bias")
    described = ", ".join(f"{n}={tuple(s.placements)}" for n, s in zip(names, specs) if s is not None)
    warnings.warn(
        f"{op_name} on DTensor: no sharded rule for {described} (groups={groups}); falling back to "
        "Replicate: the sharded operands are all-gathered (partial ones all-reduced) and every rank "
        "computes the whole convolution. Supported without that cost: input Shard(0) with a "
        "replicated weight (batch), and, for groups > 1, input Shard(1) / weight Shard(0) / bias "
        "Shard(0) with groups divisible by the shards (channel), and, for groups == 1, a replicated "
        "input with weight Shard(0) (colwise). See custom_ops/distributed.py.",
        UserWarning, stacklevel=2)


def _normalized(op_schema, count: int) -> list:
    """The op's arguments with the trailing defaults that the dispatcher leaves out filled in."""
    args = list(op_schema.args_schema)
    arguments = op_schema.op._schema.arguments
    for i in range(len(args), count):
        default = arguments[i].default_value
        args.append(default)
    return args


def _respec(spec, placements):
    from torch.distributed.tensor._dtensor_spec import DTensorSpec

    return DTensorSpec(spec.mesh, tuple(placements), tensor_meta=spec.tensor_meta)


def _output_sharding(op_schema, new_specs: dict, groups_index: int, local_groups: int, output_spec):
    """OutputSharding that redistributes the tensor arguments to new_specs (index -> spec) and
    passes local_groups as the local call's groups."""
    from torch.distributed.tensor._op_schema import OpSchema, OutputSharding

    args = list(op_schema.args_schema)
    changed = any(args[i].placements != spec.placements for i, spec in new_specs.items())
    for i, spec in new_specs.items():
        args[i] = spec
    new_groups = groups_index < len(args) and args[groups_index] != local_groups
    if new_groups:
        args[groups_index] = local_groups
    if not changed and not new_groups:
        return OutputSharding(output_spec)
    return OutputSharding(output_spec, OpSchema(op_schema.op, tuple(args), op_schema.kwargs_schema),
                          needs_redistribute=True, use_val_from_redistribute_schema=True)


def _conv1d_rule(op_schema):
    # conv1d(input, weight, bias, stride, padding, dilation, groups)
    x, w, b, _, _, _, groups = _normalized(op_schema, 7)
    mesh = x.mesh
    modes, shards = conv1d_modes(x.placements, w.placements, b.placements if b is not None else None,
                                 int(groups), mesh.shape)
    px, pw, pb, pout, _, _, _ = _placements_for(modes)
    fallback = [d for d, m in enumerate(modes) if m == "replicate"
                and not all(s is None or s.placements[d].is_replicate() for s in (x, w, b))]
    if fallback:
        _warn_fallback(str(op_schema.op), (x, w, b), int(groups))
    new_specs = {0: _respec(x, px), 1: _respec(w, pw)}
    if b is not None:
        new_specs[2] = _respec(b, pb)
    from torch.distributed.tensor._dtensor_spec import DTensorSpec

    output_spec = DTensorSpec(mesh, tuple(pout))
    return _output_sharding(op_schema, new_specs, 6, int(groups) // shards, output_spec)


def _conv1d_backward_rule(op_schema):
    # conv1d_backward(grad_output, input, weight, stride, padding, dilation, groups, output_mask)
    go, x, w, _, _, _, groups, mask = _normalized(op_schema, 8)
    mesh = x.mesh
    # The same decision as the forward's: the backward sees the forward's saved input and weight,
    # with their placements as they were given to the forward (before its redistribution).
    modes, shards = conv1d_modes(x.placements, w.placements, None, int(groups), mesh.shape)
    px, pw, _, pout, pgi, pgw, pgb = _placements_for(modes)
    fallback = [d for d, m in enumerate(modes) if m == "replicate"
                and not all(s.placements[d].is_replicate() for s in (go, x, w))]
    if fallback:
        _warn_fallback(str(op_schema.op), (x, w, None), int(groups))
    new_specs = {0: _respec(go, pout), 1: _respec(x, px), 2: _respec(w, pw)}
    from torch.distributed.tensor._dtensor_spec import DTensorSpec

    output_spec = tuple(DTensorSpec(mesh, tuple(p)) if wanted else None for p, wanted in zip((pgi, pgw, pgb), mask))
    return _output_sharding(op_schema, new_specs, 6, int(groups) // shards, output_spec)
