"""The `[report]` stage: collect every stage's results into `report/metrics.json`, with the
attention of one sentence (`report/attention.html`). The HTML report is rendered once, from
this data plus the stage table of the run, when the run publishes it (`recipes/run.py`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hanformer.models.checkpoint import load_model
from hanformer.recipes.caching import Stage, StageContext, read_manifest
from hanformer.recipes.layout import REPORT, REPORT_DATA, RunLayout
from hanformer.recipes.recipe import Recipe
from hanformer.recipes.report.collect import collect_report_data
from hanformer.recipes.report.lm_collect import collect_language_models
from hanformer.recipes.report.translation_collect import collect_translations
from hanformer.recipes.stages.baseline import baseline_absence
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.files import atomic_write_json
from hanformer.visualization.attention import attention_data
from hanformer.visualization.html import write_attention_html


def report_stage(recipe: Recipe, stage_keys: list[str]) -> Stage:
    sec = recipe.report
    assert sec is not None
    layout = RunLayout(recipe.run_dir)
    no_baseline = {name: why for name, task in recipe.finetune.items()
                   if (why := baseline_absence(recipe, name, task)) is not None}
    attention_model = layout.pretrained_model() if recipe.pretrain is not None else None

    def run(ctx: StageContext) -> dict[str, Any]:
        records = []
        for key in stage_keys:
            man = read_manifest(layout.stage_dir(key)) or {}
            records.append({"key": key, "title": man.get("title", ""), "action": "run",
                            "reason": "", "seconds": man.get("seconds")})
        extra: dict[str, Any] = {"title": sec.title or f"hanformer run: {recipe.name}"}
        if attention_model is not None and sec.attention_text:
            extra["attention"] = _attention(attention_model, sec.attention_text, sec.attention_layer, layout)
        if recipe.translation:
            extra["translations"] = collect_translations(recipe, recipe.run_dir, set(stage_keys))
        language_models = collect_language_models(recipe, recipe.run_dir, set(stage_keys))
        if language_models is not None:
            extra["language_models"] = language_models
        data = collect_report_data(recipe, recipe.run_dir, records, extra)
        for name, why in no_baseline.items():
            if name in data["tasks"]:
                data["tasks"][name]["tfidf_baseline_absent"] = why
        atomic_write_json(layout.report_data, data)
        return {"comparison": data.get("comparison", {})}

    return Stage(key=REPORT, title="write report.html and metrics.json", run=run,
                 settings=dataclasses.asdict(sec), inputs=[recipe.path], upstream={k: "" for k in stage_keys},
                 outputs=[REPORT_DATA])


def _attention(model_dir: Path, text: str, layer: int, layout: RunLayout) -> dict[str, Any]:
    """The attention of `text` in one layer for the report's picture; the interactive head and
    model views of all layers go beside the report data (the visualization's own page)."""
    model = load_model(model_dir)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    data = attention_data(model, tokenizer, text)
    write_attention_html(data, layout.attention_html, title="Attention of the pretrained model",
                         model_name=str(model_dir))
    layers = data.num_layers
    layer = layer if layer >= 0 else layers + layer
    layer = max(0, min(layers - 1, layer))
    heads = [[[round(float(v), 4) for v in row] for row in head] for head in data.attentions[layer].tolist()]
    return {"text": text, "tokens": list(data.tokens), "layer": layer, "layers": layers,
            "heads": heads, "model": str(model_dir), "html": layout.attention_link}
