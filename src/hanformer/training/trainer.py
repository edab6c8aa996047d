"""The training loop shared by pretraining and fine-tuning.

`Trainer` runs any `nn.Module` whose forward takes a batch's tensors as keyword arguments and
returns an object with `.loss`. It owns everything around that call: gradient accumulation,
mixed precision, clipping, the optimizer and learning-rate schedule, evaluation, checkpoints
(atomic, keep last K, on SIGINT/SIGTERM), exact resume, DDP or FSDP (sharded checkpoints, see
`sharded_checkpoint.py`), activation checkpointing, the progress bar and metrics.

Batches come from a *batch source*: any object with

    next_batch() -> dict[str, Tensor]      # the next micro-batch of this rank (never runs dry;
                                           # wrap around epochs yourself)
    state_dict() -> dict                   # position after the batches handed out so far
    load_state_dict(state) -> None         # continue exactly from that position

`hanformer.data.loader.ResumableLoader` is one for any list of examples + collate function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.distributed.tensor import DTensor

from hanformer.training import checkpointing as ckpt
from hanformer.training import sharded_checkpoint as sharded
from hanformer.training.batch_source import BatchSource
from hanformer.training.best_model import check_metric_for_best, improves, tracked_value
from hanformer.training.config import TrainerConfig
from hanformer.training.distributed import (
    DistInfo,
    agree_on_stop,
    any_rank,
    barrier,
    broadcast_object,
    env_dist_info,
)
from hanformer.training.fsdp import meta_skeleton
from hanformer.training.loss_guard import NonFiniteLoss
from hanformer.training.mfu import PeakFlops
from hanformer.training.optim import build_optimizer
from hanformer.training.progress import MetricsLog, ProgressBar
from hanformer.training.run_state import (
    Resume,
    prepare_output_dir,
    resume_checkpoint,
)
from hanformer.training.runtime import (
    autocast,
    grad_scaler,
    no_sync,
    prepare_model,
    setup_device,
    slow_bf16_warning,
    wrap_model,
)
from hanformer.training.schedule import Schedule
from hanformer.training.stop_signals import StopSignals
from hanformer.training.throughput import FlopsFn, LogWindow, count_tokens, default_flops
from hanformer.training.trainer_state import CheckpointState


@runtime_checkable
class SavesPretrained(Protocol):
    """A model that writes its own checkpoint folder (every hanformer model does)."""

    def save_pretrained(self, directory: Path) -> None: ...


EvalFn = Callable[[nn.Module], dict[str, float]]
ExportFn = Callable[[nn.Module, Path], None]

@dataclasses.dataclass
class TrainResult:
    step: int
    stopped: str                      # "max_steps" | "max_time" | "early_stopping" | "interrupted"
    elapsed: float                    # seconds of training, summed over resumed runs
    train_loss: float | None          # mean loss of the last logging window
    eval_metrics: dict[str, float]    # the last evaluation
    best_metric: float | None
    checkpoint: Path | None           # the last checkpoint written
    final_dir: Path | None            # exported model (OUTPUT_DIR/final) when the run finished
    output_dir: Path


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (call before building the model for reproducible init)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class Trainer(CheckpointState):
    """Train `model` on batches from `train_batches`; see the module docstring for the protocol.

    eval_fn(model) -> metrics runs every `eval_every` steps and at the end (rank 0 only, in eval
    mode, without gradients, under the run's autocast). export_fn(model, dir) writes the final
    and best models (default: `model.save_pretrained(dir)`); add tokenizer files there too.
    flops_fn(batch) -> FLOPs of one forward+backward, for MFU (default: 6 x params x tokens).
    metric_names: the names eval_fn reports, so a misspelt metric_for_best fails before the first
    step instead of at the first evaluation. run_identity: the caller's settings that a resumed
    run must share with its checkpoint (model, data, vocabulary hash, ...); saved in checkpoints.
    """

    def __init__(self, model: nn.Module, config: TrainerConfig, train_batches: BatchSource,
                 eval_fn: EvalFn | None = None, *, export_fn: ExportFn | None = None,
                 flops_fn: FlopsFn | None = None, dist_info: DistInfo | None = None,
                 metric_names: Collection[str] | None = None,
                 run_identity: dict[str, Any] | None = None) -> None:
        config.validate()
        if eval_fn is not None:  # train() checks again: eval_fn may also be set after construction
            check_metric_for_best(config, True, metric_names)
        self.metric_names = metric_names
        self.config = config
        self.run_identity = dict(run_identity or {})
        self.dist = dist_info or env_dist_info()
        self.device = setup_device(config, self.dist)
        self.output_dir = Path(config.output_dir)
        self.model = model.to(self.device)
        self.train_batches = train_batches
        self.eval_fn = eval_fn
        self.export_fn = export_fn
        self.flops_fn = flops_fn or default_flops(model)
        # An FSDP run exports through a weightless copy of the unsharded model (taken before
        # sharding) that the gathered state dict fills on rank 0.
        self._skeleton = meta_skeleton(self.model) if self.sharded else None
        prepare_model(self.model, config, self.dist)
        self.optimizer = build_optimizer(self.model, config, self.device.type)
        self.schedule = Schedule(self.optimizer, config.schedule, 0, config.min_lr_ratio)
        self.scaler = grad_scaler(config.precision)
        self.step = 0
        self.elapsed = 0.0
        self.tokens_seen = 0
        self.best_metric: float | None = None
        self.evals_without_improvement = 0
        self.last_eval: dict[str, float] = {}
        self.last_checkpoint: Path | None = None
        self._signals = StopSignals()
        # RNG streams of a loaded checkpoint, restored right before the first step so that nothing
        # the setup does (logs, the MFU probe, TensorBoard) can draw from them in between.
        self._rng_to_restore: dict[str, Any] | None = None
        self._output_dir_ready = False
        self.module = wrap_model(self.model, self.device, self.dist, config.compile, config.parallelism)

    # ------------------------------------------------------------------ helpers
    @property
    def sharded(self) -> bool:
        """Checkpoints are sharded (DCP) in an fsdp run, with one process too: they then load
        into any number of processes."""
        return self.config.parallelism == "fsdp"

    @property
    def micro_batches_per_step(self) -> int:
        """Micro-batches (of every process) that make one optimizer step's global batch."""
        return self.config.grad_accum * self.dist.world_size

    @property
    def warmup_by_time(self) -> bool:
        """A wall-clock budget with warmup_ratio: warm up over that fraction of the budget."""
        c = self.config
        return bool(c.max_seconds) and not c.warmup_steps and c.warmup_ratio > 0

    @property
    def warmup_steps(self) -> int:
        c = self.config
        if self.warmup_by_time:
            return 0
        return c.warmup_steps or int(round(c.warmup_ratio * c.max_steps))

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.config.precision, self.device)

    def _progress(self, elapsed: float) -> float:
        """Where the decay phase stands (0..1): by steps, or by time with a wall-clock budget."""
        c = self.config
        if self.warmup_by_time:  # the whole run's progress: the schedule places warmup in it
            assert c.max_seconds  # warmup by time needs a wall-clock budget
            return max(self.step / max(1, c.max_steps), elapsed / c.max_seconds)
        w = self.warmup_steps
        p = (self.step - w) / max(1, c.max_steps - w)
        if c.max_seconds:
            p = max(p, elapsed / c.max_seconds)
        return max(0.0, p)

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        nb = self.device.type == "cuda"
        return {k: v.to(self.device, non_blocking=nb) if torch.is_tensor(v) else v for k, v in batch.items()}

    def prepare_output_dir(self, resume: Resume) -> None:
        """Create OUTPUT_DIR, clear half-written saves, and refuse to mix a new run with an earlier
        one's checkpoints (`run_state.prepare_output_dir`). `train` does this; call it first to
        write files beside."""
        if not self._output_dir_ready:
            prepare_output_dir(self.output_dir, resume, self.config.overwrite, self.dist)
            self._output_dir_ready = True

    def _say(self, text: str) -> None:
        """A message before the progress bar exists (rank 0)."""
        if self.dist.is_main:
            print(text, file=sys.stderr, flush=True)

    def export(self, directory: Path, metrics: dict[str, Any] | None = None) -> Path | None:
        """Write the model (and what export_fn adds) to `directory` atomically on rank 0; None on
        the other ranks. Every rank must call it: an FSDP model is first gathered whole."""
        model = self._whole_model()
        if not self.dist.is_main:
            return None
        assert model is not None  # rank 0 always holds the whole model

        def write(folder: Path) -> None:
            if self.export_fn is not None:
                self.export_fn(model, folder)
            elif isinstance(model, SavesPretrained):
                model.save_pretrained(folder)
            else:
                torch.save(model.state_dict(), folder / "model.pt")
            if metrics is not None:
                (folder / "metrics.json").write_text(json.dumps({"step": self.step, **metrics}, indent=2,
                                                                ensure_ascii=False, default=float) + "\n")

        return ckpt.export_dir(directory, write)

    def _whole_model(self) -> nn.Module | None:
        """The unsharded model: itself, or (FSDP over several processes) a CPU copy filled with
        the gathered weights on rank 0 (None on the others)."""
        if self._skeleton is None or not self.dist.enabled:
            return self.model
        state = sharded.full_model_state(self.model)
        return sharded.materialize(self._skeleton, state) if self.dist.is_main else None

    def evaluate(self) -> dict[str, float]:
        """Run eval_fn on rank 0 and return its metrics ({} on other ranks or without one). A
        sharded model needs every rank for each forward pass: there all ranks run eval_fn alike."""
        metrics: dict[str, float] = {}
        if self.eval_fn is not None and (self.dist.is_main or self.sharded):
            was_training = self.model.training
            self.model.eval()
            # Evaluation must not move the training's random streams (an eval_fn that samples
            # would otherwise make training depend on how often it evaluates).
            rng = ckpt.capture_rng()
            try:
                with torch.no_grad(), self.autocast():
                    metrics = dict(self.eval_fn(self.model))
            finally:
                ckpt.restore_rng(rng)
                self.model.train(was_training)
        barrier(self.dist)
        return metrics

    # ------------------------------------------------------------------ the loop
    def train(self, resume: Resume = None) -> TrainResult:
        c = self.config
        check_metric_for_best(c, self.eval_fn is not None, self.metric_names)
        self.prepare_output_dir(resume)
        path = resume_checkpoint(resume, self.output_dir, self._say)
        if path is not None:
            self.load_checkpoint(path)
        main = self.dist.is_main
        log = MetricsLog(self.output_dir, tensorboard=c.tensorboard, enabled=main)
        # Records past the step this run starts at belong to a run that died after its last
        # checkpoint (or, at step 0, before its first): this run writes them anew.
        log.discard_after(self.step)
        peak = PeakFlops(c.peak_tflops, self.device, torch.bfloat16 if c.precision == "bf16" else torch.float32) \
            if main else None
        bar = ProgressBar(c.max_steps, self.step, c.max_seconds, enabled=main, show_bar=c.progress,
                          initial_elapsed=self.elapsed, mfu_estimated=peak is not None and peak.estimated)
        if path is not None:
            bar.write(f"resumed from {path} at step {self.step}")
        warning = slow_bf16_warning(c.precision, self.device)
        if warning:
            bar.write(warning)
        if peak is not None and peak.estimated:
            bar.write(f"mfu≈: {peak.describe()}")
        self._signals.install()
        self.schedule.warmup_steps = self.warmup_steps
        self.schedule.warmup_fraction = c.warmup_ratio if self.warmup_by_time else 0.0
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.module.train()
        start = time.perf_counter() - self.elapsed
        window = LogWindow(self.device, self.dist, log, bar, peak, start)
        non_finite = NonFiniteLoss(self.device)
        last_eval_step = -1
        stopped = "max_steps"
        train_loss: float | None = None
        if self._rng_to_restore is not None:  # last, so the first step draws what it drew before
            ckpt.restore_rng(self._rng_to_restore)
            self._rng_to_restore = None

        try:
            while True:
                self.elapsed = time.perf_counter() - start
                stop = None
                if self.step >= c.max_steps:
                    stop = "max_steps"
                elif c.max_seconds and self.elapsed >= c.max_seconds:
                    stop = "max_time"
                elif self._signals.received:
                    stop = "interrupted"
                stop, progress = agree_on_stop(stop, self._progress(self.elapsed), self.device, self.dist)
                if stop:
                    stopped = stop
                    break
                lr = self.schedule.set(self.step, progress)
                grad_norm = self._train_step(params, window)
                self.step += 1
                non_finite.note(window.loss, self.step)

                is_last = self.step >= c.max_steps
                if (c.log_every and self.step % c.log_every == 0) or is_last:
                    non_finite.check(self.last_checkpoint)
                    train_loss, self.tokens_seen = window.flush(self.step, lr, grad_norm, self.tokens_seen)
                if c.eval_every and self.step % c.eval_every == 0 and not is_last:
                    non_finite.check(self.last_checkpoint)
                    if self._eval_and_track(log, bar):
                        stopped = "early_stopping"
                        last_eval_step = self.step
                        break
                    last_eval_step = self.step
                if c.save_every and self.step % c.save_every == 0 and not is_last:
                    non_finite.check(self.last_checkpoint)
                    self.elapsed = time.perf_counter() - start
                    self.save_checkpoint()
            non_finite.check(self.last_checkpoint)
            if window.steps:  # stopped by time, signal or early stopping between log records
                train_loss, self.tokens_seen = window.flush(self.step, self.schedule.last_lr, None, self.tokens_seen)
            self.elapsed = time.perf_counter() - start
            final_dir = None
            if stopped != "interrupted":
                if self.eval_fn is not None and last_eval_step != self.step:
                    self._eval_and_track(log, bar)
                self.save_checkpoint()
                final_dir = self.export(self.output_dir / "final", self.last_eval or None)
                barrier(self.dist)
            else:
                self.save_checkpoint()
                bar.write(f"interrupted ({self._signals.received}) at step {self.step}; checkpoint saved to "
                          f"{self.last_checkpoint}; continue with --resume")
        finally:
            self._signals.restore()
            bar.close()
            log.close()
        return TrainResult(step=self.step, stopped=stopped, elapsed=self.elapsed, train_loss=train_loss,
                           eval_metrics=self.last_eval, best_metric=self.best_metric,
                           checkpoint=self.last_checkpoint, final_dir=final_dir, output_dir=self.output_dir)

    def _train_step(self, params: list[nn.Parameter], window: LogWindow) -> Any:
        """One optimizer step over grad_accum micro-batches, counted in `window`; returns the
        gradient norm before clipping (None without clipping)."""
        c = self.config
        step_tokens: Any = 0
        step_flops = 0.0
        for micro in range(c.grad_accum):
            batch = self._to_device(self.train_batches.next_batch())
            step_tokens = step_tokens + count_tokens(batch)
            step_flops += self.flops_fn(batch)
            sync: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            if self.dist.enabled and micro < c.grad_accum - 1:
                sync = no_sync(self.module)
            with sync:
                with self.autocast():
                    out = self.module(**batch)
                loss = out.loss.float() / c.grad_accum
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            window.loss += loss.detach()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grad_norm = None
        if c.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
            if isinstance(grad_norm, DTensor):  # FSDP: the norm of the whole, gathered gradient
                grad_norm = grad_norm.full_tensor()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        window.add_step(step_tokens, step_flops)
        return grad_norm

    def _eval_and_track(self, log: MetricsLog, bar: ProgressBar) -> bool:
        """Evaluate, log, keep the best model; True when early stopping says stop."""
        c = self.config
        metrics = self.evaluate()
        stop = False
        improved = False
        if self.dist.is_main and metrics:
            self.last_eval = metrics
            log.log("eval", self.step, metrics)
            bar.write(f"step {self.step}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()))
            if c.metric_for_best:
                value = tracked_value(metrics, c.metric_for_best)
                improved = improves(value, self.best_metric, c.greater_is_better)
                if improved:
                    self.best_metric = value
                    self.evals_without_improvement = 0
                    if not self.sharded:
                        self.export(self.output_dir / "best", metrics)
                else:
                    self.evals_without_improvement += 1
                    stop = bool(c.early_stopping_patience) and (
                        self.evals_without_improvement >= c.early_stopping_patience)
        if self.sharded and broadcast_object(improved, self.dist):  # gathering the model takes every rank
            self.export(self.output_dir / "best", metrics)
        if self.dist.enabled:
            stop = any_rank(stop, self.device, self.dist)
        return stop


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if math.isfinite(v) and abs(v) < 1e5 else f"{v:.4g}"
    return str(v)
