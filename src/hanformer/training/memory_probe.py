"""The measured peak of real training steps, to hold `memory.estimate_memory` to.

Allocator counters exist only on GPUs (`torch.cuda.max_memory_allocated`), so on CPUs the steps
run under PyTorch's own tensor-memory trackers, which see every tensor storage created and
freed through the dispatcher (`MemTracker`; `FSDPMemTracker` for a sharded model, which also
attributes FSDP's gathered parameters and communication buffers): the tools PyTorch tests its
FSDP memory accounting with. The steps are the Trainer's own: its model preparation
(activation checkpointing, sharding), optimizer, autocast, clipping, step and zero_grad.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn
from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
from torch.distributed._tools.mem_tracker import MemTracker

from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import BertForMaskedLM
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM
from hanformer.training.config import TrainerConfig
from hanformer.training.distributed import DistInfo
from hanformer.training.optim import build_optimizer
from hanformer.training.runtime import autocast, prepare_model, wrap_model


def example_batch(config: BertConfig | GPTConfig, batch_size: int, seq_len: int, mask_prob: float,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """Full-length sequences; BERT predicts exactly ceil(mask_prob * tokens) positions."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (batch_size, seq_len), generator=g)
    if isinstance(config, GPTConfig):
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    labels = torch.full_like(ids, -100).view(-1)
    chosen = torch.randperm(ids.numel(), generator=g)[:math.ceil(mask_prob * ids.numel())]
    labels[chosen] = ids.view(-1)[chosen]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels.view_as(ids)}


def build(config: BertConfig | GPTConfig) -> nn.Module:
    return GPTForCausalLM(config) if isinstance(config, GPTConfig) else BertForMaskedLM(config)


def measure_peak(config: BertConfig | GPTConfig, trainer: TrainerConfig, *, batch_size: int, seq_len: int,
                 dist: DistInfo | None = None, steps: int = 2, mask_prob: float = 0.15) -> int:
    """Peak bytes of tensor memory over `steps` training steps on this process (the first step
    also creates the optimizer states, so the later ones show the steady state)."""
    dist = dist or DistInfo()
    torch.manual_seed(trainer.seed)
    device = torch.device("cpu")
    model = build(config).to(device)
    prepare_model(model, trainer, dist)
    optimizer = build_optimizer(model, trainer, device.type)
    module = wrap_model(model, device, dist, False, trainer.parallelism)
    batch = example_batch(config, batch_size, seq_len, mask_prob, seed=dist.rank)
    params = [p for p in model.parameters() if p.requires_grad]
    with _tracker(model, optimizer) as (peak, tracker):
        for _ in range(steps):
            tracker.reset_mod_stats()  # per-module statistics hold one iteration; the peak is kept
            with autocast(trainer.precision, device):
                out = module(**batch)
            out.loss.float().backward()
            del out
            if trainer.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, trainer.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return peak[0]


@contextlib.contextmanager
def _tracker(model: nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[tuple[list[int], MemTracker]]:
    """Track the block; the list it yields holds the peak once the block is done."""
    result = [0]
    tracker: MemTracker
    if isinstance(model, torch.distributed.fsdp.FSDPModule):
        tracker = FSDPMemTracker(model, optimizer)
    else:
        tracker = MemTracker()
        tracker.track_external(model, optimizer)
    with tracker:
        yield result, tracker
    snapshot = tracker.get_tracker_snapshot("peak")
    result[0] = int(sum(dev.get("Total", 0) for dev in snapshot.values()))
