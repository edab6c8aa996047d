"""The report's data: what the stages left in the run folder (manifests, the trainer's
JSON-lines metrics, the evaluation results) gathered into one JSON-ready dict, `metrics.json`."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any

import tokenizers
import torch

from hanformer import __version__
from hanformer.recipes.caching import read_manifest
from hanformer.recipes.layout import RunLayout, baseline_key, initialisations
from hanformer.recipes.report.metric_names import primary_metric
from hanformer.utils.machine import cpu_model

_MAX_CURVE_POINTS = 400


def machine_facts(threads: int = 0) -> dict[str, Any]:
    """What a reader needs to compare timings: CPU, cores, threads, library versions."""
    facts = {
        "hanformer": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(terse=True),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if threads:
        facts["threads_requested"] = threads
    facts["tokenizers"] = tokenizers.__version__
    return facts


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash; the rest is still worth plotting
    return rows


def _thin(rows: list[dict[str, Any]], limit: int = _MAX_CURVE_POINTS) -> list[dict[str, Any]]:
    if len(rows) <= limit:
        return rows
    stride = len(rows) / limit
    kept = [rows[int(i * stride)] for i in range(limit)]
    if kept[-1] is not rows[-1]:
        kept.append(rows[-1])
    return kept


def curves_from_metrics(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Split trainer records by kind ("train"/"eval"), keeping numeric fields only."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        kind = str(r.get("kind", "train"))
        numeric = {k: v for k, v in r.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "time"}
        if "step" in numeric:
            out.setdefault(kind, []).append(numeric)
    return {k: _thin(v) for k, v in out.items()}


def collect_report_data(recipe: Any, run_dir: Path, stages: list[dict[str, Any]],
                        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the report shows, as a JSON-ready dict (this is `metrics.json`).

    `stages`: one record per stage of this run (key, title, action, reason, seconds, budget).
    `extra`: what the report stage computed itself (the attention of the example sentence).
    """
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    data: dict[str, Any] = {
        "run": {
            "name": recipe.name,
            "description": recipe.run.description,
            "recipe": str(recipe.path),
            "recipe_text": Path(recipe.path).read_text(encoding="utf-8") if Path(recipe.path).is_file() else "",
            "run_dir": str(run_dir),
            "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seed": recipe.run.seed,
        },
        "machine": machine_facts(recipe.run.threads),
        "stages": stages,
    }
    tok = _manifest(layout.tokenizer_dir)
    if tok:
        data["tokenizer"] = tok.get("summary", {})
    pre = _manifest(layout.pretrain_dir())
    if pre:
        rows = read_jsonl(layout.pretrain_metrics())
        data["pretrain"] = {"final": pre.get("summary", {}), "curves": curves_from_metrics(rows)}
    variants = {}
    for variant, changes in getattr(recipe, "variants", {}).items():
        man = _manifest(layout.pretrain_dir(variant))
        variants[variant] = {"description": changes.description, "data": changes.data, "pretrain": changes.pretrain,
                             "final": (man or {}).get("summary", {}),
                             "curves": curves_from_metrics(read_jsonl(layout.pretrain_metrics(variant)))}
    if variants:
        data["variants"] = variants
    results = _evaluation_results(layout)
    stage_keys = {str(s.get("key")) for s in stages}
    inits = initialisations(list(variants))
    tasks: dict[str, Any] = {}
    for name in recipe.finetune:
        entry = _task_entry(layout, name, inits, results.get(name, {}), stage_keys)
        if entry["runs"]:
            tasks[name] = entry
    data["tasks"] = tasks
    data["comparison"] = _comparison(tasks, list(variants))
    if extra:
        data.update(extra)
    return data


def _evaluation_results(layout: RunLayout) -> dict[str, Any]:
    """The evaluate stage's results per task, when it completed."""
    if not _manifest(layout.evaluate_dir) or not layout.evaluate_results.is_file():
        return {}
    return json.loads(layout.evaluate_results.read_text(encoding="utf-8")).get("tasks", {})


