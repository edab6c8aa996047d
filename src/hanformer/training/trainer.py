"""The training loop shared by pretraining and fine-tuning.

`Trainer` runs any `nn.Module` whose forward takes a batch's tensors as keyword arguments and
returns an object with `.loss`. It owns everything around that call: gradient accumulation,
mixed precision, clipping, the optimizer and learning-rate schedule, evaluation, checkpoints
(atomic, keep last K, on SIGINT/SIGTERM), exact resume, DDP, the progress bar and metrics.

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
import difflib
import math
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from hanformer.errors import CheckpointError, ConfigError, HanformerError
from hanformer.training import checkpointing as ckpt
from hanformer.training.config import TrainerConfig, make_output_dir
from hanformer.training.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    env_dist_info,
    init_distributed,
    resolve_device,
)
from hanformer.training.mfu import PeakFlops
from hanformer.training.optim import build_optimizer
from hanformer.training.progress import MetricsLog, ProgressBar
from hanformer.training.schedule import Schedule
from hanformer.utils.config import config_to_dict
from hanformer.utils.machine import cpu_has_fast_bf16


class TrainingError(HanformerError):
    """Training cannot go on (e.g. the loss became NaN/inf)."""


class BatchSource(Protocol):
    def next_batch(self) -> dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class SavesPretrained(Protocol):
    """A model that writes its own checkpoint folder (every hanformer model does)."""

    def save_pretrained(self, directory: Path) -> None: ...


@runtime_checkable
class HasNoSync(Protocol):
    """DistributedDataParallel: skips the gradient all-reduce inside the context."""

    def no_sync(self) -> contextlib.AbstractContextManager[Any]: ...


EvalFn = Callable[[nn.Module], dict[str, float]]
ExportFn = Callable[[nn.Module, Path], None]
FlopsFn = Callable[[dict[str, torch.Tensor]], float]

# Trainer settings that may change when a run is resumed: how long it runs, how it reports, where
# it runs. Every other setting must match the checkpoint's, or the resumed run is another run.
MAY_CHANGE_ON_RESUME = frozenset({
    "output_dir", "max_steps", "max_time", "log_every", "eval_every", "save_every", "keep_last",
    "early_stopping_patience", "device", "threads", "compile", "peak_tflops", "progress", "tensorboard",
    "overwrite"})


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
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def default_flops(model: nn.Module) -> FlopsFn:
    """6 x non-embedding parameters x tokens: forward + backward of every matmul per token."""
    n = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)

    def flops(batch: dict[str, torch.Tensor]) -> float:
        return 6.0 * n * _count_tokens(batch)

    return flops


def _count_tokens(batch: dict[str, torch.Tensor]) -> Any:
    mask = batch.get("attention_mask")
    if mask is not None:
        return mask.sum()
    ids = batch.get("input_ids")
    return ids.numel() if ids is not None else 0


def check_metric_for_best(config: TrainerConfig, has_eval: bool, metric_names: Collection[str] | None) -> None:
    """metric_for_best names a metric the evaluation reports (checked before training starts, so a
    typo does not surface only at the first evaluation, after the training time is spent)."""
    name = config.metric_for_best
    if not name:
        return
    if not has_eval:
        raise ConfigError(f"metric_for_best (--metric-for-best) {name!r}: this run has no evaluation to "
                          "take it from; leave it out")
    if metric_names is not None and name not in metric_names:
        close = difflib.get_close_matches(name, list(metric_names), n=1)
        raise ConfigError(f"metric_for_best (--metric-for-best) {name!r} is not among the evaluation metrics"
                          + (f" (did you mean {close[0]!r}?)" if close else "")
                          + f"; choose one of: {', '.join(metric_names)}")


class Trainer:
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
        self.device = resolve_device(config.device, self.dist)
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("precision 'fp16' needs a CUDA device (loss scaling); use 'bf16' on CPU")
        if config.threads:
            torch.set_num_threads(config.threads)
        init_distributed(self.device, self.dist)
        self.output_dir = Path(config.output_dir)
        self.model = model.to(self.device)
        self.train_batches = train_batches
        self.eval_fn = eval_fn
        self.export_fn = export_fn
        self.flops_fn = flops_fn or default_flops(model)
        self.optimizer = build_optimizer(self.model, config, self.device.type)
        self.schedule = Schedule(self.optimizer, config.schedule, 0, config.min_lr_ratio)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.step = 0
        self.elapsed = 0.0
        self.tokens_seen = 0
        self.best_metric: float | None = None
        self.evals_without_improvement = 0
        self.last_eval: dict[str, float] = {}
        self.last_checkpoint: Path | None = None
        self._stop_signal: str | None = None
        # RNG streams of a loaded checkpoint, restored right before the first step so that nothing
        # the setup does (logs, the MFU probe, TensorBoard) can draw from them in between.
        self._rng_to_restore: dict[str, Any] | None = None
        self._output_dir_ready = False
        module: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            module = DDP(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if config.compile:
            module = torch.compile(module)  # type: ignore[assignment]
        self.module = module

    # ------------------------------------------------------------------ helpers
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
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

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

    def _state(self) -> dict[str, Any]:
        return {
            "format_version": ckpt.FORMAT_VERSION,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": ckpt.capture_rng(),
            "data": self.train_batches.state_dict(),
            "identity": self.identity(),
            "trainer": {"step": self.step, "elapsed": self.elapsed, "tokens_seen": int(self.tokens_seen),
                        "best_metric": self.best_metric,
                        "evals_without_improvement": self.evals_without_improvement,
                        "world_size": self.dist.world_size},
            "config": config_to_dict(self.config),
        }

    def identity(self) -> dict[str, Any]:
        """The settings a checkpoint of this run records and a resumed run must match."""
        trainer = {k: v for k, v in config_to_dict(self.config).items() if k not in MAY_CHANGE_ON_RESUME}
        return {"trainer": trainer, **self.run_identity}

    def save_checkpoint(self) -> Path | None:
        """Write a resumable checkpoint now (rank 0); all ranks wait for it."""
        path = None
        state = self._state()  # every rank captures so RNG/data calls stay in step
        if self.dist.is_main:
            path = ckpt.save_checkpoint(self.output_dir, self.step, state, self.config.keep_last,
                                        summary={"elapsed": self.elapsed, "eval": self.last_eval})
            self.last_checkpoint = path
        barrier(self.dist)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        state = ckpt.load_checkpoint(path)
        ckpt.check_model_compatible(state["model"], self.model, str(path))
        self._check_identity(state.get("identity"), path)
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

    def _check_identity(self, saved: dict[str, Any] | None, path: str | Path) -> None:
        """Refuse a checkpoint of another run (other vocabulary, data, model or optimisation
        settings): resuming it would silently continue something else."""
        if saved is None:  # written before checkpoints recorded their settings
            return
        current = self.identity()
        if "vocab_hash" in saved and "vocab_hash" in current and saved["vocab_hash"] != current["vocab_hash"]:
            raise CheckpointError(
                f"{path}: checkpoint was trained with another vocabulary (vocab_hash "
                f"{str(saved['vocab_hash'])[:12]}) than this run's ({str(current['vocab_hash'])[:12]}); "
                f"resume with the same tokenizer and data, or choose a new output dir")
        differ = ckpt.settings_mismatch(saved, current)
        if differ:
            shown = ", ".join(differ[:4]) + (f" and {len(differ) - 4} more" if len(differ) > 4 else "")
            raise CheckpointError(
                f"{path}: checkpoint belongs to a run with other settings ({shown} differ); resume "
                f"with the same settings, or start a new run in another output dir (or --overwrite)")

    def _resolve_resume(self, resume: str | Path | bool | None) -> Path | None:
        """The checkpoint to resume from: the latest in OUTPUT_DIR (True/"auto"), the latest in a
        given folder, or a given checkpoint; None (said out loud) when there is nothing to resume."""
        if resume in (None, False, ""):
            return None
        if resume is True or resume == "auto":
            latest = ckpt.latest_checkpoint(self.output_dir)
            if latest is None:
                self._say(f"resume: no checkpoint in {ckpt.checkpoint_root(self.output_dir)}; starting from step 0")
            return latest
        p = Path(resume)  # type: ignore[arg-type]
        if p.is_dir() and not (p / "state.pt").is_file():
            latest = ckpt.latest_checkpoint(p)
            if latest is not None:
                return latest
        return p  # load_checkpoint says clearly what is missing

    def prepare_output_dir(self, resume: str | Path | bool | None) -> None:
        """Create OUTPUT_DIR, clear half-written saves, and keep a new run from mixing with the
        checkpoints of an earlier one (whose newest would be resumed, and which keep_last would
        weigh against this run's). `train` does this; call it first to write files beside."""
        if self._output_dir_ready:
            return
        resuming = resume not in (None, False, "")
        if resuming and self.config.overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: --resume continues the run "
                              "in the output dir, --overwrite deletes it; pass one of them")
        if self.dist.is_main:
            make_output_dir(self.output_dir, "output_dir")
            ckpt.remove_partial(self.output_dir)
            if not resuming and self.config.overwrite:
                ckpt.remove_run_outputs(self.output_dir)
        barrier(self.dist)
        latest = ckpt.latest_checkpoint(self.output_dir)
        if not resuming and latest is not None:
            raise ConfigError(
                f"output dir {self.output_dir} already holds checkpoints of an earlier run (latest "
                f"{latest.name}); pass --resume to continue it, choose a new output dir, or pass "
                f"--overwrite to replace it")
        self._output_dir_ready = True

    def _say(self, text: str) -> None:
        """A message before the progress bar exists (rank 0)."""
        if self.dist.is_main:
            print(text, file=sys.stderr, flush=True)

    def export(self, directory: Path, metrics: dict[str, Any] | None = None) -> Path:
        """Write the model (and what export_fn adds) to `directory` atomically (rank 0)."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            if self.export_fn is not None:
                self.export_fn(self.model, tmp)
            elif isinstance(self.model, SavesPretrained):
                self.model.save_pretrained(tmp)
            else:
                torch.save(self.model.state_dict(), tmp / "model.pt")
            if metrics is not None:
                import json

                (tmp / "metrics.json").write_text(json.dumps({"step": self.step, **metrics}, indent=2,
                                                             ensure_ascii=False, default=float) + "\n")
            if directory.exists():
                shutil.rmtree(directory)
            tmp.rename(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    def evaluate(self) -> dict[str, float]:
        """Run eval_fn on rank 0 and return its metrics ({} on other ranks or without one)."""
        metrics: dict[str, float] = {}
        if self.eval_fn is not None and self.dist.is_main:
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

    # ------------------------------------------------------------------ signals
    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old: dict[int, Any] = {}

        def handler(signum, frame):
            self._stop_signal = signal.Signals(signum).name
            # A second Ctrl-C interrupts at once (the checkpoint on disk stays intact).
            signal.signal(signum, old.get(signum, signal.SIG_DFL))

        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
        return old

    @staticmethod
    def _restore_signals(old: dict[int, Any]) -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    # ------------------------------------------------------------------ the loop
    def train(self, resume: str | Path | bool | None = None) -> TrainResult:
        c = self.config
        check_metric_for_best(c, self.eval_fn is not None, self.metric_names)
        self.prepare_output_dir(resume)
        path = self._resolve_resume(resume)
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
        if c.precision == "bf16" and self.device.type == "cpu" and not cpu_has_fast_bf16():
            bar.write("warning: this CPU has no AVX-512 BF16/AMX units, so bfloat16 matmuls are emulated "
                      "and much slower than float32; use --precision fp32 here")
        if peak is not None and peak.estimated:
            bar.write(f"mfu≈: {peak.describe()}")
        old_signals = self._install_signals()
        self.schedule.warmup_steps = self.warmup_steps
        self.schedule.warmup_fraction = c.warmup_ratio if self.warmup_by_time else 0.0
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.module.train()
        start = time.perf_counter() - self.elapsed
        window_start, window_tokens, window_flops = time.perf_counter(), 0.0, 0.0
        window_loss = torch.zeros((), device=self.device)
        window_steps = 0
        bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        last_eval_step = -1
        stopped = "max_steps"
        train_loss: float | None = None
        if self._rng_to_restore is not None:  # last, so the first step draws what it drew before
            ckpt.restore_rng(self._rng_to_restore)
            self._rng_to_restore = None

        def flush(lr: float, grad_norm: Any) -> float:
            """Log the steps since the last record (mean loss, throughput, MFU); all ranks call it."""
            nonlocal window_start, window_tokens, window_flops, window_steps, window_loss
            now = time.perf_counter()
            dt = max(now - window_start, 1e-9)
            loss = float(all_reduce_mean(window_loss / window_steps, self.dist).item())
            self.tokens_seen += int(window_tokens * self.dist.world_size)
            metrics = {"loss": loss, "lr": lr, "tokens_per_s": window_tokens * self.dist.world_size / dt,
                       "tokens_seen": self.tokens_seen, "elapsed": round(now - start, 3)}
            if grad_norm is not None:
                metrics["grad_norm"] = float(grad_norm)
            if peak is not None:
                metrics["mfu"] = peak.mfu(float(window_flops) / dt)
                metrics["mfu_estimated"] = peak.estimated
            log.log("train", self.step, metrics)
            bar.update(self.step, metrics, now - start)
            if peak is not None and peak.probe_if_due():
                now = time.perf_counter()  # the probe's time is not the next window's training time
            window_start, window_tokens, window_flops, window_steps = now, 0.0, 0.0, 0
            window_loss = torch.zeros((), device=self.device)
            return loss
        try:
            while True:
                self.elapsed = time.perf_counter() - start
                stop = None
                if self.step >= c.max_steps:
                    stop = "max_steps"
                elif c.max_seconds and self.elapsed >= c.max_seconds:
                    stop = "max_time"
                elif self._stop_signal:
                    stop = "interrupted"
                # Ranks must agree on stopping and (for time-based decay) on the learning rate.
                progress = self._progress(self.elapsed)
                if self.dist.enabled:
                    import torch.distributed as dist

                    codes = {None: 0.0, "max_steps": 1.0, "max_time": 2.0, "interrupted": 3.0}
                    t = torch.tensor([codes[stop], progress], device=self.device)
                    dist.all_reduce(t, op=dist.ReduceOp.MAX)
                    stop = {v: k for k, v in codes.items()}[float(t[0].item())]
                    progress = float(t[1].item())
                if stop:
                    stopped = stop
                    break
                lr = self.schedule.set(self.step, progress)
                step_tokens: Any = 0
                step_flops = 0.0
                for micro in range(c.grad_accum):
                    batch = self._to_device(self.train_batches.next_batch())
                    step_tokens = step_tokens + _count_tokens(batch)
                    step_flops += self.flops_fn(batch)
                    sync: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
                    if self.dist.enabled and micro < c.grad_accum - 1:
                        sync = self._no_sync()
                    with sync:
                        with self.autocast():
                            out = self.module(**batch)
                        loss = out.loss.float() / c.grad_accum
                        if self.scaler is not None:
                            self.scaler.scale(loss).backward()
                        else:
                            loss.backward()
                    window_loss += loss.detach()
                if self.scaler is not None:
                    self.scaler.unscale_(self.optimizer)
                grad_norm = None
                if c.grad_clip > 0:
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
                if self.scaler is not None:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                window_steps += 1
                window_tokens += float(step_tokens)
                window_flops += step_flops
                # Remember the first non-finite step without a device sync on every step.
                bad = ~torch.isfinite(window_loss)
                bad_step = torch.where(bad & (bad_step < 0), torch.full_like(bad_step, self.step), bad_step)

                is_last = self.step >= c.max_steps
                if (c.log_every and self.step % c.log_every == 0) or is_last:
                    self._check_finite(bad_step)
                    train_loss = flush(lr, grad_norm)
                if c.eval_every and self.step % c.eval_every == 0 and not is_last:
                    self._check_finite(bad_step)
                    if self._eval_and_track(log, bar):
                        stopped = "early_stopping"
                        last_eval_step = self.step
                        break
                    last_eval_step = self.step
                if c.save_every and self.step % c.save_every == 0 and not is_last:
                    self._check_finite(bad_step)
                    self.elapsed = time.perf_counter() - start
                    self.save_checkpoint()
            self._check_finite(bad_step)
            if window_steps:  # stopped by time, signal or early stopping between log records
                train_loss = flush(self.schedule.last_lr, None)
            self.elapsed = time.perf_counter() - start
            final_dir = None
            if stopped != "interrupted":
                if self.eval_fn is not None and last_eval_step != self.step:
                    self._eval_and_track(log, bar)
                self.save_checkpoint()
                if main:
                    final_dir = self.export(self.output_dir / "final", self.last_eval or None)
                barrier(self.dist)
            else:
                self.save_checkpoint()
                bar.write(f"interrupted ({self._stop_signal}) at step {self.step}; checkpoint saved to "
                          f"{self.last_checkpoint}; continue with --resume")
        finally:
            self._restore_signals(old_signals)
            bar.close()
            log.close()
        return TrainResult(step=self.step, stopped=stopped, elapsed=self.elapsed, train_loss=train_loss,
                           eval_metrics=self.last_eval, best_metric=self.best_metric,
                           checkpoint=self.last_checkpoint, final_dir=final_dir, output_dir=self.output_dir)

    def _no_sync(self) -> contextlib.AbstractContextManager:
        m = self.module
        m = getattr(m, "_orig_mod", m)  # torch.compile wrapper
        return m.no_sync() if isinstance(m, HasNoSync) else contextlib.nullcontext()

    def _check_finite(self, bad_step: torch.Tensor) -> None:
        first_bad = int(bad_step.item())
        if first_bad >= 0:
            where = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                     else "no checkpoint was written before it")
            raise TrainingError(
                f"loss became NaN/inf at step {first_bad}; {where}. Lower --lr, raise --warmup-steps, "
                f"keep --grad-clip on, or use --precision bf16 instead of fp16")

    def _eval_and_track(self, log: MetricsLog, bar: ProgressBar) -> bool:
        """Evaluate, log, keep the best model; True when early stopping says stop."""
        c = self.config
        metrics = self.evaluate()
        stop = False
        if self.dist.is_main and metrics:
            self.last_eval = metrics
            log.log("eval", self.step, metrics)
            bar.write(f"step {self.step}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()))
            if c.metric_for_best:
                if c.metric_for_best not in metrics:
                    raise ConfigError(f"metric_for_best {c.metric_for_best!r} is not among the "
                                      f"evaluation metrics: {', '.join(metrics)}")
                value = float(metrics[c.metric_for_best])
                better = self.best_metric is None or (
                    value > self.best_metric if c.greater_is_better else value < self.best_metric)
                if better:
                    self.best_metric = value
                    self.evals_without_improvement = 0
                    self.export(self.output_dir / "best", metrics)
                else:
                    self.evals_without_improvement += 1
                    stop = bool(c.early_stopping_patience) and (
                        self.evals_without_improvement >= c.early_stopping_patience)
        if self.dist.enabled:
            from hanformer.training.distributed import any_rank

            stop = any_rank(stop, self.device, self.dist)
        return stop


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if math.isfinite(v) and abs(v) < 1e5 else f"{v:.4g}"
    return str(v)
