"""`run_recipe`: one call from raw text to an evaluated model and its report.

    from hanformer.recipes import run_recipe
    result = run_recipe("recipes/demo-ko.toml")              # runs what changed
    result = run_recipe("recipes/demo-ko.toml", dry_run=True) # only shows the plan
    result = run_recipe("recipes/demo-ko.toml", force=["pretrain"])

The whole recipe is checked (tables, keys, files, component settings, stage inputs) before the
first stage starts. Then each stage either runs, resumes from its last checkpoint, or is skipped
because its settings, inputs and upstream outputs are unchanged (see `caching.py`). The report
stage's data is then published with this run's stage table and rendered, once, into
`runs/<name>/report.html` (see `_publish_report`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hanformer.errors import ConfigError
from hanformer.recipes.caching import Decision, InputHashes, Stage, decide, read_manifest, run_stage
from hanformer.recipes.layout import RunLayout
from hanformer.recipes.recipe import Recipe, load_recipe
from hanformer.recipes.report.render import render_report
from hanformer.recipes.stages import build_stages
from hanformer.utils.files import atomic_write, atomic_write_json


@dataclass
class RunResult:
    """What a run did: the plan with its decisions, per-stage manifests and the report paths."""

    recipe: Recipe
    run_dir: Path
    decisions: list[Decision]
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: Path | None = None
    metrics: Path | None = None
    seconds: float = 0.0

    @property
    def ran(self) -> list[str]:
        return [d.stage.key for d in self.decisions if d.action != "skip"]

    @property
    def skipped(self) -> list[str]:
        return [d.stage.key for d in self.decisions if d.action == "skip"]


def _expand_force(stages: list[Stage], force: Sequence[str]) -> set[str]:
    """`--force pretrain` forces that stage; `--force finetune` every stage under finetune/;
    `--force all` everything."""
    keys = [s.key for s in stages]
    out: set[str] = set()
    for name in force:
        name = name.strip().strip("[]").replace(".", "/")
        if name in ("all", "*"):
            return set(keys)
        matched = [k for k in keys if k == name or k.startswith(name + "/")]
        if not matched:
            raise ConfigError(f"--force {name}: no such stage in this recipe; stages: {', '.join(keys)}")
        out.update(matched)
    return out


def plan(recipe: Recipe, stages: list[Stage], force: Sequence[str] = ()) -> list[Decision]:
    """Decide for every stage whether it runs, resumes or is skipped, and why."""
    forced = _expand_force(stages, force)
    hashes = InputHashes()
    pending: set[str] = set()
    decisions = []
    for stage in stages:
        d = decide(stage, recipe.run_dir, hashes, forced, pending)
        if d.action != "skip":
            pending.add(stage.key)
        decisions.append(d)
    return decisions


def format_plan(recipe: Recipe, decisions: list[Decision]) -> str:
    width = max(len(d.stage.key) for d in decisions) if decisions else 0
    lines = [f"plan for {recipe.path} -> {recipe.run_dir}/"]
    for d in decisions:
        verb = {"run": "run   ", "skip": "skip  ", "resume": "resume"}[d.action]
        budget = f" [budget {d.stage.budget}]" if d.stage.budget else ""
        lines.append(f"  {verb} {d.stage.key:<{width}}  {d.stage.title}{budget}: {d.reason}")
    return "\n".join(lines)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_recipe(path: str | Path, *, force: Sequence[str] = (), dry_run: bool = False,
               out_dir: str | Path | None = None, log: Callable[[str], None] = _stderr) -> RunResult:
    """Run (or with `dry_run`, only plan) the recipe at `path`; see the module docstring.

    `out_dir` replaces the recipe's `[run] out_dir` (the run goes to `out_dir/<name>/`).
    """
    recipe = load_recipe(path)
    if out_dir is not None:
        recipe.run.out_dir = str(out_dir)
    stages = build_stages(recipe)  # checks every stage's settings, files and inputs
    return run_stages(recipe, stages, force=force, dry_run=dry_run, log=log)


def run_stages(recipe: Recipe, stages: list[Stage], *, force: Sequence[str] = (), dry_run: bool = False,
               log: Callable[[str], None] = _stderr) -> RunResult:
    """Plan and run already-built stages (what `run_recipe` does after checking the recipe)."""
    decisions = plan(recipe, stages, force)
    log(format_plan(recipe, decisions))
    result = RunResult(recipe=recipe, run_dir=recipe.run_dir, decisions=decisions)
    if dry_run:
        return result

    if recipe.run.threads:
        torch.set_num_threads(recipe.run.threads)
    started = time.time()
    hashes = InputHashes()
    records: list[dict[str, Any]] = []
    forced_keys = {d.stage.key for d in decisions if d.reason == "forced with --force"}
    pending = {d.stage.key for d in decisions if d.action != "skip"}
    for planned in decisions:
        stage = planned.stage
        # Decide again now that upstream stages have finished: a re-run upstream stage whose
        # output came out identical leaves this stage cached.
        pending.discard(stage.key)
        d = decide(stage, recipe.run_dir, hashes, forced_keys, set())
        if d.action == "skip":
            log(f"[{stage.key}] skipped: {d.reason}")
            man = read_manifest(stage.dir(recipe.run_dir)) or {}
        else:
            log(f"[{stage.key}] {stage.title}: {'resuming' if d.action == 'resume' else 'running'} ({d.reason})")
            man = run_stage(d, recipe.run_dir, hashes, seed=recipe.run.seed, threads=recipe.run.threads, log=log)
            log(f"[{stage.key}] done in {man['seconds']:.1f} s")
        result.manifests[stage.key] = man
        records.append({"key": stage.key, "title": stage.title, "action": d.action, "reason": d.reason,
                        "seconds": man.get("seconds"), "budget": stage.budget})
    result.seconds = time.time() - started
    layout = RunLayout(recipe.run_dir)
    if layout.report_data.is_file():
        _publish_report(layout, records)
        result.report = layout.published_report
        result.metrics = layout.published_metrics
        log(f"report: {result.report}")
    return result


def _publish_report(layout: RunLayout, records: list[dict[str, Any]]) -> None:
    """Write runs/<name>/metrics.json and report.html: the report stage's data with the stage
    table of *this* run (what ran, what was cached), rendered here and only here. The stage's own
    file stays untouched, so its hash (and the cache) does not change."""
    data = json.loads(layout.report_data.read_text(encoding="utf-8"))
    data["stages"] = records
    data["total_seconds"] = round(sum(r.get("seconds") or 0 for r in records if r["action"] != "skip"), 2)
    atomic_write_json(layout.published_metrics, data)
    with atomic_write(layout.published_report) as f:
        f.write(render_report(data))
