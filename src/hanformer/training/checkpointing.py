"""Training checkpoints: atomic, the last K kept, and everything needed for an exact resume.

Layout: `OUTPUT_DIR/checkpoints/step-00000100/state.pt` (+ `trainer_state.json` for people; an
FSDP run adds the sharded model and optimizer in `sharded/`, see `sharded_checkpoint.py`).
A checkpoint is first written to a hidden temporary folder and then renamed into place, so a
crash or a second Ctrl-C leaves either the old checkpoints or a complete new one, never half.
`state.pt` holds only tensors and plain Python values, so it loads with `weights_only=True`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hanformer.errors import CheckpointError

FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d+)$")
# Temporary folders of a save or an export that was killed midway (see save_checkpoint and
# Trainer.export): `.step-00000100.abc123` in checkpoints/, `.final.abc123` / `.best.abc123` beside.
_PARTIAL_CHECKPOINT = re.compile(r"^\.step-\d+\..+$")
_PARTIAL_EXPORT = re.compile(r"^\.(final|best)\..+$")
# What a run writes into its output dir (`--overwrite` deletes these, nothing else).
RUN_OUTPUTS = ("checkpoints", "metrics.jsonl", "tensorboard", "final", "best")


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and (p / "state.pt").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(output_dir)
    return ckpts[-1] if ckpts else None


def remove_partial(output_dir: str | Path) -> list[Path]:
    """Delete the temporary folders of saves and exports that were killed before they were
    renamed into place (they are never complete, so never resumed from); returns them."""
    out = Path(output_dir)
    found = []
    for folder, pattern in ((checkpoint_root(out), _PARTIAL_CHECKPOINT), (out, _PARTIAL_EXPORT)):
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.is_dir() and pattern.match(p.name)]
    for p in found:
        shutil.rmtree(p, ignore_errors=True)
    return found


def remove_run_outputs(output_dir: str | Path) -> None:
    """Delete an earlier run's checkpoints, metrics, final/ and best/ (for `--overwrite`)."""
    out = Path(output_dir)
    for name in RUN_OUTPUTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def settings_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Keys whose values differ between a checkpoint's recorded settings and this run's (dotted
    for nested tables), compared as JSON so tuples and lists agree."""
    a, b = _as_json(saved), _as_json(current)
    differ = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            differ += [f"{key}.{k}" for k in settings_mismatch(x, y)]
        elif x != y:
            differ.append(key)
    return differ


def _as_json(x: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(x, sort_keys=True, default=str))


def save_checkpoint(output_dir: str | Path, step: int, state: dict[str, Any], keep_last: int,
                    summary: dict[str, Any] | None = None) -> Path:
    """Write `state` as checkpoint `step` atomically and delete all but the newest `keep_last`."""
    tmp = new_checkpoint_dir(output_dir, step)
    try:
        return finish_checkpoint(tmp, output_dir, step, state, keep_last, summary)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def new_checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """The hidden folder checkpoint `step` is written into before `finish_checkpoint` renames it
    (a sharded save lets every process write its shard there first)."""
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".step-{step:08d}.", dir=root))


def finish_checkpoint(tmp: Path, output_dir: str | Path, step: int, state: dict[str, Any], keep_last: int,
                      summary: dict[str, Any] | None = None) -> Path:
    """Add state.pt and trainer_state.json to `tmp`, rename it into place, prune old ones."""
    final = checkpoint_root(output_dir) / f"step-{step:08d}"
    torch.save(state, tmp / "state.pt")
    with open(tmp / "trainer_state.json", "w", encoding="utf-8") as f:
        json.dump({"step": step, "format_version": FORMAT_VERSION, **(summary or {})}, f,
                  indent=2, ensure_ascii=False, default=str)
    for name in ("state.pt", "trainer_state.json"):
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint folder (or its state.pt); a clear error if it is missing or corrupt."""
    p = Path(path)
    file = p / "state.pt" if p.is_dir() else p
    if not file.is_file():
        raise CheckpointError(f"no checkpoint at {p} (expected {file.name}; "
                              f"checkpoints live in OUTPUT_DIR/checkpoints/step-N)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file
        raise CheckpointError(f"{file}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{file}: not a hanformer training checkpoint (format version "
                              f"{state.get('format_version') if isinstance(state, dict) else '?'})")
    return state


def check_model_compatible(model_state: dict[str, torch.Tensor], model: torch.nn.Module, source: str) -> None:
    """Refuse to resume into a model of another shape, naming the first differing parameter."""
    check_shapes_compatible({k: tuple(v.shape) for k, v in model_state.items()},
                            {k: tuple(v.shape) for k, v in model.state_dict().items()}, source)


def check_shapes_compatible(saved: dict[str, tuple[int, ...]], own: dict[str, tuple[int, ...]], source: str) -> None:
    """The same check on parameter names and (full, unsharded) shapes."""
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: checkpoint is for a different model ({len(missing)} parameters missing, e.g. "
            f"{missing[:1]}; {len(unexpected)} unexpected, e.g. {unexpected[:1]}); resume with the "
            f"same model settings or start a fresh output dir")
    for k, shape in own.items():
        if tuple(saved[k]) != tuple(shape):
            raise CheckpointError(
                f"{source}: checkpoint is for another model shape: {k} is "
                f"{tuple(saved[k])} there but {tuple(shape)} here; resume with the "
                f"same model settings or start a fresh output dir")


def capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # numpy's global generator is MT19937: the legacy tuple
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), int(n[2]), int(n[3]), float(n[4])))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def export_dir(directory: Path, write: Callable[[Path], None]) -> Path:
    """Let `write(tmp)` fill a hidden folder beside `directory`, then rename it into place: an
    earlier export stays whole until the new one is complete."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        write(tmp)
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
