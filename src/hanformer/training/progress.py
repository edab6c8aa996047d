"""What a run tells its user: a tqdm bar, JSON-lines metrics, and TensorBoard when installed."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hanformer.utils.files import atomic_write


class MetricsLog:
    """Appends one JSON object per record to `metrics.jsonl` (and mirrors scalars to TensorBoard).

    JSON lines survive a crash line by line and are trivial to plot; every record carries
    `step` and `kind` ("train" or "eval").
    """

    def __init__(self, output_dir: str | Path, tensorboard: bool = True, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))
            except Exception:  # tensorboard not installed or broken: JSON lines are enough
                self._tb = None

    def log(self, kind: str, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, "time": round(time.time(), 3), **metrics}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False, default=_jsonable) + "\n")
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self._tb.add_scalar(f"{kind}/{k}", v, step)

    def discard_after(self, step: int) -> int:
        """Drop the records of steps after `step` (written by a run that died after its last
        checkpoint, which the resumed run repeats); returns how many were dropped."""
        if not self.enabled or not self.path.is_file():
            return 0
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and _record_step(line) <= step]
        if len(kept) == len(lines):
            return 0
        with atomic_write(self.path) as f:
            f.write("".join(line + "\n" for line in kept))
        return len(lines) - len(kept)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _record_step(line: str) -> float:
    """The step of a metrics.jsonl line; a torn last line (killed mid-write) counts as after all."""
    try:
        return float(json.loads(line).get("step", math.inf))
    except (ValueError, AttributeError):
        return math.inf


def _jsonable(v: Any) -> Any:
    try:
        return float(v)
    except Exception:
        return str(v)


def read_metrics(output_dir: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (optionally only "train" or "eval")."""
    path = Path(output_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if kind is None or r.get("kind") == kind]


class ProgressBar:
    """A tqdm bar over optimizer steps with loss, lr, tokens/s and MFU.

    With a time budget the number of steps is not known in advance: the bar's total is the steps
    the budget allows at the rate measured so far (capped by max_steps), so its ETA agrees with
    "time left". An estimated MFU (no --peak-tflops) is shown as `mfu=≈41.2%`.

    `enabled` says whether this process reports at all (rank 0); `show_bar` whether it draws the
    bar. Messages (`write`: resumed from, interrupted, evaluation) go to stderr either way, so
    `--no-progress` hides only the bar."""

    def __init__(self, total_steps: int, initial: int, max_seconds: float | None, enabled: bool,
                 show_bar: bool = True, *, initial_elapsed: float = 0.0, mfu_estimated: bool = False) -> None:
        self.max_steps = total_steps
        self.max_seconds = max_seconds
        self.initial_step, self.initial_elapsed = initial, initial_elapsed
        self.mfu_prefix = "≈" if mfu_estimated else ""  # an estimated peak: shown as mfu=≈41.2%
        self.enabled = enabled
        self.bar = None
        if enabled and show_bar:
            self.bar = tqdm(total=self.expected_total(initial, initial_elapsed), initial=initial, unit="step",
                            dynamic_ncols=True, file=sys.stderr, desc="train", smoothing=0.1)

    def expected_total(self, step: int, elapsed: float) -> int | None:
        """The step the run will end at: max_steps, or with a time budget what the rate since this
        process started allows in the time left (None until a rate is known)."""
        if not self.max_seconds:
            return self.max_steps
        done, spent = step - self.initial_step, elapsed - self.initial_elapsed
        if done <= 0 or spent <= 0:
            return None
        left = max(0.0, self.max_seconds - elapsed)
        return max(step, min(self.max_steps, step + round(done / spent * left)))

    def update(self, step: int, metrics: dict[str, float], elapsed: float) -> None:
        if self.bar is None:
            return
        post = {"loss": f"{metrics.get('loss', float('nan')):.4f}", "lr": f"{metrics.get('lr', 0):.2e}"}
        if "tokens_per_s" in metrics:
            post["tok/s"] = f"{metrics['tokens_per_s']:,.0f}"
        if metrics.get("mfu"):
            post["mfu"] = f"{self.mfu_prefix}{100 * metrics['mfu']:.1f}%"
        if self.max_seconds:
            post["time left"] = _fmt_seconds(max(0.0, self.max_seconds - elapsed))
            self.bar.total = self.expected_total(step, elapsed)
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(step - self.bar.n)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.enabled:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fmt_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
