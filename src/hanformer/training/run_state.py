"""Which run an output folder holds: the settings a checkpoint records, the checks that a
resumed run is the same run, which checkpoint to resume from, and the output folder's set-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hanformer.errors import CheckpointError, ConfigError
from hanformer.training import checkpointing as ckpt
from hanformer.training.config import TrainerConfig, make_output_dir
from hanformer.training.distributed import DistInfo, barrier
from hanformer.utils.config import config_to_dict

Resume = str | Path | bool | None

# Trainer settings that may change when a run is resumed: how long it runs, how it reports, where
# it runs. Every other setting must match the checkpoint's, or the resumed run is another run.
MAY_CHANGE_ON_RESUME = frozenset({
    "output_dir", "max_steps", "max_time", "log_every", "eval_every", "save_every", "keep_last",
    "early_stopping_patience", "device", "threads", "compile", "peak_tflops", "progress", "tensorboard",
    "overwrite"})


def is_resuming(resume: Resume) -> bool:
    return resume not in (None, False, "")


def run_identity(config: TrainerConfig, caller_identity: dict[str, Any]) -> dict[str, Any]:
    """The settings a checkpoint of this run records and a resumed run must match."""
    trainer = {k: v for k, v in config_to_dict(config).items() if k not in MAY_CHANGE_ON_RESUME}
    return {"trainer": trainer, **caller_identity}


def check_same_run(saved: dict[str, Any] | None, current: dict[str, Any], path: str | Path) -> None:
    """Refuse a checkpoint of another run (other vocabulary, data, model or optimisation
    settings): resuming it would silently continue something else."""
    if saved is None:  # written before checkpoints recorded their settings
        return
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


def resume_checkpoint(resume: Resume, output_dir: Path, say: Callable[[str], None]) -> Path | None:
    """The checkpoint to resume from: the latest in OUTPUT_DIR (True/"auto"), the latest in a
    given folder, or a given checkpoint; None (said out loud) when there is nothing to resume."""
    if not is_resuming(resume):
        return None
    if resume is True or resume == "auto":
        latest = ckpt.latest_checkpoint(output_dir)
        if latest is None:
            say(f"resume: no checkpoint in {ckpt.checkpoint_root(output_dir)}; starting from step 0")
        return latest
    p = Path(resume)  # type: ignore[arg-type]
    if p.is_dir() and not (p / "state.pt").is_file():
        latest = ckpt.latest_checkpoint(p)
        if latest is not None:
            return latest
    return p  # load_checkpoint says clearly what is missing


def prepare_output_dir(output_dir: Path, resume: Resume, overwrite: bool, dist: DistInfo) -> None:
    """Create OUTPUT_DIR, clear half-written saves, and keep a new run from mixing with the
    checkpoints of an earlier one (whose newest would be resumed, and which keep_last would
    weigh against this run's)."""
    resuming = is_resuming(resume)
    if resuming and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: --resume continues the run "
                          "in the output dir, --overwrite deletes it; pass one of them")
    if dist.is_main:
        make_output_dir(output_dir, "output_dir")
        ckpt.remove_partial(output_dir)
        if not resuming and overwrite:
            ckpt.remove_run_outputs(output_dir)
    barrier(dist)
    latest = ckpt.latest_checkpoint(output_dir)
    if not resuming and latest is not None:
        raise ConfigError(
            f"output dir {output_dir} already holds checkpoints of an earlier run (latest "
            f"{latest.name}); pass --resume to continue it, choose a new output dir, or pass "
            f"--overwrite to replace it")
