"""The report's data of every `[translation.<name>]` table: what its three stages left in the run
folder (the pair counts, the trainer's curves and sizes, the scores of each decoding, the
worst-scored translations, the cross-attention pictures), as JSON-ready dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hanformer.recipes.caching import read_manifest
from hanformer.recipes.recipe import TranslationSection
from hanformer.recipes.report.collect import curves_from_metrics, read_jsonl
from hanformer.recipes.stages.translation_paths import (
    DATA_PART,
    DECODINGS,
    SCORE_PART,
    TRAIN_PART,
    TranslationLayout,
    translation_key,
)


def worst_first(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The `count` translations with the lowest sentence chrF (then sentence BLEU, then file order)."""
    ranked = sorted(enumerate(rows), key=lambda item: (item[1].get("chrf", 0.0), item[1].get("bleu", 0.0), item[0]))
    return [row for _, row in ranked[:count]]


def lead_decoding(scores: dict[str, Any]) -> str | None:
    """The decoding the report leads with: beam search when it was scored, else greedy."""
    done = [d for d in DECODINGS if d in scores.get("decodings", {})]
    return done[-1] if done else None


def completed_summary(stage_dir: Path) -> dict[str, Any] | None:
    """A completed stage's summary, with its seconds; None when it did not complete."""
    man = read_manifest(stage_dir)
    if not man or man.get("status") != "complete":
        return None
    return {**man.get("summary", {}), "seconds": man.get("seconds")}


def _corpus_names(tables: list[dict[str, Any]]) -> list[str]:
    return [" + ".join(str(t[k]) for k in ("file", "source", "target") if t.get(k)) for t in tables]


def _architecture(layout: TranslationLayout) -> dict[str, Any]:
    """What the train stage built (architecture, attention, size preset), from the settings it recorded."""
    settings = (read_manifest(layout.stage_dir(TRAIN_PART)) or {}).get("settings") or {}
    return {k: settings[k] for k in ("architecture", "attention", "model") if k in settings}


def translation_entry(run_dir: Path, name: str, sec: TranslationSection, stage_keys: set[str]) -> dict[str, Any] | None:
    """Table `name`'s data, from the stages of this recipe that completed (None if none did)."""
    layout = TranslationLayout(run_dir, name)
    parts = {part: completed_summary(layout.stage_dir(part)) if translation_key(name, part) in stage_keys else None
             for part in (DATA_PART, TRAIN_PART, SCORE_PART)}
    if parts[TRAIN_PART] is None and parts[SCORE_PART] is None:
        return None
    entry: dict[str, Any] = {"train_corpora": _corpus_names(sec.train), "valid_corpora": _corpus_names(sec.valid),
                             "data": parts[DATA_PART] or {}, "train": parts[TRAIN_PART] or {},
                             "curves": curves_from_metrics(read_jsonl(layout.train_metrics)),
                             "architecture": _architecture(layout)}
    scored = parts[SCORE_PART]
    if scored is not None and layout.scores_file.is_file():
        scores = json.loads(layout.scores_file.read_text(encoding="utf-8"))
        entry["scores"] = scores
        entry["score_seconds"] = scored.get("seconds")
        lead = lead_decoding(scores)
        if lead is not None:
            entry["examples_decoding"] = lead
            entry["examples"] = worst_first(read_jsonl(layout.sentences_file(lead)), sec.examples)
        if layout.alignments_file.is_file():
            entry["alignments"] = json.loads(layout.alignments_file.read_text(encoding="utf-8"))["alignments"]
    return entry


def collect_translations(recipe: Any, run_dir: Path, stage_keys: set[str]) -> dict[str, Any]:
    """Every translation table's data (see `translation_entry`), by table name."""
    out = {}
    for name, sec in recipe.translation.items():
        entry = translation_entry(Path(run_dir), name, sec, stage_keys)
        if entry is not None:
            out[name] = entry
    return out
