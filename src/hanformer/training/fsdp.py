"""Sharding a model with FSDP2 and recomputing its blocks' activations.

FSDP2 (`torch.distributed.fsdp.fully_shard`) keeps 1/N of every parameter, its gradient and its
optimizer state on each of N processes, gathering a unit's parameters just before they are
needed. A unit per Transformer block lets one block's parameters be gathered while another
computes; the root unit takes what is left (embeddings, heads, final norm), which is also where
tied weights live, so a tie never spans two units.

Activation checkpointing wraps each block so that its forward keeps only its input; backward
runs the block again to rebuild what it needs. The wrapper goes inside the FSDP unit, so the
recomputation finds the block's parameters already gathered for backward.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    CheckpointImpl,
    checkpoint_wrapper,
)
from torch.distributed.fsdp import (
    CPUOffloadPolicy,
    FSDPModule,
    MixedPrecisionPolicy,
    OffloadPolicy,
    fully_shard,
)

from hanformer.errors import ConfigError
from hanformer.models.common.layers import TransformerBlock


def block_sites(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(parent, attribute) of every outermost TransformerBlock, in model order."""
    sites: list[tuple[nn.Module, str]] = []

    def visit(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, TransformerBlock) or _wrapped(child) is not None:
                sites.append((module, name))
            else:
                visit(child)

    visit(model)
    return sites


def _wrapped(module: nn.Module) -> TransformerBlock | None:
    """The block inside an activation-checkpoint wrapper (None for anything else)."""
    inner = getattr(module, "_checkpoint_wrapped_module", None)
    return inner if isinstance(inner, TransformerBlock) else None


def checkpoint_blocks(model: nn.Module) -> int:
    """Wrap every Transformer block for activation checkpointing (non-reentrant: keyword
    arguments and the blocks' random dropout masks are replayed exactly); returns how many."""
    sites = block_sites(model)
    if not sites:
        raise ConfigError(f"activation_checkpointing (--activation-checkpointing): {type(model).__name__} has "
                          "no Transformer blocks to checkpoint; turn it off for this model")
    for parent, name in sites:
        block = getattr(parent, name)
        if _wrapped(block) is None:
            setattr(parent, name, checkpoint_wrapper(block, checkpoint_impl=CheckpointImpl.NO_REENTRANT))
    return len(sites)


def check_shardable(model: nn.Module, world_size: int) -> None:
    """FSDP splits each parameter along its first dimension; a process that would hold no row
    of any parameter is a wasted process (and usually a mistyped --nproc-per-node)."""
    rows = max((p.shape[0] for p in model.parameters() if p.dim() > 0), default=0)
    if world_size > rows:
        raise ConfigError(f"parallelism 'fsdp': {world_size} processes but {type(model).__name__}'s largest "
                          f"parameter has only {rows} rows to shard; use at most {rows} processes")


def shard_model(model: nn.Module, world_size: int, *, bf16: bool, reshard_after_forward: bool,
                cpu_offload: bool = False) -> nn.Module:
    """Apply FSDP2 in place: one unit per Transformer block, then the root. With bf16 the
    gathered parameters are bfloat16 for compute while the sharded masters, the optimizer and
    the gradient reduction stay float32. With `cpu_offload` the shards (and so the optimizer
    step) live in CPU memory and each unit is copied to the device only while it computes."""
    check_shardable(model, world_size)
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 \
        else MixedPrecisionPolicy()
    offload = CPUOffloadPolicy() if cpu_offload else OffloadPolicy()
    for parent, name in block_sites(model):
        fully_shard(getattr(parent, name), mp_policy=policy, reshard_after_forward=reshard_after_forward,
                    offload_policy=offload)
    # The root's parameters are needed again right at the start of backward: keep them gathered.
    fully_shard(model, mp_policy=policy, reshard_after_forward=False, offload_policy=offload)
    return model


def is_sharded(model: nn.Module) -> bool:
    return isinstance(model, FSDPModule)


def set_gradient_sync(model: nn.Module, sync: bool) -> None:
    """FSDP's no_sync: skip the gradient reduce-scatter on all but the last micro-batch of a step
    (gradients then accumulate unsharded until it)."""
    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(sync)


def meta_skeleton(model: nn.Module) -> nn.Module:
    """A copy of `model` whose parameters and buffers live on the meta device: costs no memory,
    keeps ties (one tensor shared by two modules stays shared), and becomes a plain model to
    export a gathered state dict into (`to_empty` + `load_state_dict`). Take it before sharding."""
    memo: dict[int, object] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo)
