"""End to end through the command line on tiny data with a tiny random model:
finetune -> evaluate -> predict for classification (with seeds), NER and QA, plus the
errors a user meets (malformed rows, a head that does not fit the task)."""

from __future__ import annotations

import importlib.util
import json
import random

import pytest

from hanformer.cli.main import main

POS = ["정말 좋아요", "좋아요 최고", "재밌어요 좋아요", "good movie 좋아요", "완전 좋아요"]
NEG = ["너무 싫어요", "싫어요 최악", "지루해요 싫어요", "bad movie 싫어요", "완전 싫어요"]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer, 32-wide BERT with a character-level WordPiece vocabulary, randomly initialised."""
    import torch

    from hanformer.models.bert.config import BertConfig
    from hanformer.models.bert.heads import BertForPreTraining
    from hanformer.tokenization.tokenizer import Tokenizer

    chars = sorted(set("".join(POS + NEG) + "서울부산에간다김철수박영희는와을가 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz?.,0123456789"))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [c for c in chars if c != " "]
    tokens += ["##" + c for c in chars if c != " "]
    tokenizer = Tokenizer.build({t: i for i, t in enumerate(tokens)})
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokens), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    d = tmp_path_factory.mktemp("tiny-bert")
    BertForPreTraining(config).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def nsmc_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("nsmc")
    rng = random.Random(0)
    rows = ["id\tdocument\tlabel"]
    for i in range(160):
        label = i % 2
        rows.append(f"{i}\t{rng.choice(POS if label else NEG)}\t{label}")
    rows.insert(7, "999\tno label column")  # malformed: reported and skipped
    train = _write(d / "train.txt", "\n".join(rows) + "\n")
    test_rows = ["id\tdocument\tlabel"] + [f"{1000 + i}\t{t}\t{lab}" for i, (t, lab) in
                                           enumerate([(p, 1) for p in POS] + [(n, 0) for n in NEG])]
    test = _write(d / "test.txt", "\n".join(test_rows) + "\n")
    return train, test


COMMON = ["--threads", "1", "--no-progress", "--no-tensorboard", "--eval-batch-size", "16"]


@pytest.mark.slow
def test_classification_finetune_evaluate_predict_with_seeds(tiny_model, nsmc_files, tmp_path, capsys):
    train, test = nsmc_files
    out = tmp_path / "nsmc"
    rc = main(["finetune", "--task", "nsmc", "--model", str(tiny_model), "--train", str(train), "--out", str(out),
               "--epochs", "4", "--batch-size", "16", "--lr", "3e-3", "--seeds", "1,2", *COMMON])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "skipped 1 malformed rows" in captured.err and "train.txt:8: 2 columns" in captured.err
    assert "accuracy" in captured.err and "±" in captured.err
    for seed in (1, 2):
        best = out / f"seed-{seed}" / "best"
        assert (best / "model.safetensors").is_file() and (best / "tokenizer.json").is_file()
        info = json.loads((best / "task.json").read_text())
        assert info["task"] == "nsmc" and info["labels"] == ["0", "1"]
        config = json.loads((best / "config.json").read_text())
        assert config["id2label"] == {"0": "negative", "1": "positive"}
        metrics = json.loads((best / "metrics.json").read_text())
        assert metrics["accuracy"] >= 0.9  # the two classes differ by one word: trivially learnable
    seeds = json.loads((out / "seeds.json").read_text())
    assert set(seeds["summary"]) == {"accuracy", "macro_f1"}
    # The floor: always answering the most frequent training label, on the same validation carve.
    floor = seeds["majority_baseline"]
    assert floor["label"] in ("0", "1") and 0.3 < floor["accuracy"] <= 0.7
    assert f"always answering the most frequent training label '{floor['label']}'" in captured.err
    assert json.loads((out / "seed-1" / "best" / "task.json").read_text())["majority_label"] == floor["label"]

    rc = main(["evaluate", "--model", str(out), "--data", str(test), "--seeds", "1,2", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["accuracy"]["n"] == 2 and summary["accuracy"]["mean"] >= 0.9
    report = json.loads((out / "eval.json").read_text())
    assert report["seeds"] == [1, 2]
    # 5 positive and 5 negative reviews: one class right half the time, F1 2*5/(5+10) for it, 0 for the other
    assert report["majority_baseline"] == {"label": floor["label"], "accuracy": 0.5,
                                           "macro_f1": pytest.approx((10 / 15) / 2)}

    inputs = _write(tmp_path / "in.txt", "정말 좋아요\n\n너무 싫어요\n")
    rc = main(["predict", "--model", str(out / "seed-1"), "--input", str(inputs),
               "--output", str(tmp_path / "pred.jsonl")])
    assert rc == 0
    records = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert [r["text"] for r in records] == ["정말 좋아요", "너무 싫어요"]
    assert [r["label"] for r in records] == ["positive", "negative"]
    assert [r["data_label"] for r in records] == ["1", "0"]
    for r in records:
        assert set(r["probabilities"]) == {"negative", "positive"}
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["probability"] == r["probabilities"][r["label"]]


def test_head_that_does_not_fit_is_a_clear_error(tiny_model, tmp_path, capsys):
    from hanformer.models.bert.heads import BertForSequenceClassification
    from hanformer.tasks.model_io import load_task_model
    from hanformer.tasks.registry import get_task
    from hanformer.tokenization.tokenizer import Tokenizer

    nli_like = tmp_path / "three-way"
    model = load_task_model(get_task("klue-nli"), tiny_model, ["entailment", "neutral", "contradiction"])
    model.save_pretrained(nli_like)
    Tokenizer.from_pretrained(tiny_model).save_pretrained(nli_like)
    train = _write(tmp_path / "t.txt", "id\tdocument\tlabel\n" + "".join(f"{i}\t좋아요\t{i % 2}\n" for i in range(20)))
    rc = main(["finetune", "--task", "nsmc", "--model", str(nli_like), "--train", str(train),
               "--out", str(tmp_path / "o"), *COMMON])
    err = capsys.readouterr().err
    assert rc == 2
    assert "3-label head (entailment, neutral, contradiction)" in err and "--reinit-head" in err
    assert "Traceback" not in err
    fresh = load_task_model(get_task("nsmc"), nli_like, ["0", "1"], reinit_head=True)
    assert isinstance(fresh, BertForSequenceClassification) and fresh.classifier.out_features == 2
    # the encoder is the checkpoint's, only the head is new
    assert fresh.bert.embeddings.word_embeddings.weight.equal(model.bert.embeddings.word_embeddings.weight)


def test_on_error_fail_stops_at_the_first_bad_row(tiny_model, nsmc_files, tmp_path, capsys):
    train, _ = nsmc_files
    rc = main(["finetune", "--task", "nsmc", "--model", str(tiny_model), "--train", str(train),
               "--out", str(tmp_path / "o"), "--on-error", "fail", *COMMON])
    err = capsys.readouterr().err
    assert rc == 2 and "train.txt:8: 2 columns, expected 3" in err


@pytest.mark.slow
def test_ner_and_qa_end_to_end(tiny_model, tmp_path, capsys):
    names, places = ["김철수", "박영희"], ["서울", "부산"]
    lines = []
    for i in range(48):
        who, where = names[i % 2], places[(i // 2) % 2]
        sent = f"{who}는 {where}에 간다"
        for ch_i, ch in enumerate(sent):
            if ch_i < 3:
                tag = "B-PS" if ch_i == 0 else "I-PS"
            elif 5 <= ch_i < 7:
                tag = "B-LC" if ch_i == 5 else "I-LC"
            else:
                tag = "O"
            lines.append(f"{ch}\t{tag}")
        lines.append("")
    ner = _write(tmp_path / "ner.tsv", "## header\n" + "\n".join(lines) + "\n")
    out = tmp_path / "ner"
    rc = main(["finetune", "--task", "klue-ner", "--model", str(tiny_model), "--train", str(ner), "--out", str(out),
               "--epochs", "8", "--batch-size", "8", "--lr", "5e-3", "--from-scratch", *COMMON])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert {"entity_f1", "char_f1", "entity_precision", "entity_recall"} <= set(metrics)
    if importlib.util.find_spec("kiwipiepy") is not None:  # character-level Korean task: particles split off
        assert json.loads((out / "best" / "tokenizer_config.json").read_text())["hanformer"]["morpheme_split"]
    capsys.readouterr()
    import io
    import sys

    old = sys.stdin  # predict reads standard input when no --input is given
    sys.stdin = io.StringIO("박영희는 서울에 간다\n")
    try:
        rc = main(["predict", "--model", str(out)])
    finally:
        sys.stdin = old
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == "박영희는 서울에 간다"
    for ent in record["entities"]:
        assert record["text"][ent["start"]:ent["end"]] == ent["text"] and ent["type"] in ("PS", "LC")

    context = "김철수는 서울에 간다. 박영희는 부산에 간다."
    qas = [{"id": f"q{i}", "question": f"{who}는 어디에 가?",
            "answers": [{"text": where, "answer_start": context.index(where)}]}
           for i, (who, where) in enumerate([("김철수", "서울"), ("박영희", "부산")] * 8)]
    squad = _write(tmp_path / "qa.json", json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": qas}]}]}, ensure_ascii=False))
    out = tmp_path / "qa"
    rc = main(["finetune", "--task", "korquad", "--model", str(tiny_model), "--train", str(squad),
               "--valid", str(squad), "--out", str(out), "--epochs", "2", "--batch-size", "8",
               "--max-length", "24", "--doc-stride", "6", *COMMON])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    rc = main(["evaluate", "--model", str(out), "--data", str(squad)])
    scores = json.loads(capsys.readouterr().out)
    assert rc == 0 and 0 <= scores["exact_match"] <= 100 and 0 <= scores["f1"] <= 100
    inputs = _write(tmp_path / "q.tsv", f"김철수는 어디에 가?\t{context}\n")
    rc = main(["predict", "--model", str(out), "--input", str(inputs)])
    record = json.loads(capsys.readouterr().out)
    assert rc == 0 and record["question"] == "김철수는 어디에 가?"
    assert context[record["start"]:record["end"]] == record["answer"]
    assert len(record["n_best"]) >= 1 and record["n_best"][0]["text"] == record["answer"]


def test_pair_regression_end_to_end(tiny_model, tmp_path, capsys):
    rows = ["genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2"]
    for i in range(40):
        a, b = POS[i % 5], (POS if i % 2 else NEG)[(i // 2) % 5]
        rows.append(f"g\tf\t2012\t{i:04d}\t{4.5 if i % 2 else 0.5}\t{a}\t{b}")
    rows.append("g\tf\t2012\tbad\tfive\t가\t나")  # a score that is not a number
    sts = _write(tmp_path / "sts.tsv", "\n".join(rows) + "\n")
    out = tmp_path / "sts"
    rc = main(["finetune", "--task", "korsts", "--model", str(tiny_model), "--train", str(sts), "--out", str(out),
               "--epochs", "2", "--batch-size", "8", "--pooling", "mean", "--dropout", "0.2", *COMMON])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "sts.tsv:42: score 'five'" in captured.err
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["problem_type"] == "regression" and len(config["id2label"]) == 1
    assert config["classifier_pooling"] == "mean"  # saved, so evaluate/predict pool the same way
    assert config["hidden_dropout_prob"] == config["attention_probs_dropout_prob"] == 0.2
    assert {"pearson", "spearman"} <= set(json.loads((out / "best" / "metrics.json").read_text()))
    rc = main(["predict", "--model", str(out), "--input", str(_write(tmp_path / "p.tsv", "좋아요\t정말 좋아요\n"))])
    record = json.loads(capsys.readouterr().out)
    assert rc == 0 and record["text_pair"] == "정말 좋아요" and isinstance(record["score"], float)
    rc = main(["predict", "--model", str(out), "--input", str(_write(tmp_path / "one.txt", "좋아요\n"))])
    assert rc == 2 and "takes sentence pairs" in capsys.readouterr().err


def test_finetune_resumes_from_its_checkpoint(tiny_model, nsmc_files, tmp_path, capsys):
    train, _ = nsmc_files
    out = tmp_path / "resume"
    args = ["finetune", "--task", "nsmc", "--model", str(tiny_model), "--train", str(train), "--out", str(out),
            "--batch-size", "16", "--log-every", "1", *COMMON]
    assert main([*args, "--max-steps", "3"]) == 0
    capsys.readouterr()
    assert main([*args, "--max-steps", "5", "--resume", "auto"]) == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5]
    assert json.loads((out / "finetune.json").read_text())["steps"] == 5


def test_finetune_ranks_under_torchrun_take_disjoint_shares(tiny_model, nsmc_files, tmp_path, monkeypatch):
    """Under torchrun (RANK/WORLD_SIZE set) each rank's loader holds its own slice of every global batch:
    two ranks together see each training example at most once per epoch, and all but the remainder."""
    import hanformer.tasks.finetune as finetune_module

    class Captured(Exception):
        pass

    seen: dict[int, tuple] = {}

    class FakeTrainer:  # stops before a process group would be joined
        def __init__(self, model, config, loader, *args, dist_info=None, **kwargs):
            assert dist_info is not None and dist_info.world_size == 2
            index = {id(f): i for i, f in enumerate(loader.examples)}
            loader.collate = lambda fs: [index[id(f)] for f in fs]
            seen[dist_info.rank] = (len(loader.examples), [i for batch in loader for i in batch])
            raise Captured

    monkeypatch.setattr(finetune_module, "Trainer", FakeTrainer)
    train, _ = nsmc_files
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        with pytest.raises(Captured):
            main(["finetune", "--task", "nsmc", "--model", str(tiny_model), "--train", str(train),
                  "--out", str(tmp_path / "ddp"), "--batch-size", "8", *COMMON])
    (n, rank0), (n1, rank1) = seen[0], seen[1]
    assert n == n1 and len(rank0) == len(rank1) == (n // 16) * 8
    assert not set(rank0) & set(rank1)
    assert len(set(rank0) | set(rank1)) == (n // 16) * 16 > n - 16


def test_freeze_embeddings_keeps_the_token_matrix(tiny_model, nsmc_files, tmp_path, capsys):
    from safetensors.torch import load_file

    train, _ = nsmc_files
    out = tmp_path / "frozen"
    rc = main(["finetune", "--task", "nsmc", "--model", str(tiny_model), "--train", str(train), "--out", str(out),
               "--epochs", "1", "--batch-size", "16", "--lr", "3e-3", "--freeze-embeddings", *COMMON])
    assert rc == 0, capsys.readouterr().err
    before, after = load_file(tiny_model / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    key = next(k for k in after if k.endswith("embeddings.word_embeddings.weight"))
    assert (after[key] == before[key]).all()
    moved = next(k for k in after if k.endswith("embeddings.position_embeddings.weight"))
    assert not (after[moved] == before[moved]).all()  # the rest of the model trained
