"""`prepare_data` / `hanformer data prepare`: shards from raw text, held-out split, bad inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _pretrain_corpus import make_tokenizer, write_corpus  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.data.prepare import PrepareConfig, prepare_data  # noqa: E402
from hanformer.data.sentences import split_rules  # noqa: E402
from hanformer.data.shards import ShardSet  # noqa: E402
from hanformer.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    text = write_corpus(d / "wiki.txt")
    tok = make_tokenizer(text, d / "tok")
    return text, tok


def test_rule_splitter_korean_and_english():
    assert split_rules("카터는 대통령이다. 그는 1924년에 태어났다! 정말? \"그렇다.\" 끝") == [
        "카터는 대통령이다.", "그는 1924년에 태어났다!", "정말?", "\"그렇다.\"", "끝"]
    assert split_rules("Mr. Smith met J. R. R. Tolkien at 3 p.m. today. The U.S. is big. Pi is 3.14.") == [
        "Mr. Smith met J. R. R. Tolkien at 3 p.m. today.", "The U.S. is big.", "Pi is 3.14."]


def test_prepare_writes_shards_that_decode_back(corpus, tmp_path):
    from hanformer.tokenization.tokenizer import Tokenizer

    text, tok_dir = corpus
    out = tmp_path / "shards"
    summary = prepare_data([text], tok_dir, out, PrepareConfig(progress=False, valid_fraction=0.1))
    shards = ShardSet(out)
    tok = Tokenizer.from_pretrained(tok_dir)
    assert shards.meta["vocab_hash"] == tok.vocab_hash
    n_train, n_valid = shards.train.n_documents, shards.valid.n_documents
    assert n_train + n_valid == 60 and 1 <= n_valid < 20
    assert summary["splits"]["train"]["tokens"] == shards.train.n_tokens
    # Sentences decode to the text's sentences (titles are left out by default).
    first = [tok.decode(shards.train.sentence(s).tolist()) for s in shards.train.document_sentences(0)]
    assert all(s.endswith(".") for s in first) and not any(s.startswith("문서") for s in first)
    # Word starts: each eojeol begins exactly one word; counts equal whitespace-separated words.
    s0 = shards.train.sentences
    ws = np.asarray(shards.train.word_starts[s0[0]:s0[1]])
    assert ws.sum() == len(first[0].replace(" .", ".").split())
    # Unigram counts cover the train split; the tokenizer copy is loadable and identical.
    assert shards.token_counts().sum() == shards.train.n_tokens
    assert Tokenizer.from_pretrained(shards.tokenizer_dir).vocab_hash == tok.vocab_hash
    # Deterministic: the same documents are held out when the input is prepared again.
    again = tmp_path / "again"
    prepare_data([text], tok_dir, again, PrepareConfig(progress=False, valid_fraction=0.1))
    assert np.array_equal(np.asarray(ShardSet(again).valid.tokens), np.asarray(shards.valid.tokens))


def test_cli_prepare_and_too_small_corpus(corpus, tmp_path, capsys):
    text, tok_dir = corpus
    assert main(["data", "prepare", "--input", str(text), "--tokenizer", str(tok_dir), "--out",
                 str(tmp_path / "s"), "--splitter", "lines", "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["splits"]["valid"]["documents"] >= 1
    one = tmp_path / "one.txt"
    one.write_text("한 문장만 있는 문서이다.\n", encoding="utf-8")
    assert main(["data", "prepare", "--input", str(one), "--tokenizer", str(tok_dir), "--out",
                 str(tmp_path / "t"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "corpus too small: 1 documents read, 1 with text" in err and "at least 2 documents" in err
    assert not (tmp_path / "t").exists()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no text found"):
        prepare_data([empty], tok_dir, tmp_path / "u", PrepareConfig(progress=False))


def test_output_that_is_not_a_shard_dir_is_refused(corpus, tmp_path):
    text, tok_dir = corpus
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="exists and is not a shard directory"):
        prepare_data([text], tok_dir, tmp_path / "precious", PrepareConfig(progress=False))
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


@pytest.mark.slow  # loading Kiwi's model takes seconds
def test_kiwi_splitter_handles_missing_final_punctuation():
    pytest.importorskip("kiwipiepy")
    from hanformer.data.sentences import get_splitter

    kiwi = get_splitter("kiwi")
    assert kiwi("지미 카터는 미국의 대통령이었다 그는 1924년에 태어났다") == [
        "지미 카터는 미국의 대통령이었다", "그는 1924년에 태어났다"]
    # The rules cannot see this boundary: that is what the option is for.
    assert len(split_rules("지미 카터는 미국의 대통령이었다 그는 1924년에 태어났다")) == 1


@pytest.mark.slow
def test_sentence_splitting_in_worker_processes_gives_the_same_shards(corpus, tmp_path):
    text, tok_dir = corpus
    one = prepare_data([text], tok_dir, tmp_path / "one", PrepareConfig(progress=False))
    two = prepare_data([text], tok_dir, tmp_path / "two", PrepareConfig(progress=False, workers=2))
    assert one["splits"] == two["splits"]
    a, b = ShardSet(tmp_path / "one"), ShardSet(tmp_path / "two")
    assert np.array_equal(np.asarray(a.train.tokens), np.asarray(b.train.tokens))
    assert np.array_equal(np.asarray(a.train.sentences), np.asarray(b.train.sentences))
