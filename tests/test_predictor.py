"""`hanformer.Predictor`: a fine-tuned model loaded once answers exactly as `hanformer predict`
does, for every task kind (classification, pairs, regression, token classification, QA)."""

from __future__ import annotations

import json

import pytest

import hanformer
from hanformer.cli.main import main
from hanformer.errors import InputError
from hanformer.tasks.predictor import Predictor
from hanformer.tasks.task_model import TaskModel

POS = ["정말 좋아요", "좋아요 최고", "재밌어요 좋아요", "good movie 좋아요"]
NEG = ["너무 싫어요", "싫어요 최악", "지루해요 싫어요", "bad movie 싫어요"]
CONTEXT = "김철수는 서울에 간다. 박영희는 부산에 간다."


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A 2-layer, 32-wide random BERT with a character-level WordPiece vocabulary."""
    import torch

    from hanformer.models.bert.config import BertConfig
    from hanformer.models.bert.heads import BertForPreTraining
    from hanformer.tokenization.tokenizer import Tokenizer

    chars = sorted(set("".join(POS + NEG) + CONTEXT + "누가어디? ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz."))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [c for c in chars if c != " "]
    tokens += ["##" + c for c in chars if c != " "]
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokens), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    d = tmp_path_factory.mktemp("base")
    BertForPreTraining(config).save_pretrained(d)
    Tokenizer.build({t: i for i, t in enumerate(tokens)}).save_pretrained(d)
    return d


def _task_model(base, out, task_name):
    """A fine-tuned model directory as `finetune` writes it (weights, tokenizer, task.json), with
    a random head: what is compared here is the path from inputs to records, not the accuracy."""
    import torch

    from hanformer.tasks.model_io import TaskSettings, load_task_model, save_task_model
    from hanformer.tasks.registry import get_task
    from hanformer.tokenization.tokenizer import Tokenizer

    task = get_task(task_name)
    labels = list(task.labels) if task.labels else None
    torch.manual_seed(1)
    model = load_task_model(task, base, labels, from_scratch=True)
    settings = TaskSettings(max_length=32, doc_stride=8, max_query_length=12)
    save_task_model(model, Tokenizer.from_pretrained(base), out, task, settings, {"labels": labels})
    return out


def _cli_records(capsys, model_dir, lines, tmp_path):
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model", str(model_dir), "--input", str(inputs), "--output", str(out)]) == 0
    capsys.readouterr()
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _as_json(records):
    return json.loads(json.dumps(records, ensure_ascii=False))


@pytest.mark.slow
def test_tiny_finetuned_classifier_gives_the_same_records_as_the_command(base_model, tmp_path, capsys):
    rows = ["id\tdocument\tlabel"] + [f"{i}\t{(POS if i % 2 else NEG)[i % 4]}\t{i % 2}" for i in range(48)]
    train = tmp_path / "train.txt"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "nsmc"
    assert main(["finetune", "--task", "nsmc", "--model", str(base_model), "--train", str(train),
                 "--out", str(out), "--max-steps", "3", "--batch-size", "16", "--threads", "1",
                 "--no-progress", "--no-tensorboard"]) == 0
    capsys.readouterr()
    texts = ["정말 좋아요", "너무 싫어요", "good movie"]
    predictor = Predictor(out)
    records = predictor.predict(texts)
    assert _as_json(records) == _cli_records(capsys, out, texts, tmp_path)
    assert [r["text"] for r in records] == texts
    assert {r["label"] for r in records} <= {"negative", "positive"}  # NSMC's names for 0 and 1
    # Loaded once: later calls reuse the model, and a single text is one record.
    assert predictor.predict("너무 싫어요") == [records[1]]


@pytest.mark.parametrize(("task_name", "inputs", "lines"), [
    ("klue-nli", [("정말 좋아요", "너무 싫어요"), ("좋아요 최고", "재밌어요")],
     ["정말 좋아요\t너무 싫어요", "좋아요 최고\t재밌어요"]),
    ("korsts", [("정말 좋아요", "좋아요 최고")], ["정말 좋아요\t좋아요 최고"]),
    ("conll2003", ["good movie 좋아요", "bad movie"], ["good movie 좋아요", "bad movie"]),
    ("klue-ner", ["김철수는 서울에 간다"], ["김철수는 서울에 간다"]),
    ("korquad", [("김철수는 어디에 간다?", CONTEXT), ("누가 부산에 간다?", CONTEXT)],
     [f"김철수는 어디에 간다?\t{CONTEXT}", f"누가 부산에 간다?\t{CONTEXT}"]),
])
def test_every_task_kind_matches_the_command(base_model, tmp_path, capsys, task_name, inputs, lines):
    model_dir = _task_model(base_model, tmp_path / task_name, task_name)
    records = Predictor(model_dir).predict(inputs)
    assert len(records) == len(inputs)
    assert _as_json(records) == _cli_records(capsys, model_dir, lines, tmp_path)


def test_the_model_is_loaded_once_for_many_calls(base_model, tmp_path, monkeypatch):
    model_dir = _task_model(base_model, tmp_path / "nli", "klue-nli")
    loads = []
    real = TaskModel.load
    monkeypatch.setattr(TaskModel, "load", classmethod(lambda cls, *a, **k: loads.append(a) or real(*a, **k)))
    predictor = hanformer.Predictor(model_dir)  # the package exports the same class
    first = predictor.predict(("정말 좋아요", "너무 싫어요"))
    assert predictor.predict([("정말 좋아요", "너무 싫어요")]) == first
    assert len(loads) == 1 and hanformer.Predictor is Predictor
    assert set(first[0]["probabilities"]) == {"entailment", "neutral", "contradiction"}
    assert first[0]["text_pair"] == "너무 싫어요"


def test_inputs_the_task_cannot_answer_are_errors_naming_the_example(base_model, tmp_path):
    nli = Predictor(_task_model(base_model, tmp_path / "nli", "klue-nli"))
    with pytest.raises(InputError, match=r"^inputs\[1\]: task 'klue-nli' takes sentence pairs"):
        nli.predict([("정말 좋아요", "너무 싫어요"), "좋아요"])
    with pytest.raises(InputError, match=r"^inputs\[0\]: empty text"):
        nli.predict([("  ", "너무 싫어요")])
    with pytest.raises(InputError, match=r"^inputs\[0\]: expected a text or a \(text, pair\) tuple"):
        nli.predict([("a", "b", "c")])
    qa = Predictor(_task_model(base_model, tmp_path / "qa", "korquad"))
    with pytest.raises(InputError, match=r"^inputs\[0\]: a QA model needs a question and a context"):
        qa.predict(["김철수는 어디에 간다?"])
    assert qa.predict([]) == []
