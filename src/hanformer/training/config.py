"""Settings of the training loop (shared by pretraining and fine-tuning).

`TrainerConfig` holds what every training run needs: how long, how to optimize, which precision,
when to evaluate and checkpoint. Task-specific settings (data, model, batch size) live in the
task's own config (`PretrainConfig` here, the fine-tuning config elsewhere) and embed this one.
"""

from __future__ import annotations

import dataclasses
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
    beta1: float = setting(0.9, "Adam/LAMB beta1")
    beta2: float = setting(0.999, "Adam/LAMB beta2")
    eps: float = setting(1e-6, "Adam/LAMB epsilon")
    momentum: float = setting(0.9, "SGD momentum")
    schedule: Literal["linear", "cosine", "constant"] = setting(
        "linear", "decay after warmup: linear or cosine to min-lr-ratio, or constant")
    warmup_steps: int = setting(0, "linear warmup steps (0: use warmup-ratio)")
    warmup_ratio: float = setting(0.0, "warmup as a fraction of the run: of its steps, or of --max-time when "
                                  "there is a time budget (used when warmup-steps is 0)")
    min_lr_ratio: float = setting(0.0, "final learning rate as a fraction of lr")
    grad_clip: float = setting(1.0, "clip the global gradient norm to this (0: off)")
    precision: Literal["fp32", "bf16", "fp16"] = setting(
        "fp32", "bf16: bfloat16 autocast (CPU and CUDA); fp16: float16 autocast + loss scaling (CUDA)")
    compile: bool = setting(False, "torch.compile the model (pays off on long runs)")
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
    peak_tflops: float = setting(0.0, "hardware peak TFLOP/s for MFU (0: a rough guess per device)")
    progress: bool = setting(True, "show a progress bar")
    tensorboard: bool = setting(True, "also write TensorBoard logs when tensorboard is installed")

    def validate(self) -> None:
        if self.max_steps < 1 and self.max_time is None:
            raise ConfigError("max_steps must be >= 1 (or give max_time)")
        if self.grad_accum < 1:
            raise ConfigError(f"grad_accum must be >= 1, got {self.grad_accum}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.keep_last < 1:
            raise ConfigError(f"keep_last must be >= 1, got {self.keep_last}")
        for name in ("log_every", "eval_every", "save_every", "warmup_steps", "threads",
                     "early_stopping_patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        self.max_seconds  # noqa: B018 - parses max_time, raising a ConfigError if malformed

    @property
    def max_seconds(self) -> float | None:
        return parse_duration(self.max_time)
