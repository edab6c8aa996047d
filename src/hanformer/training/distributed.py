"""Distributed data parallel under `torchrun`: process group setup and small collectives.

`torchrun --nproc-per-node N -m hanformer.cli.main pretrain ...` sets RANK / WORLD_SIZE /
LOCAL_RANK; we pick gloo on CPU and NCCL on GPUs. Each rank reads its own slice of every
global batch (the batch sources take `rank` and `world_size`), DDP averages gradients, and only
rank 0 logs, evaluates and writes checkpoints. Without torchrun everything here is a no-op.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import torch
import torch.distributed as dist

from hanformer.errors import ConfigError
from hanformer.training.config import check_device_name


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    """Rank and world size from the environment torchrun sets (single process otherwise)."""
    return DistInfo(rank=int(os.environ.get("RANK", 0)), world_size=int(os.environ.get("WORLD_SIZE", 1)),
                    local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def resolve_device(name: str, info: DistInfo) -> torch.device:
    """The torch device for `--device` (auto: CUDA when available); a ConfigError when it does not
    exist on this machine."""
    check_device_name(name)
    name = name.strip()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device (--device) {name!r}: this machine has no usable CUDA GPU; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device (--device) {name!r}: this machine has {count} CUDA GPU"
                              f"{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device (--device) {name!r}: MPS is not available here; use --device cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_distributed(device: torch.device, info: DistInfo) -> None:
    """Join the process group once (gloo on CPU, NCCL on CUDA)."""
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size,
                            timeout=datetime.timedelta(minutes=30))


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= info.world_size
    return t


def any_rank(flag: bool, device: torch.device, info: DistInfo) -> bool:
    """True if `flag` is true on any rank (stop decisions must be shared)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


_STOP_CODES: dict[str | None, float] = {None: 0.0, "max_steps": 1.0, "max_time": 2.0, "interrupted": 3.0}


def agree_on_stop(stop: str | None, progress: float, device: torch.device,
                  info: DistInfo) -> tuple[str | None, float]:
    """Ranks must agree on stopping and (for time-based decay) on the learning rate: the
    strongest stop reason and the furthest progress of any rank."""
    if not info.enabled:
        return stop, progress
    t = torch.tensor([_STOP_CODES[stop], progress], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    reasons = {v: k for k, v in _STOP_CODES.items()}
    return reasons[float(t[0].item())], float(t[1].item())


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj, info: DistInfo):
    if not info.enabled:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
