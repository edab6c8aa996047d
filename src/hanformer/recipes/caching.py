"""The `Stage` type and its caching: fingerprints, manifests, run/skip/resume decisions.

A recipe becomes a list of `Stage`s in dependency order. Each stage writes into its own folder
`runs/<name>/<stage>/` and, when it completes, a manifest `stage.json` (written atomically) with
its *fingerprint*: the hash of

* the stage's settings (after defaults, so spelling a default out changes nothing),
* the content of its input files,
* the content hash of the outputs of the stages it reads (not their settings: a tokenizer
  re-trained to the same bytes does not invalidate the shards).

On the next run a stage whose fingerprint is unchanged and whose outputs are still there is
skipped. A changed setting re-runs that stage; its dependents then see a new upstream output hash
and re-run too. A stage that was interrupted leaves a manifest with status "running"; if its
fingerprint is unchanged and the stage can resume (the trainer's checkpoints), it continues from
the last checkpoint instead of starting over.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hanformer.errors import ConfigError, HanformerError
from hanformer.recipes.layout import RunLayout
from hanformer.utils.files import atomic_write_json
from hanformer.utils.hashing import hash_file, hash_json, hash_tree

MANIFEST = "stage.json"
# Bump when the meaning of stage outputs changes, so old runs are not mistaken for current ones.
PIPELINE_FORMAT = 1


@dataclass
class StageContext:
    """What a stage's run function gets: its folder, the folders it reads, and run-wide facts."""

    stage: Stage
    dir: Path
    upstream: dict[str, Path]
    seed: int
    threads: int
    resume: bool
    log: Callable[[str], None]


StageRun = Callable[["StageContext"], dict[str, Any]]  # a stage's work; returns its summary


@dataclass
class Stage:
    """One unit of work with declared inputs, settings and outputs."""

    key: str                                   # "tokenizer", "finetune/nsmc/scratch", ...
    title: str                                 # shown in the plan
    run: StageRun                              # returns a summary (numbers for the report)
    settings: dict[str, Any] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)
    # upstream stage key -> part of its folder whose content this stage reads ("" = its outputs)
    upstream: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)   # paths inside the stage folder to hash
    resumable: bool = False
    budget: str | None = None
    # The settings' default values: a setting that a newer version adds, left at its default,
    # is no change, so upgrading does not re-run finished stages.
    setting_defaults: dict[str, Any] = field(default_factory=dict)

    def dir(self, run_dir: Path) -> Path:
        return RunLayout(run_dir).stage_dir(self.key)


@dataclass
class Decision:
    stage: Stage
    action: Literal["run", "skip", "resume"]
    reason: str


