"""`answer_types = true` on a QA task: each seed's best model is scored by answer type, the
scores join the validation metrics (mean and spread over seeds), and the report's task table
shows them with a note on what they count."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import hanformer.recipes.stages.finetune as finetune_stage
from hanformer.recipes.report.task_section import task_section
from hanformer.tasks.finetune_config import ExampleSplit, FinetuneConfig, FinetuneResult


def _result(f1: float) -> FinetuneResult:
    return FinetuneResult(output_dir=Path("o"), model_dir=Path("o/best"), best_metrics={"f1": f1},
                          train_examples=10, valid_examples=4, skipped=0, steps=3, stopped="epochs")


def test_seed_scores_by_answer_type_join_the_validation_metrics(monkeypatch):
    seeds = [_result(10.0), _result(14.0)]
    result = _result(12.0)
    result.runs, result.summary = seeds, {"f1": {"mean": 12.0, "std": 2.8284}}
    monkeypatch.setattr(finetune_stage, "finetune", lambda config, resume, log: result)
    monkeypatch.setattr(finetune_stage, "read_split", lambda task, config, log: ExampleSplit([], ["q"], 0, True))
    seen = {}

    def by_type(dirs, task, examples):
        seen.update(dirs=dirs, task=task, examples=examples)
        return {"runs": [{"entity_answer_f1": 5.0, "other_answer_f1": 15.0},
                         {"entity_answer_f1": 9.0, "other_answer_f1": 19.0}],
                "questions": {"entity": 1, "other": 3}, "tags": ["NNP"]}

    monkeypatch.setattr(finetune_stage, "scores_by_answer_type", by_type)
    config = FinetuneConfig(task="korquad", model="m", train="t.json", seeds=[1, 2])
    dirs = [Path("seed-1/best"), Path("seed-2/best")]
    ctx = SimpleNamespace(resume=False, log=lambda _: None, stage=SimpleNamespace(key="finetune/korquad/pretrained"))
    out = finetune_stage._finetune_run(config, dirs)(ctx)
    assert seen == {"dirs": dirs, "task": "korquad", "examples": ["q"]}
    assert out["valid"]["entity_answer_f1"] == pytest.approx(7.0)
    assert out["valid"]["other_answer_f1"] == pytest.approx(17.0)
    assert out["valid_std"]["entity_answer_f1"] == pytest.approx(2 ** 1.5)
    assert [r["entity_answer_f1"] for r in out["valid_runs"]] == [5.0, 9.0]
    assert out["valid_answer_types"] == {"questions": {"entity": 1, "other": 3}, "tags": ["NNP"]}


def test_report_table_shows_the_split_and_says_what_it_counts():
    run = {"valid": {"f1": 14.0, "entity_answer_f1": 7.5, "other_answer_f1": 18.8}, "seconds": 60.0,
           "valid_answer_types": {"questions": {"entity": 184, "other": 250}, "tags": ["NNP"]}}
    entities = {**run, "valid": {"f1": 14.1, "entity_answer_f1": 9.5, "other_answer_f1": 17.6}}
    html = task_section("korquad", {"runs": {"pretrained": run, "entities": entities}}, {})
    assert "validation (best): entity_answer_f1" in html and "validation (best): other_answer_f1" in html
    assert "entities − pretrained" in html and "+2" in html
    assert "184 validation questions whose gold answer overlaps a span Kiwi tags NNP" in html
