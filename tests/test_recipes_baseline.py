"""The TF-IDF + logistic-regression baseline beside every classification result of a recipe:
trained on the examples fine-tuning reads, scored on the examples evaluation scores, in
metrics.json and report.html, cached, skippable, and absent for tasks other than classification.

The recipes fine-tune a tiny random checkpoint for a few steps (no pretraining), so a run takes
seconds; the models' scores are noise, the bookkeeping is checked exactly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from _tiny_checkpoints import make_checkpoint, make_tokenizer
from hanformer.cli.main import main
from hanformer.errors import ConfigError
from hanformer.recipes import run_recipe
from hanformer.tasks.baseline import BaselineConfig, baseline_split, held_out_examples, run_baseline

pytest.importorskip("sklearn")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "nsmc-sample"
SEED = 7
CARVE = {"valid_fraction": 0.25, "split_seed": 3, "max_train_examples": 90, "max_valid_examples": 30}
HELD_OUT = 50


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ckpt")
    return make_checkpoint(root / "bert", make_tokenizer(root / "tok"), "BertForPreTraining")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Slices of the NSMC sample (a carve and subsets are taken from them) and a tiny CoNLL file."""
    root = tmp_path_factory.mktemp("data")
    train, test = root / "train.tsv", root / "test.tsv"
    train.write_text("".join((SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines(True)[:241]),
                     encoding="utf-8")
    test.write_text("".join((SAMPLE / "test.tsv").read_text(encoding="utf-8").splitlines(True)[:121]),
                    encoding="utf-8")
    ner = root / "ner.txt"
    ner.write_text("".join(f"John B-PER\nlives O\nin O\nSeoul B-LOC\nday{i} O\n\n" for i in range(24)),
                   encoding="utf-8")
    return {"train": train, "test": test, "ner": ner}


def write_recipe(path: Path, checkpoint: Path, files: dict[str, Path], nsmc_extra: str = "",
                 ner_extra: str = "") -> Path:
    carve = "".join(f"{k} = {v}\n" for k, v in CARVE.items())
    path.write_text(f"""
[run]
name = "base"
out_dir = "{(path.parent / 'runs').as_posix()}"
seed = {SEED}
threads = 1

[finetune.nsmc]
model = "{checkpoint.as_posix()}"
train = "{files['train'].as_posix()}"
test = "{files['test'].as_posix()}"
{carve}max_length = 24
batch_size = 16
max_steps = 2
progress = false
tensorboard = false
{nsmc_extra}
[finetune.ner]
task = "conll2003"
model = "{checkpoint.as_posix()}"
train = "{files['ner'].as_posix()}"
scratch = false
max_length = 16
batch_size = 8
max_steps = 1
progress = false
tensorboard = false
{ner_extra}
[evaluate]
max_examples = {HELD_OUT}
examples = 2

[report]
attention_text = ""
""", encoding="utf-8")
    return path


def direct_config(files: dict[str, Path]) -> BaselineConfig:
    """The baseline run by hand on the recipe's data, with the recipe's carve and held-out subset."""
    return BaselineConfig(task="nsmc", train=str(files["train"]), test=str(files["test"]),
                          max_test_examples=HELD_OUT, test_seed=SEED, **CARVE)


class Spy:
    """Records the examples fine-tuning encodes (its training and validation parts) and every set
    of examples a model is scored on, by source (file:line), calling the real functions."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        import hanformer.tasks.finetune as finetune_module
        import hanformer.tasks.inference as inference

        self.encoded: dict[tuple[str, bool], list[list[str]]] = {}
        self.scored: list[list[str]] = []
        encode, score = inference.encode_examples, inference.score_examples

        def encode_spy(task: Any, encoder: Any, examples: Any, *args: Any, with_labels: bool = True,
                       **kwargs: Any) -> Any:
            self.encoded.setdefault((task.name, with_labels), []).append([e.source for e in examples])
            return encode(task, encoder, examples, *args, with_labels=with_labels, **kwargs)

        def score_spy(task: Any, model: Any, encoder: Any, examples: Any, *args: Any, **kwargs: Any) -> Any:
            self.scored.append([e.source for e in examples])
            return score(task, model, encoder, examples, *args, **kwargs)

        # Fine-tuning binds these names at import, evaluation looks them up in `inference`.
        for module in (inference, finetune_module):
            monkeypatch.setattr(module, "encode_examples", encode_spy)
            monkeypatch.setattr(module, "score_examples", score_spy)


@pytest.mark.slow
def test_baseline_beside_the_models_on_the_same_examples(tmp_path, checkpoint, files, monkeypatch):
    spy = Spy(monkeypatch)
    recipe = write_recipe(tmp_path / "recipe.toml", checkpoint, files)
    result = run_recipe(recipe, log=quiet)
    run_dir = tmp_path / "runs" / "base"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))

    keys = [s["key"] for s in metrics["stages"]]
    assert keys == ["finetune/nsmc/pretrained", "finetune/nsmc/scratch", "finetune/nsmc/tfidf",
                    "finetune/ner/pretrained", "evaluate", "report"]

    # The same carve: the baseline's training and validation parts are the examples both
    # fine-tuning runs encoded, id for id (with max_valid_examples, which it used to ignore).
    config = direct_config(files)
    split = baseline_split(config, log=quiet)
    train_ids, valid_ids = [e.source for e in split.train], [e.source for e in split.valid]
    assert len(train_ids) == CARVE["max_train_examples"] and len(valid_ids) == CARVE["max_valid_examples"]
    assert spy.encoded[("nsmc", True)] == [train_ids, train_ids]      # pretrained, scratch
    assert spy.encoded[("nsmc", False)][:2] == [valid_ids, valid_ids]  # then scoring encodes held-out ones
    # ... and the held-out examples are the ones every model was scored on.
    test_ids = [e.source for e in held_out_examples(config, log=quiet)]
    assert len(test_ids) == HELD_OUT
    assert sum(ids == test_ids for ids in spy.scored) == 2

    # metrics.json holds exactly what the baseline gives when run by hand on the same data.
    direct = run_baseline(config, log=quiet)
    baseline = metrics["tasks"]["nsmc"]["tfidf_baseline"]
    assert baseline["valid"] == direct["metrics"] and baseline["test"] == direct["test"]["metrics"]
    assert (baseline["train_examples"], baseline["valid_examples"], baseline["test_examples"]) == (90, 30, 50)
    comp = metrics["comparison"]["nsmc"]
    assert comp["on"] == "held-out" and comp["tfidf"] == direct["test"]["metrics"]["accuracy"]
    assert comp["gain_over_tfidf"] == pytest.approx(comp["pretrained"] - comp["tfidf"])
    assert comp["gain_over_majority"] == pytest.approx(comp["pretrained"] - comp["majority"])

    # The report: a TF-IDF column with its held-out and validation scores, and the gaps said.
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert '<span class="base">TF-IDF</span>' in html and "pretrained − TF-IDF" in html
    for part, name in (("test", "held-out"), ("valid", "validation (best)")):
        acc = 100 * baseline[part]["accuracy"]
        assert f'<td>{name}: accuracy</td>' in html
        assert f'<td class="num">{acc:.2f}%</td>' in html, part
    assert (f"Pretrained − from scratch = {100 * comp['gain']:+.2f} points; "
            f"pretrained − TF-IDF = {100 * comp['gain_over_tfidf']:+.2f} points; "
            f"pretrained − majority class = {100 * comp['gain_over_majority']:+.2f} points.") in html
    assert f"/ TF-IDF {100 * comp['tfidf']:.2f}% / majority class {100 * comp['majority']:.2f}%." in html

    # NER gets no baseline: no stage, nothing in metrics.json, no note in its section.
    assert "tfidf_baseline" not in metrics["tasks"]["ner"] and "tfidf" not in metrics["comparison"].get("ner", {})
    assert "tfidf_baseline_absent" not in metrics["tasks"]["ner"]
    assert not (run_dir / "finetune" / "ner" / "tfidf").exists()

    # Cached like every stage: a second run skips it.
    again = run_recipe(recipe, log=quiet)
    assert "finetune/nsmc/tfidf" in again.skipped and again.ran == []
    assert result.ran == keys

    # `baseline = false` drops the stage and its row (the folder left by the run above is not
    # read); the fine-tuning runs stay cached, only the report is redone.
    write_recipe(recipe, checkpoint, files, nsmc_extra="baseline = false\n")
    off = run_recipe(recipe, log=quiet)
    assert "finetune/nsmc/tfidf" not in [d.stage.key for d in off.decisions]
    assert off.ran == ["report"]
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert "tfidf_baseline" not in metrics["tasks"]["nsmc"] and "tfidf" not in metrics["comparison"]["nsmc"]
    assert metrics["tasks"]["nsmc"]["tfidf_baseline_absent"] == "switched off in the recipe (baseline = false)"
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "No TF-IDF baseline: switched off in the recipe (baseline = false)." in html
    assert '<span class="base">TF-IDF</span>' not in html


def test_baseline_true_on_a_token_task_is_refused_before_work(tmp_path, checkpoint, files, capsys):
    recipe = write_recipe(tmp_path / "recipe.toml", checkpoint, files, ner_extra="baseline = true\n")
    assert main(["run", str(recipe), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hanformer: error: {recipe} [finetune.ner]: baseline = true: the TF-IDF baseline "
                          "is for classification tasks, and conll2003 is a token task")
    assert err.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_without_scikit_learn_the_baseline_is_left_out_unless_asked_for(tmp_path, checkpoint, files,
                                                                        monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn"
                        else find_spec(name, *a))
    recipe = write_recipe(tmp_path / "recipe.toml", checkpoint, files)
    plan = run_recipe(recipe, dry_run=True, log=quiet)
    assert [d.stage.key for d in plan.decisions if d.stage.key.startswith("finetune/nsmc")] == [
        "finetune/nsmc/pretrained", "finetune/nsmc/scratch"]
    write_recipe(recipe, checkpoint, files, nsmc_extra="baseline = true\n")
    with pytest.raises(ConfigError, match=r"\[finetune.nsmc\]: baseline = true needs scikit-learn: pip install "
                                          r"'hanformer\[baselines\]', or set baseline = false"):
        run_recipe(recipe, dry_run=True, log=quiet)


def test_baseline_cli_takes_the_finetune_subsets_and_a_held_out_file(tmp_path, files, capsys):
    out = tmp_path / "baseline.json"
    assert main(["baseline", "--task", "nsmc", "--train", str(files["train"]), "--valid-fraction", "0.25",
                 "--split-seed", "3", "--max-train-examples", "90", "--max-valid-examples", "30",
                 "--test", str(files["test"]), "--max-test-examples", "50", "--test-seed", str(SEED),
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert (report["train_examples"], report["valid_examples"], report["test"]["examples"]) == (90, 30, 50)
    direct = run_baseline(direct_config(files), log=quiet)
    assert report["metrics"] == direct["metrics"] and report["test"] == direct["test"]
    assert "on 50 held-out examples" in capsys.readouterr().err
