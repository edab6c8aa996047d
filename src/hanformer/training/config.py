"""Settings of the training loop (shared by pretraining and fine-tuning).

`TrainerConfig` holds what every training run needs: how long, how to optimize, which precision,
when to evaluate and checkpoint. Task-specific settings (data, model, batch size) live in the
task's own config (`PretrainConfig` here, the fine-tuning config elsewhere) and embed this one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Literal

from hanformer.errors import ConfigError
from hanformer.utils.config import parse_duration, setting


@dataclasses.dataclass
class TrainerConfig:
    output_dir: str = setting("runs/train", "where checkpoints, metrics.jsonl and the final model go")
    max_steps: int = setting(1000, "optimizer steps to run (with --max-time, whichever comes first)")
    max_time: str | None = setting(None, "wall-clock budget, e.g. '30m', '1h' (training stops and "
                                   "the schedule decays by time, as in Cramming)")
    grad_accum: int = setting(1, "micro-batches accumulated per optimizer step")
    optimizer: Literal["adamw", "sgd", "lamb"] = setting("adamw", "optimizer (AdamW with decoupled "
                                                        "weight decay, SGD with momentum, or LAMB)")
    lr: float = setting(1e-4, "peak learning rate")
    weight_decay: float = setting(0.01, "decoupled weight decay (never applied to biases and norms)")
    layer_lr_decay: float = setting(1.0, "layer-wise learning-rate decay for BERT-family encoders: the heads "
                                    "train at lr, each encoder layer below at this times the one above, "
                                    "the embeddings last (1.0: off; 0.8-0.95 is usual)")
    beta1: float = setting(0.9, "Adam/LAMB beta1")
    beta2: float = setting(0.999, "Adam/LAMB beta2")
    eps: float = setting(1e-6, "Adam/LAMB epsilon")
    momentum: float = setting(0.9, "SGD momentum")
    schedule: Literal["linear", "cosine", "constant", "inverse_sqrt"] = setting(
        "linear", "decay after warmup: linear or cosine to min-lr-ratio, constant, or inverse_sqrt (the "
        "Transformer paper's lr * sqrt(warmup / step))")
    warmup_steps: int = setting(0, "linear warmup steps (0: use warmup-ratio)")
    warmup_ratio: float = setting(0.0, "warmup as a fraction of the run: of its steps, or of --max-time when "
                                  "there is a time budget (used when warmup-steps is 0)")
    min_lr_ratio: float = setting(0.0, "final learning rate as a fraction of lr")
    grad_clip: float = setting(1.0, "clip the global gradient norm to this (0: off)")
    precision: Literal["fp32", "bf16", "fp16"] = setting(
        "fp32", "bf16: bfloat16 autocast (CPU and CUDA); fp16: float16 autocast + loss scaling (CUDA)")
    compile: bool = setting(False, "torch.compile the model (pays off on long runs)")
    parallelism: Literal["ddp", "fsdp"] = setting(
        "ddp", "with several processes: ddp keeps a whole copy of the model in each and averages gradients; "
        "fsdp (FSDP2) shards parameters, gradients and optimizer states across them, one unit per "
        "Transformer block, and writes sharded checkpoints (torch.distributed.checkpoint)")
    reshard_after_forward: bool = setting(
        True, "fsdp: free each block's gathered parameters after its forward and gather them again for "
        "backward (ZeRO-3); --no-reshard-after-forward keeps them until backward (ZeRO-2: more memory, "
        "less communication)")
    cpu_offload: bool = setting(
        False, "fsdp: keep the sharded parameters, their gradients and the optimizer step in CPU memory, "
        "copying each unit to the GPU only while it computes (far less GPU memory, slower steps)")
    activation_checkpointing: bool = setting(
        False, "keep only each Transformer block's input and recompute its activations in backward "
        "(far less activation memory for about a third more compute)")
    device: str = setting("auto", "auto, cpu, cuda, cuda:1, ...")
    threads: int = setting(0, "CPU threads for torch (0: leave torch's default)")
    seed: int = setting(42, "random seed (model init, dropout, data order, masking)")
    log_every: int = setting(10, "log metrics every N steps")
    eval_every: int = setting(0, "evaluate every N steps (0: only at the end)")
    save_every: int = setting(0, "checkpoint every N steps (0: only at the end and on interrupt)")
    keep_last: int = setting(2, "how many recent checkpoints to keep")
    metric_for_best: str | None = setting(None, "evaluation metric that selects the best model "
                                          "(saved to OUTPUT_DIR/best)")
    greater_is_better: bool = setting(True, "whether a larger metric-for-best is better")
    early_stopping_patience: int = setting(0, "stop after N evaluations without improvement (0: off)")
    peak_tflops: float = setting(0.0, "hardware peak TFLOP/s for MFU (0: estimate it, measured with timed "
                                 "matmuls during the run; shown as mfu=≈N%)")
    progress: bool = setting(True, "show a progress bar")
    tensorboard: bool = setting(True, "also write TensorBoard logs when tensorboard is installed")
    overwrite: bool = setting(False, "start afresh in an output dir that holds an earlier run (its checkpoints, "
                              "metrics, final/ and best/ are deleted); without it such a dir is an error "
                              "unless you --resume")

    def validate(self) -> None:
        """Every setting checked before any work starts; messages name the flag."""
        if self.max_steps < 1:
            raise ConfigError(f"max_steps (--max-steps) must be >= 1, got {self.max_steps} (with --max-time "
                              "it is the step cap: set it high)")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"max_time (--max-time) must be > 0, got {self.max_time!r}; e.g. '90s', '30m'")
        _require("lr", self.lr, low=0.0, low_open=True)
        _require("weight_decay", self.weight_decay, low=0.0)
        _require("layer_lr_decay", self.layer_lr_decay, low=0.0, high=1.0, low_open=True)
        _require("beta1", self.beta1, low=0.0, high=1.0, high_open=True)
        _require("beta2", self.beta2, low=0.0, high=1.0, high_open=True)
        _require("eps", self.eps, low=0.0, low_open=True)
        _require("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _require("warmup_ratio", self.warmup_ratio, low=0.0, high=1.0, high_open=True)
        _require("min_lr_ratio", self.min_lr_ratio, low=0.0, high=1.0)
        _require("grad_clip", self.grad_clip, low=0.0)
        _require("peak_tflops", self.peak_tflops, low=0.0)
        if self.grad_accum < 1:
            raise ConfigError(f"grad_accum (--grad-accum) must be >= 1, got {self.grad_accum}")
        if self.keep_last < 1:
            raise ConfigError(f"keep_last (--keep-last) must be >= 1, got {self.keep_last}")
        for name in ("log_every", "eval_every", "save_every", "warmup_steps", "threads",
                     "early_stopping_patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} ({_flag(name)}) must be >= 0, got {getattr(self, name)}")
        if self.parallelism == "fsdp" and self.precision == "fp16":
            raise ConfigError("precision 'fp16' does not combine with parallelism (--parallelism) 'fsdp' here; "
                              "use --precision bf16 (no loss scaling needed)")
        if self.cpu_offload and self.parallelism != "fsdp":
            raise ConfigError("cpu_offload (--cpu-offload) needs parallelism (--parallelism) 'fsdp': it moves "
                              "FSDP's shards to CPU memory; add --parallelism fsdp or drop --cpu-offload")
        check_seed(self.seed, "seed")
        check_device_name(self.device)
        if self.metric_for_best is not None and not self.metric_for_best.strip():
            raise ConfigError("metric_for_best (--metric-for-best) is empty; name an evaluation metric or leave it out")

    @property
    def max_seconds(self) -> float | None:
        return parse_duration(self.max_time)


# Seeds feed NumPy (32 bits) and torch (64 bits): non-negative and below 2**63.
MAX_SEED = 2**63 - 1
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _require(name: str, value: float, *, low: float | None = None, high: float | None = None,
             low_open: bool = False, high_open: bool = False) -> None:
    """A finite number within [low, high] (open ends when asked), or a ConfigError naming the flag."""
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        raise ConfigError(f"{name} ({_flag(name)}) must be a finite number {' and '.join(bounds)}, got {value!r}")


def check_seed(seed: int, name: str) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{name} ({_flag(name)}) must be a whole number from 0 to 2**63-1, got {seed}")


def check_device_name(device: str) -> None:
    """The spelling of --device (whether the device exists is checked when it is opened)."""
    if not _DEVICE.match(device.strip()):
        raise ConfigError(f"device (--device) {device!r} is not a device; use auto, cpu, cuda, cuda:N or mps")


def check_output_dir(path: str | Path, name: str) -> None:
    """An output folder that exists as a folder, or can be created: not a file, not read-only.
    (The command that owns the folder checks it: fine-tuning names it --out, not --output-dir.)"""
    p = Path(path)
    flag = _flag(name)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{name} ({flag}) {str(p)!r} is an existing file, not a folder; choose another path")
    existing = p
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{name} ({flag}) {str(p)!r}: {str(existing)!r} is a file, so the folder cannot "
                          "be created; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{name} ({flag}) {str(p)!r}: cannot write in {str(existing)!r} (permission "
                          "denied); choose a writable folder")


def make_output_dir(path: str | Path, name: str) -> Path:
    """Create the output folder and make sure files can be written in it (a ConfigError if not)."""
    p = Path(path)
    check_output_dir(p, name)
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as e:
        raise ConfigError(f"{name} ({_flag(name)}) {str(p)!r}: cannot write there ({e.strerror or e}); "
                          "choose a writable folder") from None
    return p
