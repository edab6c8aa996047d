"""Corrupt or half-written pretraining shards: one-line errors naming the file, never a traceback;
and `hanformer data prepare` cleaning up after a run that was killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _pretrain_corpus import make_shards, write_corpus
from hanformer.cli.main import main
from hanformer.data.prepare import PrepareConfig, prepare_data, remove_stale_partials
from hanformer.data.shards import ShardSet, shard_vocab_hash
from hanformer.errors import InputError
from hanformer.tokenization.tokenizer import Tokenizer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"), n_docs=40)


@pytest.fixture
def shards(built, tmp_path):
    """A fresh copy of good shards for each test to damage."""
    copy = tmp_path / "shards"
    shutil.copytree(built, copy)
    return copy


def assert_refused(directory: Path, capsys, *needles: str) -> None:
    """Refused by the Python API (InputError) and by the CLI (exit 2, one line, no traceback)."""
    with pytest.raises(InputError) as caught:
        ShardSet(directory)
    for needle in needles:
        assert needle in str(caught.value), str(caught.value)
    assert main(["data", "check", str(directory)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hanformer: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err


def edit_meta(directory: Path, change) -> None:
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    change(meta)
    (directory / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def test_good_shards_check_and_expose_their_vocab_hash(shards, capsys):
    tokenizer = Tokenizer.from_pretrained(shards / "tokenizer")
    opened = ShardSet(shards)
    assert opened.vocab_hash == shard_vocab_hash(shards) == tokenizer.vocab_hash
    assert opened.meta["splits"]["train"]["max_id"] == int(np.max(opened.train.tokens))
    assert main(["data", "check", str(shards)]) == 0
    assert f"{shards}: ok: train {opened.train.n_documents:,} documents" in capsys.readouterr().out


def test_truncated_tokens_bin(shards, capsys):
    path = shards / "train" / "tokens.bin"
    path.write_bytes(path.read_bytes()[:-7])
    assert_refused(shards, capsys, str(path), "truncated")
    # the training command says the same in one line
    assert main(["pretrain", "--data", str(shards), "--output-dir", str(shards.parent / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tokens.bin" in err and "truncated" in err


def test_truncated_word_starts_and_too_long_tokens(shards, capsys):
    words = shards / "valid" / "word_starts.bin"
    words.write_bytes(words.read_bytes()[:-1])
    assert_refused(shards, capsys, str(words), "truncated")
    words.write_bytes(words.read_bytes() + b"\x01\x01")
    assert_refused(shards, capsys, str(words), "too long")


def test_token_ids_outside_the_vocabulary(shards, capsys):
    # meta.json's vocabulary is smaller than the recorded largest id
    edit_meta(shards, lambda m: m.update(vocab_size=m["splits"]["train"]["max_id"], dtype="uint16"))
    assert_refused(shards, capsys, "tokens.bin", "outside the vocabulary")


def test_overwritten_ids_found_by_the_full_check(shards, capsys):
    ids = np.fromfile(shards / "train" / "tokens.bin", dtype=np.uint16)
    ids[5] = 60000
    ids.tofile(shards / "train" / "tokens.bin")
    ShardSet(shards)  # opening trusts the recorded largest id: cheap on any size
    assert main(["data", "check", str(shards)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "token id 60000 is outside the vocabulary of 600 tokens" in err
    # shards from before max_id was recorded are read in full when opened
    edit_meta(shards, lambda m: [m["splits"][s].pop("max_id") for s in ("train", "valid")])
    assert_refused(shards, capsys, "token id 60000")


@pytest.mark.parametrize(("text", "needles"), [
    ("{not json", ("meta.json", "not valid JSON")),
    ("[1, 2]", ("meta.json", "JSON object")),
])
def test_meta_json_that_is_not_an_object(shards, capsys, text, needles):
    (shards / "meta.json").write_text(text, encoding="utf-8")
    assert_refused(shards, capsys, *needles)


@pytest.mark.parametrize(("change", "needle"), [
    (lambda m: m.pop("vocab_hash"), "meta.json (field 'vocab_hash'): missing"),
    (lambda m: m.pop("splits"), "meta.json (field 'splits'): missing"),
    (lambda m: m.update(vocab_size="600"), "meta.json (field 'vocab_size'): expected a positive integer, got '600'"),
    (lambda m: m.update(vocab_size=True), "field 'vocab_size'"),
    (lambda m: m.update(dtype="float32"), "field 'dtype'"),
    (lambda m: m.update(dtype="uint32"), "uint32 does not fit a vocabulary of 600 tokens"),
    (lambda m: m["special_ids"].update(cls=600), "field 'special_ids.cls'"),
    (lambda m: m["splits"]["train"].update(tokens=-1), "field 'splits.train.tokens'"),
    (lambda m: m["splits"].pop("valid"), "field 'splits.valid'"),
    (lambda m: m["splits"]["valid"].update(sentences=10**6), "meta.json says 1,000,000"),
])
def test_meta_json_with_missing_or_wrong_keys(shards, capsys, change, needle):
    edit_meta(shards, change)
    assert_refused(shards, capsys, needle)


def test_garbage_index_files(shards, capsys):
    index = shards / "train" / "sentences.npy"
    index.write_bytes(b"\x93NUMPY garbage that is not an array header")
    assert_refused(shards, capsys, str(index), "not a readable .npy array")
    np.save(index, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # pickles are never loaded
    assert_refused(shards, capsys, str(index), "not a readable .npy array")
    np.save(index, np.zeros((2, 2), dtype=np.int64))
    assert_refused(shards, capsys, str(index), "1-D integer array")
    np.save(index, np.array([0, 5, 3, 9], dtype=np.int64))
    assert_refused(shards, capsys, str(index), "offset 2 (3) is smaller than the one before it (5)")
    np.save(index, np.array([1, 5], dtype=np.int64))
    assert_refused(shards, capsys, str(index), "must start at 0")


def test_documents_that_do_not_match_the_sentences(shards, capsys):
    index = shards / "valid" / "documents.npy"
    docs = np.load(index)
    np.save(index, np.append(docs[:-1], docs[-1] - 1))
    assert_refused(shards, capsys, str(index), "its documents end at sentence")


def test_garbage_token_counts(shards):
    (shards / "token_counts.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="token_counts.npy: not a readable .npy array"):
        ShardSet(shards).token_counts()
    np.save(shards / "token_counts.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(InputError, match="expected 600 integer counts"):
        ShardSet(shards).token_counts()


# ---------------------------------------------------------------- killed `data prepare`
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_next_run_removes_what_a_killed_run_left(built, tmp_path):
    corpus, tokenizer = built.parent / "wiki.txt", built.parent / "tok"
    out = tmp_path / "shards"
    stale = tmp_path / f".shards.partial-{_dead_pid()}-abc123"
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "tokens.bin").write_bytes(b"\x00" * 10)  # half written
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as alive:
        running = tmp_path / f".shards.partial-{alive.pid}-def456"
        running.mkdir()
        unrelated = tmp_path / ".shards.notes"
        unrelated.mkdir()
        prepare_data([corpus], tokenizer, out, PrepareConfig(progress=False, valid_fraction=0.1))
        alive.kill()
    assert not stale.exists() and running.is_dir() and unrelated.is_dir()
    assert ShardSet(out).train.n_documents > 0
    assert remove_stale_partials(out) == [running]  # its process is gone now
    # replacing the shards leaves nothing beside them
    prepare_data([corpus], tokenizer, out, PrepareConfig(progress=False, valid_fraction=0.2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".shards.notes", "shards"]
    assert ShardSet(out).meta["config"]["valid_fraction"] == 0.2


def test_sigkill_during_prepare(built, tmp_path):
    """A real `kill -9` in the middle: the output never appears half written, and the next run
    cleans up and writes it."""
    tokenizer = built.parent / "tok"
    corpus = write_corpus(tmp_path / "big.txt", n_docs=4000)
    out, log = tmp_path / "shards", tmp_path / "prepare.log"
    with open(log, "wb") as stderr:
        child = subprocess.Popen([sys.executable, "-m", "hanformer.cli.main", "data", "prepare", "--input",
                                  str(corpus), "--tokenizer", str(tokenizer), "--out", str(out), "--no-progress",
                                  "--batch-documents", "16"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".shards.partial-*/train/tokens.bin")) and time.monotonic() < deadline:
        if child.poll() is not None:
            pytest.fail(f"prepare ended (exit {child.returncode}) before it could be killed: {log.read_text()}")
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert list(tmp_path.glob(".shards.partial-*")) and not out.exists()
    prepare_data([corpus], tokenizer, out, PrepareConfig(progress=False))
    assert not list(tmp_path.glob(".shards.partial-*"))
    assert ShardSet(out).train.n_documents + ShardSet(out).valid.n_documents == 4000
