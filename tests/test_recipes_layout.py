"""One layout for every path of a run, and a report rendered once per run from the published data."""

from __future__ import annotations

from pathlib import Path

import hanformer.recipes.run as run_module
from hanformer.recipes import run_recipe
from hanformer.recipes.layout import RunLayout, baseline_key, data_key, finetune_key, pretrain_key
from hanformer.recipes.report.render import stylesheet


def test_run_layout_spells_the_documented_paths():
    layout = RunLayout(Path("runs/demo"))
    assert layout.shards_dir() == Path("runs/demo/data/shards")
    assert layout.pretrained_model() == Path("runs/demo/pretrain/final")
    assert layout.shards_dir("entities") == Path("runs/demo/variant/entities/data/shards")
    assert layout.pretrained_model("entities") == Path("runs/demo/variant/entities/pretrain/final")
    assert (data_key("entities"), pretrain_key(None)) == ("variant/entities/data", "pretrain")
    assert finetune_key("nsmc", "scratch") == "finetune/nsmc/scratch"
    assert baseline_key("nsmc") == "finetune/nsmc/tfidf"
    assert layout.best_dirs("nsmc", "pretrained", []) == [Path("runs/demo/finetune/nsmc/pretrained/best")]
    assert layout.best_dirs("nsmc", "scratch", [3, 4]) == [Path("runs/demo/finetune/nsmc/scratch/seed-3/best"),
                                                           Path("runs/demo/finetune/nsmc/scratch/seed-4/best")]
    assert layout.finetune_metrics("nsmc", "scratch", [3, 4]) == Path(
        "runs/demo/finetune/nsmc/scratch/seed-3/metrics.jsonl")
    assert layout.evaluation_file("nsmc", "scratch", 3) == Path("runs/demo/evaluate/nsmc-scratch-seed3.json")
    assert layout.evaluation_file("nsmc", "scratch", None) == Path("runs/demo/evaluate/nsmc-scratch.json")
    assert (layout.report_data, layout.published_report) == (Path("runs/demo/report/metrics.json"),
                                                             Path("runs/demo/report.html"))


def test_the_report_is_rendered_once_per_run_with_that_runs_stage_table(tmp_path, monkeypatch):
    recipe = tmp_path / "only-report.toml"
    recipe.write_text('[run]\nname = "r"\n\n[report]\ntitle = "Only the report"\n', encoding="utf-8")
    rendered: list[dict] = []
    real = run_module.render_report
    monkeypatch.setattr(run_module, "render_report", lambda data: rendered.append(data) or real(data))

    first = run_recipe(recipe, out_dir=tmp_path / "runs", log=lambda _: None)
    layout = RunLayout(tmp_path / "runs" / "r")
    # The stage keeps only its data; the one rendering is the published page.
    assert sorted(p.name for p in layout.report_dir.iterdir()) == ["metrics.json", "stage.json"]
    assert [d["stages"][0]["action"] for d in rendered] == ["run"]
    html = first.report.read_text(encoding="utf-8") if first.report else ""
    assert first.report == layout.published_report and "<h1>Only the report</h1>" in html
    assert f"<style>{stylesheet()}</style>" in html and ".card .v {" in stylesheet()

    second = run_recipe(recipe, out_dir=tmp_path / "runs", log=lambda _: None)
    assert second.skipped == ["report"]
    assert [d["stages"][0]["action"] for d in rendered] == ["run", "skip"]
    assert "skipped (cached)" in layout.published_report.read_text(encoding="utf-8")
