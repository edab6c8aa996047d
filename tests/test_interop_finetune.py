"""`hanformer finetune` on checkpoints users already have, one task per family: a RoBERTa
(byte-level BPE) on KorQuAD, an XLM-R (SentencePiece Unigram) on KLUE-NER and an ELECTRA
discriminator (WordPiece, narrow embeddings) on NSMC, each a tiny random model saved by
transformers. The fine-tuned model loads back into transformers as the family's head class, with
the same outputs, and `predict` answers through it."""

from __future__ import annotations

import io
import json
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

from _hf_families import BUILDERS, CORPUS, save_tokenizer  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.serving.config import ServeConfig  # noqa: E402
from hanformer.serving.engine import InferenceEngine  # noqa: E402
from hanformer.tokenization.tokenizer import Tokenizer  # noqa: E402

COMMON = ["--threads", "1", "--no-progress", "--no-tensorboard", "--eval-batch-size", "16"]
NAMES, PLACES = ["김철수", "박영희"], ["서울", "부산"]
POS = ["정말 좋아요", "좋아요 최고", "재밌어요 좋아요"]
NEG = ["너무 싫어요", "싫어요 최악", "지루해요 싫어요"]
TASK_TEXT = [f"{who}는 {where}에 간다" for who in NAMES for where in PLACES] + POS + NEG + ["어디에 가?"]


def _checkpoint(tmp_path_factory, kind: str, architecture: str, config) -> tuple:
    directory = tmp_path_factory.mktemp(architecture)
    fast = save_tokenizer(transformers, kind, BUILDERS[kind](CORPUS + TASK_TEXT * 3), directory)
    config.vocab_size = len(fast)
    torch.manual_seed(0)
    getattr(transformers, architecture)(config).save_pretrained(directory)
    return directory


def _shape(**extra) -> dict:
    return dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, **extra)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _loads_back(model_dir, auto_class, architecture: str) -> None:
    """The fine-tuned folder is a transformers checkpoint of `architecture`, computing what ours does."""
    from hanformer.models.checkpoint import load_model

    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == [architecture]
    back, info = getattr(transformers, auto_class).from_pretrained(model_dir, output_loading_info=True)
    assert type(back).__name__ == architecture and {k: v for k, v in info.items() if v} == {}
    inputs = Tokenizer.from_pretrained(model_dir)(["김철수는 서울에 간다", "좋아요"])
    inputs = {k: v for k, v in inputs.items() if k != "token_type_ids" or config["type_vocab_size"] > 1}
    ours = load_model(model_dir)
    with torch.no_grad():
        want, got = back.eval()(**inputs), ours(**inputs)
    mask = inputs["attention_mask"].bool()
    for field in ("logits", "start_logits"):
        if getattr(want, field, None) is not None:
            a, b = getattr(want, field), getattr(got, field)
            if a.dim() >= 2 and a.shape[:2] == mask.shape:
                a, b = a[mask], b[mask]
            assert (a - b).abs().max().item() <= 1e-5


def test_roberta_with_byte_level_bpe_fine_tunes_on_korquad(tmp_path_factory, tmp_path, capsys):
    model = _checkpoint(tmp_path_factory, "byte-bpe", "RobertaForMaskedLM",
                        transformers.RobertaConfig(**_shape(max_position_embeddings=98, type_vocab_size=1)))
    context = "김철수는 서울에 간다. 박영희는 부산에 간다."
    qas = [{"id": f"q{i}", "question": f"{who}는 어디에 가?",
            "answers": [{"text": where, "answer_start": context.index(where)}]}
           for i, (who, where) in enumerate(zip(NAMES * 4, PLACES * 4, strict=True))]
    squad = _write(tmp_path / "qa.json", json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": qas}]}]}, ensure_ascii=False))
    out = tmp_path / "qa"
    rc = main(["finetune", "--task", "korquad", "--model", str(model), "--train", str(squad), "--valid", str(squad),
               "--out", str(out), "--epochs", "2", "--batch-size", "8", "--max-length", "64", "--doc-stride", "16",
               *COMMON])
    assert rc == 0, capsys.readouterr().err
    _loads_back(out / "best", "AutoModelForQuestionAnswering", "RobertaForQuestionAnswering")
    capsys.readouterr()
    inputs = _write(tmp_path / "q.tsv", f"김철수는 어디에 가?\t{context}\n")
    assert main(["predict", "--model", str(out / "best"), "--input", str(inputs)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert context[record["start"]:record["end"]] == record["answer"]


def test_xlm_roberta_with_unigram_fine_tunes_on_klue_ner(tmp_path_factory, tmp_path, capsys):
    model = _checkpoint(tmp_path_factory, "unigram", "XLMRobertaModel",
                        transformers.XLMRobertaConfig(**_shape(max_position_embeddings=66, type_vocab_size=1)))
    lines = []
    for i in range(24):
        sent = f"{NAMES[i % 2]}는 {PLACES[(i // 2) % 2]}에 간다"
        tags = ["B-PS", "I-PS", "I-PS", "O", "O", "B-LC", "I-LC"] + ["O"] * (len(sent) - 7)
        lines += [f"{ch}\t{tag}" for ch, tag in zip(sent, tags, strict=True)] + [""]
    ner = _write(tmp_path / "ner.tsv", "## header\n" + "\n".join(lines) + "\n")
    out = tmp_path / "ner"
    rc = main(["finetune", "--task", "klue-ner", "--model", str(model), "--train", str(ner), "--valid", str(ner),
               "--out", str(out), "--epochs", "6", "--batch-size", "8", "--lr", "3e-3", *COMMON])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert metrics["entity_f1"] > 0.5  # the labels reach the right pieces through Unigram offsets
    _loads_back(out / "best", "AutoModelForTokenClassification", "XLMRobertaForTokenClassification")


def test_electra_discriminator_fine_tunes_on_nsmc(tmp_path_factory, tmp_path, capsys):
    model = _checkpoint(tmp_path_factory, "wordpiece", "ElectraForPreTraining",
                        transformers.ElectraConfig(**_shape(embedding_size=16, max_position_embeddings=64)))
    rows = ["id\tdocument\tlabel"] + [f"{i}\t{(POS if i % 2 else NEG)[i % 3]}\t{i % 2}" for i in range(48)]
    train = _write(tmp_path / "train.txt", "\n".join(rows) + "\n")
    out = tmp_path / "nsmc"
    rc = main(["finetune", "--task", "nsmc", "--model", str(model), "--train", str(train), "--valid", str(train),
               "--out", str(out), "--epochs", "4", "--batch-size", "8", "--lr", "3e-3", *COMMON])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "best" / "metrics.json").read_text())["accuracy"] == 1.0
    _loads_back(out / "best", "AutoModelForSequenceClassification", "ElectraForSequenceClassification")
    capsys.readouterr()
    old, sys.stdin = sys.stdin, io.StringIO("정말 좋아요\n")
    try:
        assert main(["predict", "--model", str(out / "best")]) == 0
    finally:
        sys.stdin = old
    assert json.loads(capsys.readouterr().out)["label"] in ("1", "positive")  # the value or its name
    engine = InferenceEngine(out / "best", ServeConfig())  # `hanformer serve` sees a classifier
    assert engine.task == "classification"
    assert engine.predict(["정말 좋아요"])[0]["label"] in ("1", "positive")
