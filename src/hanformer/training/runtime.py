"""Where and how a run computes: device, CPU threads, precision (autocast, loss scaling) and
the wrapping of the model for DDP and `torch.compile`."""

from __future__ import annotations

import contextlib
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hanformer.errors import ConfigError
from hanformer.training.config import TrainerConfig
from hanformer.training.distributed import DistInfo, init_distributed, resolve_device
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


def wrap_model(model: nn.Module, device: torch.device, dist: DistInfo, compile: bool) -> nn.Module:
    """The module the steps call: `model` under DDP with several ranks, compiled on request."""
    module: nn.Module = model
    if dist.enabled:
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        module = torch.compile(module)  # type: ignore[assignment]
    return module


def no_sync(module: nn.Module) -> contextlib.AbstractContextManager:
    """Skip DDP's gradient all-reduce (for all but the last micro-batch of a step)."""
    m = getattr(module, "_orig_mod", module)  # torch.compile wrapper
    return m.no_sync() if isinstance(m, HasNoSync) else contextlib.nullcontext()
