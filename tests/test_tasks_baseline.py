"""The TF-IDF + logistic-regression baseline: same carve as finetune, sensible accuracy."""

from __future__ import annotations

import json

import pytest

from hanformer.cli.main import main

pytest.importorskip("sklearn")


def test_baseline_cli_learns_a_separable_task(tmp_path, capsys):
    rows = ["id\tdocument\tlabel"]
    for i in range(200):
        rows.append(f"{i}\t{'정말 재밌다' if i % 2 else '너무 지루하다'} {i}\t{i % 2}")
    rows.append("x\tbroken row")
    train = tmp_path / "train.txt"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "baseline.json"
    rc = main(["baseline", "--task", "nsmc", "--train", str(train), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "skipped 1 malformed rows" in captured.err
    report = json.loads(out.read_text())
    assert report["valid_examples"] == 20 and report["train_examples"] == 180
    assert report["metrics"]["accuracy"] == 1.0


def test_baseline_rejects_non_classification_tasks(capsys):
    assert main(["baseline", "--task", "korquad", "--train", "x.json"]) == 2
    assert "classification tasks" in capsys.readouterr().err
