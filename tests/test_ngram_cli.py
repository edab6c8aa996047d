"""`hanformer ngram`: train -> perplexity -> sample -> export end to end, word pieces, real text,
and every user mistake as one `hanformer: error:` line with status 2."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from hanformer.cli.main import main
from hanformer.data.readers import iter_documents
from hanformer.models.ngram.api import load_ngram, score_files

TRAIN = """\
나는 오늘 학교에 갔다
나는 어제 학교에 갔다
오늘 날씨가 좋다
어제 날씨가 좋았다
나는 오늘 공원에 갔다
"""


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "train.txt"
    path.write_text(TRAIN, encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert err.startswith("hanformer: error: ") and err.count("\n") == 1, err
    return err


def test_train_perplexity_sample_export(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lm"
    code, printed, _ = _run(capsys, "ngram", "train", "--input", str(corpus), "--order", "3", "--output", str(out),
                            "--arpa", str(tmp_path / "copy.arpa"))
    assert code == 0
    summary = json.loads(printed)
    assert summary["order"] == 3 and summary["smoothing"] == "kn" and summary["units"] == "words"
    assert summary["training"]["sentences"] == 5 and summary["training"]["words"] == 18
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved["vocab_size"] == 3 + 9 and saved["training"]["ngrams"][0] == 12
    assert (tmp_path / "copy.arpa").read_bytes() == (out / "model.arpa").read_bytes()

    held = tmp_path / "held.txt"
    held.write_text("나는 오늘 학교에 갔다\n그는 오늘 학교에 갔다\n", encoding="utf-8")
    code, printed, _ = _run(capsys, "ngram", "perplexity", "--model", str(out), "--input", str(held))
    assert code == 0
    report = json.loads(printed)
    scores = score_files(out, held)
    assert (report["sentences"], report["words"], report["oov"], report["tokens"]) == (2, 8, 1, 10)
    assert report["log10_prob"] == scores.logprob
    assert report["perplexity"] == pytest.approx(10 ** (-scores.logprob / 10), rel=1e-12)
    assert report["perplexity_without_oov"] > 0 and report["oov_rate"] == 1 / 8

    first = _run(capsys, "ngram", "sample", "--model", str(out), "--num", "4", "--seed", "3")
    again = _run(capsys, "ngram", "sample", "--model", str(out), "--num", "4", "--seed", "3")
    assert first[0] == 0 and first == again
    sentences = first[1].splitlines()
    assert len(sentences) == 4
    vocabulary = set(TRAIN.split())
    assert all(s and set(s.split()) <= vocabulary for s in sentences)  # <unk> is never drawn

    code, printed, _ = _run(capsys, "ngram", "export", "--model", str(out), "--arpa", str(tmp_path / "x.arpa"))
    assert code == 0 and printed.strip() == str(tmp_path / "x.arpa")
    assert (tmp_path / "x.arpa").read_bytes() == (out / "model.arpa").read_bytes()
    kenlm = pytest.importorskip("kenlm")
    reference = kenlm.Model(str(tmp_path / "x.arpa"))
    np.testing.assert_allclose(scores.sentence_logprobs,
                               [reference.score(line) for line in held.read_text(encoding="utf-8").splitlines()],
                               rtol=1e-6)


def test_word_piece_model_keeps_its_tokenizer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from _tiny_checkpoints import SENTENCES, make_tokenizer

    tokenizer = make_tokenizer(tmp_path / "tok")
    tokenizer.save_pretrained(tmp_path / "tok")
    (tmp_path / "train.txt").write_text(SENTENCES * 2, encoding="utf-8")
    out = tmp_path / "lm"
    code, printed, _ = _run(capsys, "ngram", "train", "--input", str(tmp_path / "train.txt"), "--tokenizer",
                            str(tmp_path / "tok"), "--order", "3", "--output", str(out))
    assert code == 0
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved["units"] == "wordpiece" and saved["tokenizer"]["vocab_hash"] == tokenizer.vocab_hash
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    pieces = sum(len(tokenizer.tokenize(line)) for line in SENTENCES.splitlines()) * 2
    assert saved["training"]["words"] == pieces
    held = tmp_path / "held.txt"
    held.write_text("나는 오늘 공원에 갔다.\n", encoding="utf-8")
    loaded = load_ngram(out)
    assert score_files(loaded, held).words == len(tokenizer.tokenize("나는 오늘 공원에 갔다."))
    code, printed, _ = _run(capsys, "ngram", "sample", "--model", str(out), "--num", "2", "--seed", "1")
    assert code == 0 and len(printed.splitlines()) == 2 and "##" not in printed

    saved["tokenizer"]["vocab_hash"] = "0" * 16
    (out / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    err = _fails(capsys, "ngram", "perplexity", "--model", str(out), "--input", str(held))
    assert "not the one the model was counted with" in err


def test_kenlm_parity_on_real_korean_text(tmp_path: Path, shared_data: Path) -> None:
    kenlm = pytest.importorskip("kenlm")
    source = shared_data / "kowiki" / "kowiki_AA_part0.txt"
    paragraphs = itertools.islice((line for doc in iter_documents(source) for line in doc.lines), 1800)
    lines = list(paragraphs)
    (tmp_path / "train.txt").write_text("\n".join(lines[:1500]) + "\n", encoding="utf-8")
    (tmp_path / "held.txt").write_text("\n".join(lines[1500:]) + "\n", encoding="utf-8")
    assert main(["ngram", "train", "--input", str(tmp_path / "train.txt"), "--order", "4",
                 "--output", str(tmp_path / "lm")]) == 0
    scores = score_files(tmp_path / "lm", tmp_path / "held.txt")
    reference = kenlm.Model(str(tmp_path / "lm" / "model.arpa"))
    theirs = np.array([reference.score(line) for line in lines[1500:]])
    relative = np.abs(scores.sentence_logprobs - theirs) / np.abs(theirs)
    assert relative.max() < 1e-6
    assert 0 < scores.oov < scores.words


# ----------------------------------------------------------------------------- user mistakes
@pytest.mark.parametrize(("flags", "words"), [
    (["--order", "6"], "--order 6: orders 1 to 5 are supported"),
    (["--order", "0"], "--order 0: orders 1 to 5 are supported"),
    (["--smoothing", "addk", "--k", "0"], "--k 0.0: must be greater than 0"),
    (["--smoothing", "addk", "--k", "-1"], "--k -1.0: must be greater than 0"),
    (["--k", "0.5"], "no meaning with --smoothing kn"),
    (["--smoothing", "absolute", "--discount", "1.5"], "--discount 1.5: must be in (0, 1]"),
    (["--words", "--tokenizer", "x"], "--words and --tokenizer both given"),
])
def test_bad_settings(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
                      words: str) -> None:
    err = _fails(capsys, "ngram", "train", "--input", str(corpus), "--output", str(tmp_path / "lm"), *flags)
    assert words in err
    assert not (tmp_path / "lm").exists()


def test_corpus_smaller_than_the_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "short.txt"
    short.write_text("가\n나\n", encoding="utf-8")
    err = _fails(capsys, "ngram", "train", "--input", str(short), "--order", "4", "--output", str(tmp_path / "lm"))
    assert f"{short}: the longest sentence (line) has 1 word(s)" in err and "--order 3 or less" in err
    assert main(["ngram", "train", "--input", str(short), "--order", "3", "--output", str(tmp_path / "lm")]) == 0


def test_reserved_boundary_word_in_training_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("첫 문장\n\n둘째 문장\n셋째 </s> 문장\n", encoding="utf-8")
    err = _fails(capsys, "ngram", "train", "--input", str(bad), "--output", str(tmp_path / "lm"))
    assert f"{bad}:4: this line contains the word '<s>' or '</s>'" in err
    wiki = tmp_path / "wiki.txt"
    wiki.write_text('<doc id="1" title="T">\nT\n\n첫 <s> 문장\n</doc>\n', encoding="utf-8")
    err = _fails(capsys, "ngram", "train", "--input", str(wiki), "--output", str(tmp_path / "lm"))
    assert f"{wiki}:1: the document starting here contains the word" in err


def test_bad_held_out_text(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ngram", "train", "--input", str(corpus), "--output", str(tmp_path / "lm")]) == 0
    capsys.readouterr()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert f"{empty}: no text found" in _fails(capsys, "ngram", "perplexity", "--model", str(tmp_path / "lm"),
                                                "--input", str(empty))
    foreign = tmp_path / "english.txt"
    foreign.write_text("the cat sat\non the mat\n", encoding="utf-8")
    err = _fails(capsys, "ngram", "perplexity", "--model", str(tmp_path / "lm"), "--input", str(foreign))
    assert f"{foreign}: all 6 words are unknown to the model" in err and "whitespace words" in err


def test_broken_model_folders(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    held = tmp_path / "held.txt"
    held.write_text("나는 오늘\n", encoding="utf-8")
    err = _fails(capsys, "ngram", "perplexity", "--model", str(tmp_path / "nothing"), "--input", str(held))
    assert "no config.json, so not an n-gram model folder" in err
    out = tmp_path / "lm"
    assert main(["ngram", "train", "--input", str(corpus), "--order", "2", "--output", str(out)]) == 0
    capsys.readouterr()
    arpa = out / "model.arpa"
    lines = arpa.read_text(encoding="utf-8").splitlines()
    lines[10] = "not-a-number\t" + lines[10].split("\t", 1)[1]
    arpa.write_text("\n".join(lines) + "\n", encoding="utf-8")
    err = _fails(capsys, "ngram", "sample", "--model", str(out))
    assert f"{arpa}:11: log10 probability 'not-a-number' is not a number" in err
