"""ARPA files: exact round trip, KenLM reads ours and scores like we do, malformed files name the line."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from hanformer.errors import InputError
from hanformer.models.ngram.api import score_files, train_ngram
from hanformer.models.ngram.arpa import MISSING_UNK_LOGPROB, read_arpa, write_arpa
from hanformer.models.ngram.config import NgramConfig


def _corpus(seed: int, lines: int, letters: str = "abcdefghij") -> list[str]:
    rng = random.Random(seed)
    weights = [1.5 ** -i for i in range(len(letters))]
    return [" ".join(rng.choices(letters, weights, k=rng.randint(1, 9))) for _ in range(lines)]


def _trained(tmp_path: Path, order: int, smoothing: str, seed: int = 0):
    train = tmp_path / "train.txt"
    train.write_text("\n".join(_corpus(seed, 200)) + "\n", encoding="utf-8")
    return train_ngram([train], NgramConfig(order=order, smoothing=smoothing), tmp_path / "model")


def _held_out(tmp_path: Path, seed: int = 99) -> tuple[Path, list[str]]:
    lines = _corpus(seed, 40, "abcdefghijxyz")  # x, y, z are out of vocabulary
    path = tmp_path / "held.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


def test_round_trip_is_exact_and_scores_identically(tmp_path: Path) -> None:
    trained = _trained(tmp_path, 4, "kn")
    again = read_arpa(tmp_path / "model" / "model.arpa")
    assert again.vocab.words == trained.model.vocab.words
    for ours, theirs in zip([trained.model.keys, trained.model.logprob, trained.model.backoff],
                            [again.keys, again.logprob, again.backoff], strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert np.array_equal(a, b)
    held, _ = _held_out(tmp_path)
    assert np.array_equal(score_files(trained, held).sentence_logprobs,
                          score_files(tmp_path / "model", held).sentence_logprobs)
    write_arpa(tmp_path / "again.arpa", again)
    assert (tmp_path / "again.arpa").read_bytes() == (tmp_path / "model" / "model.arpa").read_bytes()


@pytest.mark.parametrize("smoothing", ["kn", "absolute", "addk"])
@pytest.mark.parametrize("order", [2, 3, 5])
def test_kenlm_scores_our_arpa_file_like_our_model(tmp_path: Path, order: int, smoothing: str) -> None:
    kenlm = pytest.importorskip("kenlm")  # KenLM needs at least a bigram model
    trained = _trained(tmp_path, order, smoothing, seed=order)
    held, lines = _held_out(tmp_path)
    ours = score_files(trained, held).sentence_logprobs
    reference = kenlm.Model(str(tmp_path / "model" / "model.arpa"))
    theirs = np.array([reference.score(line, bos=True, eos=True) for line in lines])
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    # KenLM keeps float32: the agreement is much closer than the 1e-4 asked for.
    assert np.max(np.abs(ours - theirs) / np.abs(theirs)) < 1e-6
    oov = [sum(is_oov for _, _, is_oov in reference.full_scores(line)) for line in lines]
    assert sum(oov) == score_files(trained, held).oov > 0


GOOD = """\
\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.3
-0.5\t</s>
-0.4\ta\t-0.2

\\2-grams:
-0.1\t<s> a
-0.2\ta </s>

\\end\\
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lm.arpa"
    path.write_text(text, encoding="utf-8")
    return path


def test_foreign_file_with_comments_and_without_unk_loads(tmp_path: Path) -> None:
    text = "made by some tool\n\n" + GOOD.replace("-1.0\t<unk>\n", "").replace("ngram 1=4", "ngram 1=3")
    model = read_arpa(_write(tmp_path, text))
    assert model.vocab.words == ["<unk>", "<s>", "</s>", "a"]
    assert model.logprob[0][0] == MISSING_UNK_LOGPROB
    assert model.logprob[1].tolist() == [-0.1, -0.2]
    assert model.backoff[0][1] == -0.3


@pytest.mark.parametrize(("change", "line", "words"), [
    (lambda t: t.replace("\\data\\\n", ""), None, "no '\\data\\' line"),
    (lambda t: t.replace("ngram 2=2", "ngram 3=2"), 3, "expected 'ngram 2=COUNT'"),
    (lambda t: t.replace("-0.4\ta", "minus\ta"), 9, "log10 probability 'minus' is not a number"),
    (lambda t: t.replace("-0.2\ta </s>", "-0.2\ta </s> x y"), 13, "found 5 fields"),
    (lambda t: t.replace("ngram 2=2", "ngram 2=3"), 14, "announces 3 2-grams"),
    (lambda t: t.replace("<s> a\n", "<s> b\n"), 12, "the word 'b' of this 2-gram is not among the 1-grams"),
    (lambda t: t.replace("-0.2\ta </s>", "-0.2\t<s> a"), 13, "is listed twice (first at line 12)"),
    (lambda t: t.replace("-0.4\ta", "-0.4\t</s>"), 9, "1-gram '</s>' is listed twice"),
    (lambda t: t.replace("\\end\\\n", ""), 14, "expected '\\end\\'"),
    (lambda t: t.replace("\\2-grams:", "\\3-grams:"), 11, "expected '\\2-grams:'"),
    (lambda t: t.replace("-0.1\t<s>", "nan\t<s>"), 12, "is not finite"),
])
def test_malformed_files_name_the_line(tmp_path: Path, change, line: int | None, words: str) -> None:
    path = _write(tmp_path, change(GOOD))
    with pytest.raises(InputError) as caught:
        read_arpa(path)
    message = str(caught.value)
    assert words in message
    assert message.startswith(f"{path}:{line}:" if line else f"{path}:")
    assert "\n" not in message


def test_missing_context_and_missing_sentence_start_are_refused(tmp_path: Path) -> None:
    trigram = GOOD.replace("ngram 2=2\n", "ngram 2=2\nngram 3=1\n").replace(
        "\\end\\", "\\3-grams:\n-0.3\ta a </s>\n\n\\end\\").replace("-0.2\ta </s>", "-0.2\ta </s>")
    path = _write(tmp_path, trigram)
    with pytest.raises(InputError, match=r"lm.arpa:17: the context 'a a' of this 3-gram is not among the 2-grams"):
        read_arpa(path)
    path = _write(tmp_path, GOOD.replace("-99\t<s>\t-0.3\n", "").replace("ngram 1=4", "ngram 1=3")
                  .replace("-0.1\t<s> a", "-0.1\ta a"))
    with pytest.raises(InputError, match="lack '<s>'"):
        read_arpa(path)