def _task_entry(layout: RunLayout, name: str, inits: tuple[str, ...], results: dict[str, Any],
                stage_keys: set[str]) -> dict[str, Any]:
    """One task's data: its fine-tuning runs from each of `inits` (validation scores, curves,
    held-out results) and its baseline."""
    entry: dict[str, Any] = {"runs": {}}
    entry.update({k: v for k, v in results.items() if k != "runs"})
    for init in inits:
        man = _manifest(layout.finetune_dir(name, init))
        if not man:
            continue
        summary = man.get("summary", {})
        # Curves of the first seed when the runs were repeated.
        rows = read_jsonl(layout.finetune_metrics(name, init, summary.get("seeds") or []))
        run = {"valid": summary.get("valid", {}), "seconds": man.get("seconds"),
               "curves": curves_from_metrics(rows),
               **{k: summary[k] for k in ("valid_std", "seeds", "valid_runs", "valid_majority", "valid_answer_types") if k in summary}}
        run.update(results.get("runs", {}).get(init, {}))
        entry["runs"][init] = run
    baseline = _tfidf_baseline(layout, name, stage_keys)
    if baseline:
        entry["tfidf_baseline"] = baseline
    return entry


def _tfidf_baseline(layout: RunLayout, name: str, stage_keys: set[str]) -> dict[str, Any] | None:
    """The TF-IDF baseline of task `name` (scores on the validation carve and the held-out file),
    when this recipe has that stage: the folder of an earlier run that had one is not read."""
    key = baseline_key(name)
    man = _manifest(layout.stage_dir(key)) if key in stage_keys else None
    if not man:
        return None
    return {**man.get("summary", {}), "seconds": man.get("seconds")}


def _manifest(stage_dir: Path) -> dict[str, Any] | None:
    """A stage's manifest, if the stage completed."""
    man = read_manifest(stage_dir)
    return man if man and man.get("status") == "complete" else None


def _comparison(tasks: dict[str, Any], variants: list[str]) -> dict[str, Any]:
    """Per task: the primary held-out metric of the pretrained and the from-scratch model, the
    baselines, and each variant's model with its lead over the recipe's pretrained one
    (`gain_of_<variant>`)."""
    out = {}
    for name, entry in tasks.items():
        runs = entry["runs"]
        ref = runs.get("pretrained") or next(iter(runs.values()))
        scores = ref.get("test") or ref.get("valid") or {}
        metric = primary_metric(scores)
        if metric is None:
            continue
        row: dict[str, Any] = {"metric": metric, "on": "held-out" if ref.get("test") else "validation"}
        for init, run in runs.items():
            part = "test" if run.get("test") else "valid"
            row[init] = (run.get(part) or {}).get(metric)
            std = (run.get(f"{part}_std") or {}).get(metric)
            if std is not None:
                row[f"{init}_std"], row["seeds"] = std, len(run.get("seeds") or [])
            floor = run.get(f"{part}_majority") or {}
            if isinstance(floor.get(metric), (int, float)):
                row["majority"], row["majority_label"] = floor[metric], floor.get("label")
        tfidf = (entry.get("tfidf_baseline") or {}).get("test" if row["on"] == "held-out" else "valid") or {}
        if isinstance(tfidf.get(metric), (int, float)):
            row["tfidf"] = tfidf[metric]
        pretrained = row.get("pretrained")
        if isinstance(pretrained, (int, float)):
            for other, key in (("scratch", "gain"), ("tfidf", "gain_over_tfidf"), ("majority", "gain_over_majority")):
                if isinstance(row.get(other), (int, float)):
                    row[key] = pretrained - row[other]
            for variant in variants:
                if isinstance(row.get(variant), (int, float)):
                    row[f"gain_of_{variant}"] = row[variant] - pretrained
        if variants:
            row["variants"] = [v for v in variants if v in runs]
        out[name] = row
    return out
