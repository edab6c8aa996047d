"""Where and how a run computes: device, CPU threads, precision (autocast, loss scaling) and
the wrapping of the model for DDP or FSDP, activation checkpointing and `torch.compile`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hanformer.errors import ConfigError
from hanformer.training.config import TrainerConfig
from hanformer.training.distributed import DistInfo, init_distributed, resolve_device
from hanformer.training.fsdp import checkpoint_blocks, set_gradient_sync, shard_model
from hanformer.utils.machine import cpu_has_fast_bf16


@runtime_checkable
class HasNoSync(Protocol):
    """DistributedDataParallel: skips the gradient all-reduce inside the context."""

    def no_sync(self) -> contextlib.AbstractContextManager[Any]: ...


def setup_device(config: TrainerConfig, dist: DistInfo) -> torch.device:
    """The run's device (checked against its precision), with torch's threads and the process
    group set up."""
    device = resolve_device(config.device, dist)
    if config.precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision 'fp16' needs a CUDA device (loss scaling); use 'bf16' on CPU")
    if config.threads:
        torch.set_num_threads(config.threads)
    init_distributed(device, dist)
    return device


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str) -> torch.amp.GradScaler | None:
    """fp16 needs loss scaling; bf16 and fp32 have float32's range."""
    return torch.amp.GradScaler("cuda") if precision == "fp16" else None


def slow_bf16_warning(precision: str, device: torch.device) -> str | None:
    if precision == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        return ("warning: this CPU has no AVX-512 BF16/AMX units, so bfloat16 matmuls are emulated "
                "and much slower than float32; use --precision fp32 here")
    return None


def prepare_model(model: nn.Module, config: TrainerConfig, dist: DistInfo) -> nn.Module:
    """Changes made to the model itself before its optimizer is built: activation checkpointing,
    then FSDP sharding (in place: the optimizer must see the sharded parameters). With a single
    process there is nothing to shard and an fsdp run trains the plain model."""
    if config.cpu_offload and next(model.parameters()).device.type == "cpu":
        raise ConfigError("cpu_offload (--cpu-offload) keeps FSDP's shards in CPU memory while a GPU computes; "
                          "this run computes on the CPU, where the shards are already: drop --cpu-offload")
    if config.activation_checkpointing:
        checkpoint_blocks(model)
    if config.parallelism == "fsdp" and dist.enabled:
        shard_model(model, dist.world_size, bf16=config.precision == "bf16",
                    reshard_after_forward=config.reshard_after_forward, cpu_offload=config.cpu_offload)
    return model


def wrap_model(model: nn.Module, device: torch.device, dist: DistInfo, compile: bool,
               parallelism: str = "ddp") -> nn.Module:
    """The module the steps call: `model` under DDP with several ranks (an FSDP model is its own
    wrapper), compiled on request."""
    module: nn.Module = model
    if dist.enabled and parallelism == "ddp":
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        module = torch.compile(module)  # type: ignore[assignment]
    return module


def no_sync(module: nn.Module) -> contextlib.AbstractContextManager:
    """Skip the gradient all-reduce (DDP) or reduce-scatter (FSDP) for all but the last
    micro-batch of a step."""
    m = getattr(module, "_orig_mod", module)  # torch.compile wrapper
    if isinstance(m, HasNoSync):
        return m.no_sync()
    return _fsdp_no_sync(m)


@contextlib.contextmanager
def _fsdp_no_sync(module: nn.Module) -> Iterator[None]:
    set_gradient_sync(module, False)
    try:
        yield
    finally:
        set_gradient_sync(module, True)
