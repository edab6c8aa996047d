"""What several stages share: input-file checks, JSON-ready summaries, the stop on a signal."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError
from hanformer.recipes.layout import TOKENIZER, RunLayout, initialisations
from hanformer.recipes.recipe import FinetuneSection, Recipe
from hanformer.tasks.registry import label_name


class StageInterrupted(KeyboardInterrupt):
    """A training stage stopped on a signal after checkpointing (resumable)."""


def stop_if_interrupted(result: Any, key: str) -> None:
    """The trainer turns Ctrl-C / SIGTERM into a checkpoint and a normal return; the run must
    stop there (the stage stays unfinished, so the next run resumes it) instead of going on."""
    if getattr(result, "stopped", None) == "interrupted":
        raise StageInterrupted(f"stage {key} was interrupted after saving a checkpoint; "
                               "run the same command again to resume it")


def check_files(paths: list[str], source: str, key: str, directory: bool = False) -> list[Path]:
    """The paths, each an existing file (or folder); else a `ConfigError` naming table and key."""
    out = []
    for p in paths:
        path = Path(p)
        ok = path.is_dir() if directory else path.is_file()
        if not ok:
            what = "folder" if directory else "file"
            raise ConfigError(f"{source}: {key} = {p!r}: {what} not found "
                              f"(relative paths are read from {Path.cwd()}; run hanformer from the "
                              "folder the recipe expects, usually the repository root)")
        out.append(path)
    return out


def plain(obj: Any) -> dict[str, Any]:
    """A component's result as JSON-ready numbers for the manifest and report."""
    if obj is None:
        return {}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # an instance, not the class
        obj = dataclasses.asdict(obj)
    if not isinstance(obj, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, Path):
            out[k] = str(v)
        elif isinstance(v, dict):
            out[k] = plain(v)
    return out


def named_majority(task: str, floor: dict[str, Any] | None) -> dict[str, Any]:
    """A majority-class baseline with its label named as the report names labels (the
    sentiment tasks store 0/1: the task registry's name)."""
    floor = plain(floor)
    if "label" in floor:
        floor["label"] = label_name(task, str(floor["label"]))
    return floor


def task_seeds(sec: FinetuneSection) -> list[int]:
    """The seeds a [finetune.X] table repeats its runs over (`seeds = [42, 1, 2]`); none: one run."""
    seeds = sec.settings.get("seeds") or []
    if isinstance(seeds, str):
        seeds = [int(s) for s in seeds.split(",") if s.strip()]
    return [int(s) for s in seeds]


def task_inits(recipe: Recipe, sec: FinetuneSection) -> tuple[str, ...]:
    """The initialisations a task is fine-tuned from: pretrained, every `[variant.<name>]`'s
    pretrained model (unless the task fine-tunes a `model` of its own), and from scratch unless
    switched off."""
    return initialisations(tuple(recipe.variants) if not sec.model else (), sec.scratch)


def tokenizer_source(recipe: Recipe, explicit: str | None) -> tuple[dict[str, str], Path]:
    """(upstream dependency, folder) of the tokenizer a stage reads."""
    if explicit:
        return {}, Path(explicit)
    return {TOKENIZER: ""}, RunLayout(recipe.run_dir).tokenizer_dir