def read_manifest(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a damaged manifest means "not done"; the stage simply runs again


def _hash_paths(root: Path, parts: list[str]) -> str:
    hashes = {}
    for part in parts or [""]:
        p = root / part if part else root
        if not p.exists():
            raise FileNotFoundError(p)
        if p.is_dir():
            # The manifest and trainer checkpoints are bookkeeping, not the stage's result.
            hashes[part] = hash_tree_filtered(p)
        else:
            hashes[part] = hash_file(p)
    return hash_json(hashes)


def hash_tree_filtered(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST
                   and "checkpoints" not in p.relative_to(path).parts and not p.name.startswith("."))
    return hash_json({str(p.relative_to(path)): hash_file(p) for p in files})


def upstream_hash(run_dir: Path, key: str, part: str) -> str | None:
    """Content hash of what a stage reads from an upstream stage; None if it is not complete."""
    manifest = read_manifest(RunLayout(run_dir).stage_dir(key))
    if manifest is None or manifest.get("status") != "complete":
        return None
    if not part:
        return manifest.get("outputs_hash")
    return manifest.get("part_hashes", {}).get(part)


def without_new_defaults(settings: dict[str, Any], recorded: dict[str, Any],
                         defaults: dict[str, Any]) -> dict[str, Any]:
    """`settings` less the keys `recorded` (an earlier run's) lacks whose value is the default."""
    out = {}
    for key, value in settings.items():
        default = defaults.get(key)
        if key not in recorded:
            if key in defaults and value == default:
                continue
        elif isinstance(value, dict) and isinstance(recorded[key], dict) and isinstance(default, dict):
            value = without_new_defaults(value, recorded[key], default)
        out[key] = value
    return out


def fingerprint(stage: Stage, run_dir: Path, input_hashes: dict[str, str],
                settings: dict[str, Any] | None = None) -> str | None:
    """The stage's fingerprint, or None while an upstream stage has not completed."""
    ups = {}
    for key, part in sorted(stage.upstream.items()):
        h = upstream_hash(run_dir, key, part)
        if h is None:
            return None
        ups[f"{key}:{part}"] = h
    return hash_json({
        "format": PIPELINE_FORMAT,
        "stage": stage.key,
        "settings": stage.settings if settings is None else settings,
        "inputs": {str(p): input_hashes[str(p)] for p in stage.inputs},
        "upstream": ups,
    })


class InputHashes(dict):
    """Hashes input files once per run, even when several stages read them."""

    def __missing__(self, key: str) -> str:
        value = hash_file(key) if Path(key).is_file() else hash_tree(key)
        self[key] = value
        return value


def decide(stage: Stage, run_dir: Path, hashes: InputHashes, forced: set[str],
           pending: set[str]) -> Decision:
    """Run, skip or resume `stage`? `pending` holds stages that will run before it in this plan."""
    stage_dir = stage.dir(run_dir)
    if stage.key in forced:
        return Decision(stage, "run", "forced with --force")
    waiting = sorted(k for k in stage.upstream if k in pending)
    if waiting:
        names = ", ".join(waiting) if len(waiting) <= 3 else f"{len(waiting)} upstream stages"
        return Decision(stage, "run", f"after {names} (re-runs when their output changes)")
    fp = fingerprint(stage, run_dir, hashes)
    manifest = read_manifest(stage_dir)
    if fp is None:
        return Decision(stage, "run", "an upstream stage has not completed")
    if manifest is None:
        return Decision(stage, "run", "never ran")
    settings = stage.settings
    if manifest.get("fingerprint") != fp and stage.setting_defaults:
        settings = without_new_defaults(settings, manifest.get("settings", {}), stage.setting_defaults)
        fp = fingerprint(stage, run_dir, hashes, settings)
    if manifest.get("fingerprint") != fp:
        return Decision(stage, "run", _what_changed(manifest, stage, settings, hashes))
    if manifest.get("status") == "running":
        if stage.resumable and _has_checkpoint(stage_dir):
            return Decision(stage, "resume", "interrupted; resuming from its last checkpoint")
        return Decision(stage, "run", "interrupted before its first checkpoint")
    try:
        if _hash_paths(stage_dir, stage.outputs) != manifest.get("outputs_hash"):
            return Decision(stage, "run", "its outputs were changed or removed")
    except FileNotFoundError as e:
        return Decision(stage, "run", f"output missing: {e}")
    return Decision(stage, "skip", "settings, inputs and upstream outputs unchanged")


def _what_changed(manifest: dict[str, Any], stage: Stage, settings: dict[str, Any], hashes: InputHashes) -> str:
    old = manifest.get("recorded", {})
    if old.get("settings") != hash_json(settings):
        before = manifest.get("settings", {})
        keys = sorted(k for k in set(before) | set(settings)
                      if k not in before or k not in settings or before[k] != settings[k])
        return "settings changed" + (f" ({', '.join(keys[:4])})" if keys else "")
    if old.get("inputs") != {str(p): hashes[str(p)] for p in stage.inputs}:
        return "input files changed"
    return "upstream outputs changed"


def _has_checkpoint(stage_dir: Path) -> bool:
    return any(p.is_dir() for p in stage_dir.rglob("checkpoint*"))


def run_stage(decision: Decision, run_dir: Path, hashes: InputHashes, *, seed: int, threads: int,
              log: Callable[[str], None]) -> dict[str, Any]:
    """Run one stage (fresh or resumed) and write its manifest; returns the manifest."""
    stage = decision.stage
    stage_dir = stage.dir(run_dir)
    resume = decision.action == "resume"
    if not resume and stage_dir.exists():
        shutil.rmtree(stage_dir)  # stale outputs of other settings must not leak into this run
    stage_dir.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(stage, run_dir, hashes)
    if fp is None:
        raise ConfigError(f"stage {stage.key!r} cannot start: an upstream stage did not complete")
    recorded = {"settings": hash_json(stage.settings),
                "inputs": {str(p): hashes[str(p)] for p in stage.inputs}}
    base = {"stage": stage.key, "fingerprint": fp, "recorded": recorded, "settings": stage.settings}
    started = time.time()
    atomic_write_json(stage_dir / MANIFEST, {**base, "status": "running", "started": started})
    ctx = StageContext(stage=stage, dir=stage_dir, seed=seed, threads=threads, resume=resume, log=log,
                       upstream={k: RunLayout(run_dir).stage_dir(k) for k in stage.upstream})
    summary = stage.run(ctx) or {}
    seconds = time.time() - started
    part_hashes = {}
    for part in stage.outputs:
        p = stage_dir / part
        if not p.exists():
            raise HanformerError(f"stage {stage.key} finished without writing {p}; see its log above")
        part_hashes[part] = hash_tree_filtered(p) if p.is_dir() else hash_file(p)
    manifest = {**base, "status": "complete", "started": started, "seconds": round(seconds, 2),
                "resumed": resume, "outputs_hash": _hash_paths(stage_dir, stage.outputs),
                "part_hashes": part_hashes, "summary": summary}
    atomic_write_json(stage_dir / MANIFEST, manifest)
    return manifest
