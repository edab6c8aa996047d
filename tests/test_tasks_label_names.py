"""Label names: a fine-tuned model names its classes (NSMC's 0/1 are negative/positive) in its
config.json, so `hanformer predict`, `serve` and `transformers.pipeline` answer with names, while
evaluation keeps comparing the labels as the data writes them."""

from __future__ import annotations

import json
import shutil

import pytest

from _tiny_checkpoints import make_checkpoint, make_tokenizer
from hanformer.cli.main import main
from hanformer.errors import ConfigError
from hanformer.tasks.registry import get_task, label_name, label_names

# Sentences the tiny tokenizer knows (tests/_tiny_checkpoints.py), one kind per class.
POSITIVE = ["이 영화 정말 재미있어요!", "I really liked this movie."]
NEGATIVE = ["나는 오늘 학교에 갔다.", "The cat sat on the mat."]
COMMON = ["--threads", "1", "--no-progress", "--no-tensorboard", "--batch-size", "8", "--max-steps", "6",
          "--lr", "3e-3"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    tokenizer = make_tokenizer(tmp_path_factory.mktemp("tok"))
    return make_checkpoint(tmp_path_factory.mktemp("bert"), tokenizer, "BertForPreTraining")


@pytest.fixture(scope="module")
def nsmc_model(bert, tmp_path_factory):
    """A tiny NSMC classifier, fine-tuned once (the Python API with the CLI's settings)."""
    from hanformer.tasks.finetune import FinetuneConfig, finetune
    from hanformer.utils.config import load_config

    d = tmp_path_factory.mktemp("nsmc")
    config = load_config(FinetuneConfig, {
        "task": "nsmc", "model": str(bert), "train": str(_nsmc_file(d / "train.txt")), "out": str(d / "run"),
        "batch_size": 8, "max_steps": 6, "trainer": {"lr": 3e-3, "threads": 1, "progress": False,
                                                     "tensorboard": False}})
    return finetune(config, log=lambda line: None).output_dir


def _nsmc_file(path, n=32):
    rows = ["id\tdocument\tlabel"] + [f"{i}\t{(POSITIVE if i % 2 else NEGATIVE)[i // 2 % 2]}\t{i % 2}"
                                      for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _predict(capsys, model_dir, texts, tmp_path):
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert main(["predict", "--model", str(model_dir), "--input", str(inputs), "--device", "cpu"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_registry_names_labels():
    nsmc = get_task("nsmc")
    assert label_names(nsmc, ["0", "1"]) == ["negative", "positive"]
    assert label_names(get_task("sst2"), ["0", "1"]) == ["negative", "positive"]
    assert label_names(get_task("klue-nli"), ["entailment", "neutral", "contradiction"]) == \
        ["entailment", "neutral", "contradiction"]
    assert label_names(get_task("classification"), ["1", "2", "3"]) == ["1", "2", "3"]
    assert label_names(get_task("classification"), ["1", "2"], ["bad", " good"]) == ["bad", "good"]
    assert label_names(nsmc, ["0", "1"], ["부정", "긍정"]) == ["부정", "긍정"]  # a named task may be renamed
    assert [label_name("nsmc", x) for x in ("0", "1", "7")] == ["negative", "positive", "7"]
    assert label_name("classification", "1") == "1"
    with pytest.raises(ConfigError, match=r"\(--label-names\): 3 names \(a, b, c\) for 2 labels \(0, 1\); give one"):
        label_names(get_task("classification"), ["0", "1"], ["a", "b", "c"])
    with pytest.raises(ConfigError, match="must be distinct"):
        label_names(get_task("classification"), ["0", "1"], ["a", "a"])
    with pytest.raises(ConfigError, match="'klue-ner' is a token task"):
        label_names(get_task("klue-ner"), ["O"], ["x"])


def test_nsmc_model_answers_with_names_in_hanformer_and_transformers(nsmc_model, tmp_path, capsys):
    out = nsmc_model
    best = out / "best"
    config = json.loads((best / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    info = json.loads((best / "task.json").read_text())
    assert info["labels"] == ["0", "1"] and info["label_names"] == ["negative", "positive"]

    texts = POSITIVE + NEGATIVE
    records = _predict(capsys, out, texts, tmp_path)
    assert all(r["label"] in ("negative", "positive") for r in records)
    assert [r["data_label"] for r in records] == [{"negative": "0", "positive": "1"}[r["label"]] for r in records]
    for r in records:
        assert set(r["probabilities"]) == {"negative", "positive"}
        assert r["probability"] == r["probabilities"][r["label"]]

    transformers = pytest.importorskip("transformers")
    classify = transformers.pipeline("text-classification", model=str(best), device="cpu")
    answers = classify(texts)
    assert [a["label"] for a in answers] == [r["label"] for r in records]
    assert [a["score"] for a in answers] == pytest.approx([r["probability"] for r in records], abs=1e-4)

    # Scoring still compares the data's own labels (0/1) with the model's.
    test = _nsmc_file(tmp_path / "test.txt", n=8)
    assert main(["evaluate", "--model", str(out), "--data", str(test), "--device", "cpu"]) == 0
    scored = json.loads(capsys.readouterr().out)["accuracy"]
    gold = [str(i % 2) for i in range(8)]
    held_out = [(POSITIVE if i % 2 else NEGATIVE)[i // 2 % 2] for i in range(8)]
    predicted = [r["data_label"] for r in _predict(capsys, out, held_out, tmp_path)]
    assert scored == pytest.approx(sum(p == g for p, g in zip(predicted, gold, strict=True)) / 8)


def test_generic_classification_takes_label_names(bert, tmp_path, capsys):
    train = tmp_path / "reviews.csv"
    rows = ["text,label"] + [f"{(POSITIVE if i % 2 else NEGATIVE)[0]},{i % 2}" for i in range(32)]
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "generic"
    rc = main(["finetune", "--task", "classification", "--model", str(bert), "--train", str(train),
               "--out", str(out), "--label-names", "bad,good", *COMMON])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    assert json.loads((out / "best" / "config.json").read_text())["id2label"] == {"0": "bad", "1": "good"}
    assert {r["label"] for r in _predict(capsys, out, POSITIVE + NEGATIVE, tmp_path)} <= {"bad", "good"}

    # Fine-tuned further without --label-names, the head keeps its names (and is not refused).
    again = tmp_path / "again"
    rc = main(["finetune", "--task", "classification", "--model", str(out / "best"), "--train", str(train),
               "--out", str(again), *COMMON])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    assert json.loads((again / "best" / "config.json").read_text())["id2label"] == {"0": "bad", "1": "good"}


def test_models_saved_before_label_names_answer_with_the_tasks_names(nsmc_model, tmp_path, capsys):
    """A folder fine-tuned by an earlier version (id2label 0/1, no label_names) gets the registry's names."""
    best = tmp_path / "old"
    shutil.copytree(nsmc_model / "best", best)
    out = best
    config = json.loads((best / "config.json").read_text())
    config.update(id2label={"0": "0", "1": "1"}, label2id={"0": 0, "1": 1})
    (best / "config.json").write_text(json.dumps(config), encoding="utf-8")
    info = json.loads((best / "task.json").read_text())
    del info["label_names"]
    (best / "task.json").write_text(json.dumps(info), encoding="utf-8")
    records = _predict(capsys, out, POSITIVE, tmp_path)
    assert {r["label"] for r in records} <= {"negative", "positive"}
    assert set(records[0]["probabilities"]) == {"negative", "positive"}
