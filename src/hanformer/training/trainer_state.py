"""What a `Trainer` checkpoint holds and how a run is put back from one.

A checkpoint is the whole state of a run - weights and optimizer (or, under FSDP, a sharded
copy written with `torch.distributed.checkpoint`), schedule, loss scaler, every RNG, the batch
source's position, counters and the settings that identify the run - so that a resumed run
continues bit for bit. Kept apart from the loop itself (`trainer.py`), which it serves as a base
class: these methods read and set the trainer's fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from hanformer.errors import CheckpointError
from hanformer.training import checkpointing as ckpt
from hanformer.training import sharded_checkpoint as sharded
from hanformer.training.batch_source import BatchSource
from hanformer.training.config import TrainerConfig
from hanformer.training.distributed import DistInfo, barrier
from hanformer.training.run_state import check_same_run, run_identity
from hanformer.training.schedule import Schedule
from hanformer.utils.config import config_to_dict


class CheckpointState:
    """Saving and restoring the state of a `Trainer` run (the trainer's own fields)."""

    # Set by Trainer.__init__ and its loop.
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler | None
    train_batches: BatchSource
    config: TrainerConfig
    dist: DistInfo
    output_dir: Path
    run_identity: dict[str, Any]
    step: int
    elapsed: float
    tokens_seen: int
    best_metric: float | None
    evals_without_improvement: int
    last_eval: dict[str, float]
    last_checkpoint: Path | None
    _rng_to_restore: Any

    @property
    def sharded(self) -> bool:
        raise NotImplementedError

    @property
    def micro_batches_per_step(self) -> int:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        weights: dict[str, Any] = {"sharded": True} if self.sharded else {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict()}
        return {
            "format_version": ckpt.FORMAT_VERSION,
            **weights,
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": ckpt.capture_rng(),
            "data": self.train_batches.state_dict(),
            "identity": self.identity(),
            "trainer": {"step": self.step, "elapsed": self.elapsed, "tokens_seen": int(self.tokens_seen),
                        "best_metric": self.best_metric,
                        "evals_without_improvement": self.evals_without_improvement,
                        "world_size": self.dist.world_size,
                        "micro_batches_per_step": self.micro_batches_per_step},
            "config": config_to_dict(self.config),
        }

    def identity(self) -> dict[str, Any]:
        """The settings a checkpoint of this run records and a resumed run must match. How the
        work is spread (activation checkpointing, resharding) does not change the run, and an fsdp
        run may resume on another number of processes: there the global batch (micro-batches per
        step) must match, not grad_accum."""
        identity = run_identity(self.config, self.run_identity)
        trainer = identity["trainer"]
        for key in ("activation_checkpointing", "reshard_after_forward"):
            trainer.pop(key, None)
        if trainer.get("parallelism") == "ddp":  # checkpoints from before the setting stay resumable
            trainer.pop("parallelism")
        elif self.sharded:
            trainer.pop("grad_accum", None)
            trainer["micro_batches_per_step"] = self.micro_batches_per_step
        return identity

    def save_checkpoint(self) -> Path | None:
        """Write a resumable checkpoint now (rank 0); all ranks wait for it."""
        path = None
        state = self._state()  # every rank captures so RNG/data calls stay in step
        if self.sharded:
            path = sharded.save_sharded(self.output_dir, self.step, state, self.model, self.optimizer,
                                        self.config.keep_last, {"elapsed": self.elapsed, "eval": self.last_eval},
                                        self.dist)
            if path is not None:
                self.last_checkpoint = path
        elif self.dist.is_main:
            path = ckpt.save_checkpoint(self.output_dir, self.step, state, self.config.keep_last,
                                        summary={"elapsed": self.elapsed, "eval": self.last_eval})
            self.last_checkpoint = path
        barrier(self.dist)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        state = ckpt.load_checkpoint(path)
        if self.sharded:
            if state.get("sharded"):
                sharded.check_global_batch(state, self.dist.world_size, self.micro_batches_per_step, str(path))
            check_same_run(state.get("identity"), self.identity(), path)
            sharded.load_sharded(Path(path), self.model, self.optimizer)
        else:
            if state.get("sharded"):
                raise CheckpointError(f"{path}: a sharded checkpoint (written with --parallelism fsdp); "
                                      "resume it with --parallelism fsdp")
            ckpt.check_model_compatible(state["model"], self.model, str(path))
            check_same_run(state.get("identity"), self.identity(), path)
            self.model.load_state_dict(state["model"])
            try:
                self.optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as e:
                raise ckpt.CheckpointError(f"{path}: optimizer state does not fit ({e}); was the "
                                           f"optimizer changed? resume with the same settings") from None
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.train_batches.load_state_dict(state["data"])
        t = state["trainer"]
        self.step, self.elapsed, self.tokens_seen = int(t["step"]), float(t["elapsed"]), int(t["tokens_seen"])
        self.best_metric = t.get("best_metric")
        self.evals_without_improvement = int(t.get("evals_without_improvement", 0))
        self._rng_to_restore = state["rng"]
        self.last_checkpoint = Path(path)
