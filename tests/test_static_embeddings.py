"""Skip-gram vectors as the starting token embeddings of masked-LM pretraining."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _pretrain_corpus import make_tokenizer  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.data.prepare import PrepareConfig, prepare_data  # noqa: E402
from hanformer.data.shards import ShardSet  # noqa: E402
from hanformer.pretraining.static_embeddings import load_static_vectors, skipgram_vectors  # noqa: E402
from hanformer.tokenization.tokenizer import Tokenizer  # noqa: E402

pytest.importorskip("gensim")

FOODS = "김치 라면 국수 떡볶이 비빔밥 만두 냉면 김밥".split()
PLACES = "서울 부산 대구 인천 광주 대전 울산 수원".split()


def write_two_kinds(path: Path, n_docs: int = 300) -> Path:
    """Foods only ever in eating sentences, places only in travel sentences."""
    rng = random.Random(0)
    docs = []
    for _ in range(n_docs):
        lines = [f"오늘 점심 으로 맛있는 {rng.choice(FOODS)} 먹었다" if rng.random() < 0.5 else
                 f"지난 주말 기차 타고 {rng.choice(PLACES)} 여행 갔다" for _ in range(6)]
        docs.append(" . ".join(lines) + " .")
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("static")
    text = write_two_kinds(d / "two-kinds.txt")
    tok = make_tokenizer(text, d / "tok", vocab_size=1000)
    prepare_data([text], tok, d / "shards", PrepareConfig(progress=False, valid_fraction=0.1))
    return d / "shards"


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_skipgram_vectors_are_repeatable_and_group_words_of_one_kind(shards):
    data = ShardSet(shards)
    first = skipgram_vectors(data.train, data.vocab_size, 16, epochs=5, seed=3)
    again = skipgram_vectors(data.train, data.vocab_size, 16, epochs=5, seed=3)
    assert np.array_equal(first.vectors, again.vectors) and np.array_equal(first.learned, again.learned)
    tokenizer = Tokenizer.from_pretrained(data.tokenizer_dir)
    ids = {w: tokenizer.convert_tokens_to_ids(w) for w in FOODS + PLACES}
    assert all(first.learned[i] for i in ids.values()), "every word of the corpus is one piece and gets a vector"
    assert not first.learned[tokenizer.convert_tokens_to_ids("[MASK]")]  # never in the text
    vec = {w: first.vectors[i] for w, i in ids.items()}
    same = np.mean([_cosine(vec[a], vec[b]) for kind in (FOODS, PLACES) for a in kind for b in kind if a < b])
    other = np.mean([_cosine(vec[a], vec[b]) for a in FOODS for b in PLACES])
    assert same > other + 0.2, (same, other)  # foods stand where foods stand, places where places do


def test_vectors_are_scaled_to_the_matrix_and_leave_unseen_rows(shards):
    data = ShardSet(shards)
    static = skipgram_vectors(data.train, data.vocab_size, 16, epochs=2)
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(data.vocab_size, 16, padding_idx=0)
    torch.nn.init.normal_(embedding.weight, std=0.02)
    embedding.weight.data[0] = 0  # as nn.Embedding keeps its padding row
    random_rows = embedding.weight[~torch.from_numpy(static.learned)].clone()
    assert load_static_vectors(embedding, static) == int(static.learned.sum())
    learned = embedding.weight[torch.from_numpy(static.learned)]
    assert abs(learned.std().item() - 0.02) < 0.005 and learned.mean(0).abs().max().item() < 1e-4
    assert torch.equal(embedding.weight[~torch.from_numpy(static.learned)], random_rows)
    assert (embedding.weight[0] == 0).all()


def test_pretrain_starts_from_the_vectors_and_can_keep_them(shards, tmp_path, capsys):
    from hanformer.models.bert.heads import BertForMaskedLM

    out = tmp_path / "run"
    rc = main(["pretrain", "--data", str(shards), "--objective", "mlm", "--model", "tiny", "--model-config",
               "hidden_size=32,num_attention_heads=2,intermediate_size=64", "--seq-len", "32", "--batch-size", "8",
               "--max-steps", "3", "--static-embeddings", "skipgram", "--static-epochs", "2", "--static-window", "3", "--freeze-embeddings",
               "--output-dir", str(out), "--no-progress", "--no-tensorboard", "--peak-tflops", "1", "--seed", "5"])
    assert rc == 0, capsys.readouterr().err
    data = ShardSet(shards)
    static = skipgram_vectors(data.train, data.vocab_size, 32, epochs=2, window=3, seed=5)
    model = BertForMaskedLM.from_pretrained(out / "final")
    rows = torch.from_numpy(static.learned)
    got = model.bert.embeddings.word_embeddings.weight[rows].detach()
    want = torch.from_numpy(static.vectors)[rows]
    want = want - want.mean(0)
    want = want * (got.std() / want.std())
    assert torch.allclose(got, want, atol=1e-5)  # the skip-gram space, kept through training


def test_static_embeddings_need_a_new_masked_lm_model(shards, tmp_path, capsys):
    rc = main(["pretrain", "--data", str(shards), "--objective", "clm", "--static-embeddings", "skipgram",
               "--output-dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc != 0 and "static_embeddings works for new masked-LM models only" in err and "Traceback" not in err


def test_a_resumed_run_does_not_train_the_vectors_again(shards, tmp_path, capsys, monkeypatch):
    import hanformer.pretraining.mlm as mlm

    out = tmp_path / "run"
    args = ["pretrain", "--data", str(shards), "--objective", "mlm", "--model", "tiny", "--model-config",
            "hidden_size=32,num_attention_heads=2,intermediate_size=64", "--seq-len", "32", "--batch-size", "8",
            "--static-embeddings", "skipgram", "--static-epochs", "1", "--save-every", "2",
            "--output-dir", str(out), "--no-progress", "--no-tensorboard", "--peak-tflops", "1"]
    assert main([*args, "--max-steps", "2"]) == 0, capsys.readouterr().err

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the checkpoint holds the weights: no skip-gram training on resume")
    monkeypatch.setattr(mlm, "skipgram_vectors", never)
    assert main([*args, "--max-steps", "4", "--resume"]) == 0, capsys.readouterr().err
