"""Sharded checkpoints of FSDP runs, written and read with `torch.distributed.checkpoint` (DCP).

Layout of one checkpoint:

    OUTPUT_DIR/checkpoints/step-00000100/
        state.pt              # schedule, RNG, data position, run settings (rank 0; no weights)
        trainer_state.json
        sharded/.metadata     # DCP's index: every tensor's name, full shape and where its pieces are
        sharded/__0_0.distcp  # what process 0 held of the model and the optimizer
        sharded/__1_0.distcp  # ... process 1, and so on

Names and shapes in the index are those of the unsharded model, so a checkpoint written by N
processes loads into M processes (DCP reads the pieces each new shard needs) or into a plain,
unsharded model on one process. All processes take part in saving and loading.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.metadata import TensorStorageMetadata
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from hanformer.errors import CheckpointError
from hanformer.training import checkpointing as ckpt
from hanformer.training.distributed import DistInfo, barrier, broadcast_object

SHARDED_DIR = "sharded"


def save_sharded(output_dir: Path, step: int, state: dict[str, Any], model: nn.Module,
                 optimizer: torch.optim.Optimizer, keep_last: int, summary: dict[str, Any],
                 dist: DistInfo) -> Path | None:
    """Every process writes its shards into one hidden folder, then rank 0 adds `state` and
    renames the folder into place (as `checkpointing.save_checkpoint` does: all or nothing).
    Returns the checkpoint on rank 0, None elsewhere."""
    tmp = broadcast_object(str(ckpt.new_checkpoint_dir(output_dir, step)) if dist.is_main else None, dist)
    model_state, optim_state = get_state_dict(model, optimizer)
    with _single_process() as alone:
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=Path(tmp) / SHARDED_DIR,
                 no_dist=alone)
    barrier(dist)
    path = ckpt.finish_checkpoint(Path(tmp), output_dir, step, state, keep_last, summary) if dist.is_main else None
    barrier(dist)
    return path


def load_sharded(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load the model and optimizer of checkpoint `path` into this run's (sharded or not) model."""
    folder = path / SHARDED_DIR
    check_sharded_compatible(folder, model, str(path))
    model_state, optim_state = get_state_dict(model, optimizer)
    try:
        with _single_process() as alone:  # DCP fills the given state dicts in place
            dcp.load({"model": model_state, "optimizer": optim_state}, checkpoint_id=folder, no_dist=alone)
    except Exception as e:  # DCP reports a mismatch as a long multi-process traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: the optimizer state does not fit this run ({first[:200]}); resume "
                              "with the same optimizer settings") from None
    set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state)


@contextlib.contextmanager
def _single_process() -> Iterator[bool]:
    """Whether there is no process group, so one process reads or writes the whole checkpoint;
    DCP warns about that case even when told, and here it is the intent (an fsdp run on one
    process)."""
    alone = not torch_dist.is_initialized()
    with warnings.catch_warnings():
        if alone:
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield alone


def check_global_batch(state: dict[str, Any], world_size: int, micro_batches_per_step: int,
                       source: str) -> None:
    """On another number of processes the global batch stays only if grad_accum changes with it:
    a one-line error saying which grad_accum keeps it, or that no whole number can."""
    t = state.get("trainer", {})
    saved = int(t.get("micro_batches_per_step", 0))
    if not saved or saved == micro_batches_per_step:
        return
    was_world = int(t.get("world_size", 1))
    if saved % world_size:
        raise CheckpointError(f"{source}: its global batch is {saved} micro-batches per step ({was_world} "
                              f"processes x grad_accum {saved // was_world}), which {world_size} processes "
                              f"cannot split evenly; resume on a number of processes that divides {saved}")
    raise CheckpointError(f"{source}: its global batch is {saved} micro-batches per step ({was_world} processes "
                          f"x grad_accum {saved // was_world}); on {world_size} processes pass --grad-accum "
                          f"{saved // world_size} to keep it")


def saved_shapes(folder: Path, source: str) -> dict[str, tuple[int, ...]]:
    """Full shapes of the model's tensors in a sharded checkpoint, read from its index alone."""
    if not (folder / ".metadata").is_file():
        raise CheckpointError(f"{source}: not a sharded checkpoint (no {SHARDED_DIR}/.metadata); it was "
                              "written by a run with --parallelism ddp, so resume it with that")
    try:
        metadata = dcp.FileSystemReader(str(folder)).read_metadata()
    except Exception as e:
        raise CheckpointError(f"{source}: cannot read the sharded checkpoint's index ({type(e).__name__}: {e})") \
            from None
    return {key.removeprefix("model."): tuple(meta.size)
            for key, meta in metadata.state_dict_metadata.items()
            if key.startswith("model.") and isinstance(meta, TensorStorageMetadata)}


def check_sharded_compatible(folder: Path, model: nn.Module, source: str) -> None:
    """A one-line error naming the checkpoint when it holds another model."""
    own = {k: tuple(v.shape) for k, v in get_model_state_dict(model).items() if isinstance(v, torch.Tensor)}
    ckpt.check_shapes_compatible(saved_shapes(folder, source), own, source)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole, unsharded state dict gathered on rank 0's CPU (empty on the other ranks); every
    process must call it."""
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def materialize(skeleton: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A plain CPU model built from a meta-device `skeleton` (`fsdp.meta_skeleton`) and a full state."""
    model = copy.deepcopy(skeleton).to_empty(device="cpu")  # the skeleton stays weightless for the next export
    model.load_state_dict(state)
    return model
