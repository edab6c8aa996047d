"""The main job end to end on a tiny recipe: every stage runs, the report and metrics are sane,
and a second run skips everything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hanformer.cli.main import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_recipe_runs_every_stage_then_skips(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the recipe's paths are relative to the repository root
    out = tmp_path / "runs"
    assert main(["run", "recipes/tiny.toml", "--out-dir", str(out)]) == 0
    run_dir = out / "tiny"
    report = run_dir / "report.html"
    metrics_path = run_dir / "metrics.json"
    assert report.is_file() and metrics_path.is_file()
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))

    stages = [s["key"] for s in metrics["stages"]]
    assert stages == ["tokenizer", "data", "pretrain", "finetune/nsmc/pretrained", "finetune/nsmc/scratch",
                      "finetune/nsmc/tfidf", "evaluate", "report"]
    assert all(s["action"] == "run" for s in metrics["stages"])

    tok = metrics["tokenizer"]
    assert 100 <= tok["vocab_size"] <= 3000
    assert 0.0 <= tok["unk_rate"] < 0.05  # NSMC reviews the vocabulary was not trained on
    assert 1.0 <= tok["tokens_per_eojeol"] < 10

    train_curve = metrics["pretrain"]["curves"]["train"]
    assert train_curve and all(r["loss"] > 0 for r in train_curve)
    assert any("lr" in r for r in train_curve)

    nsmc = metrics["tasks"]["nsmc"]
    assert set(nsmc["runs"]) == {"pretrained", "scratch"}
    for init, run in nsmc["runs"].items():
        acc = run["test"]["accuracy"]
        assert 0.0 <= acc <= 1.0, init
        matrix = run["confusion"]
        assert sum(map(sum, matrix)) == nsmc["n"]  # every held-out review lands in one cell
        # accuracy read back from the confusion matrix equals the evaluator's
        assert abs((matrix[0][0] + matrix[1][1]) / nsmc["n"] - acc) < 1e-9
        assert run["examples"] and {"text", "gold", "prediction", "correct"} <= set(run["examples"][0])
    comp = metrics["comparison"]["nsmc"]
    assert comp["metric"] == "accuracy" and comp["gain"] == pytest.approx(comp["pretrained"] - comp["scratch"])
    # the floor on the same held-out reviews: always one class, named as the report names labels
    assert comp["majority_label"] in ("negative", "positive") and 0.3 < comp["majority"] < 0.7
    # the TF-IDF baseline on the same 200 training reviews and the same 200 held-out ones
    baseline = nsmc["tfidf_baseline"]
    assert (baseline["train_examples"], baseline["valid_examples"], baseline["test_examples"]) == (200, 64, 200)
    assert comp["tfidf"] == baseline["test"]["accuracy"] and 0.5 < comp["tfidf"] < 0.9
    valid_floor = nsmc["runs"]["scratch"]["valid_majority"]
    assert valid_floor["label"] in ("negative", "positive") and 0.3 < valid_floor["accuracy"] < 0.7

    att = metrics["attention"]
    assert att["tokens"][0] == "[CLS]" and att["tokens"][-1] == "[SEP]"
    for head in att["heads"]:
        for row in head:
            assert abs(sum(row) - 1) < 0.02  # attention rows are distributions (rounded to 4 places)

    html = report.read_text(encoding="utf-8")
    assert html.count("<svg") >= 4
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)  # self-contained: nothing to fetch
    assert "pretrained" in html and "scratch" in html and "Confusion matrix" in html
    assert f"always answering the most frequent class ({comp['majority_label']})" in html
    assert "Always answering the most frequent training class" in html

    # Second run: everything is cached.
    capsys.readouterr()
    assert main(["run", "recipes/tiny.toml", "--out-dir", str(out)]) == 0
    again = json.loads(metrics_path.read_text(encoding="utf-8"))
    assert all(s["action"] == "skip" for s in again["stages"])
    err = capsys.readouterr().err
    assert "skip   pretrain" in err


@pytest.mark.slow
def test_recipe_with_electra_pretraining_and_repeated_seeds(tmp_path, monkeypatch):
    """`objective = "rtd"` pretrains ELECTRA-style and fine-tunes its discriminator; `seeds`
    repeats each fine-tuning run and the report gives mean ± std over them."""
    monkeypatch.chdir(REPO)
    text = (REPO / "recipes" / "tiny.toml").read_text(encoding="utf-8")
    text = text.replace('[pretrain]\n', '[pretrain]\nobjective = "rtd"\n')
    text = text.replace('[finetune.nsmc]\n', '[finetune.nsmc]\nseeds = [3, 4]\n')
    recipe = tmp_path / "tiny-rtd.toml"
    recipe.write_text(text.replace('name = "tiny"', 'name = "tiny-rtd"'), encoding="utf-8")
    out = tmp_path / "runs"
    assert main(["run", str(recipe), "--out-dir", str(out)]) == 0
    run_dir = out / "tiny-rtd"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))

    pre = next(s for s in metrics["stages"] if s["key"] == "pretrain")
    assert "replaced-token detection" in pre["title"]
    last = metrics["pretrain"]["curves"]["eval"][-1]
    assert 0.5 <= last["rtd_baseline_accuracy"] <= 1 and "nsp_accuracy" not in last
    config = json.loads((run_dir / "pretrain" / "final" / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertModel"]

    for init, run in metrics["tasks"]["nsmc"]["runs"].items():
        assert run["seeds"] == [3, 4], init
        assert all((run_dir / "finetune" / "nsmc" / init / f"seed-{s}" / "best").is_dir() for s in (3, 4))
        per_seed = [r["accuracy"] for r in run["test_runs"]]
        assert len(per_seed) == 2
        assert run["test"]["accuracy"] == pytest.approx(sum(per_seed) / 2)
        assert run["test_std"]["accuracy"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2 ** 0.5)
    comp = metrics["comparison"]["nsmc"]
    assert comp["seeds"] == 2 and "pretrained_std" in comp and "scratch_std" in comp
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Replaced-token detection" in html and "mean of 2 seeds" in html and " ± " in html


@pytest.mark.slow
def test_recipe_variants_pretrain_beside_the_recipe_and_fine_tune_every_task(tmp_path, monkeypatch):
    """`[variant.<name>]` pretrains a second model from the same text and tokenizer with some
    settings changed (its own shards only when it changes [data]), fine-tunes every task from it
    with the same settings, and the report puts it beside the recipe's own pretrained model."""
    pytest.importorskip("kiwipiepy")
    monkeypatch.chdir(REPO)
    text = (REPO / "recipes" / "tiny.toml").read_text(encoding="utf-8").replace('name = "tiny"', 'name = "tiny-var"')
    text = text.replace("[finetune.nsmc]\n", '[variant.entities]\ndescription = "Kiwi\'s proper nouns marked"\n'
                        'data = { entity = { entities = "kiwi" } }\n\n'
                        '[variant.mlm]\npretrain = { objective = "mlm" }\n\n[finetune.nsmc]\n')
    recipe = tmp_path / "tiny-var.toml"
    recipe.write_text(text, encoding="utf-8")
    out = tmp_path / "runs"
    assert main(["run", str(recipe), "--out-dir", str(out)]) == 0
    run_dir = out / "tiny-var"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))

    assert [s["key"] for s in metrics["stages"]] == [
        "tokenizer", "data", "pretrain", "variant/entities/data", "variant/entities/pretrain", "variant/mlm/pretrain",
        "finetune/nsmc/pretrained", "finetune/nsmc/entities", "finetune/nsmc/mlm", "finetune/nsmc/scratch",
        "finetune/nsmc/tfidf", "evaluate", "report"]
    # The entity variant pretrained on its own shards, with the markers and the entity table ...
    entity_model = json.loads((run_dir / "variant/entities/pretrain/final/config.json").read_text(encoding="utf-8"))
    assert entity_model["entity_type_vocab_size"] == 2
    assert json.loads((run_dir / "pretrain/final/config.json").read_text(encoding="utf-8")).get(
        "entity_type_vocab_size", 0) == 0
    # ... and kept them when fine-tuned; the masked-LM-only variant read the recipe's own shards.
    tuned = json.loads((run_dir / "finetune/nsmc/entities/best/config.json").read_text(encoding="utf-8"))
    assert tuned["entity_type_vocab_size"] == 2
    assert not (run_dir / "variant/mlm/data").exists()
    assert "nsp_accuracy" not in metrics["variants"]["mlm"]["curves"]["eval"][-1]
    assert "nsp_accuracy" in metrics["pretrain"]["curves"]["eval"][-1]

    runs = metrics["tasks"]["nsmc"]["runs"]
    assert set(runs) == {"pretrained", "entities", "mlm", "scratch"}
    comp = metrics["comparison"]["nsmc"]
    assert comp["variants"] == ["entities", "mlm"]
    for variant in ("entities", "mlm"):
        assert comp[variant] == runs[variant]["test"]["accuracy"]
        assert comp[f"gain_of_{variant}"] == pytest.approx(comp[variant] - comp["pretrained"])
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Pretraining — variant entities" in html and "Kiwi&#x27;s proper nouns marked" in html
    assert "variant mlm − pretrained" in html
