"""ARPA back-off files: the text format KenLM, SRILM and most decoders read.

    \\data\\
    ngram 1=<count>
    ...
    \\1-grams:
    <log10 p>\\t<w>\\t<log10 backoff>
    ...
    \\2-grams:
    <log10 p>\\t<w1> <w2>\\t<log10 backoff>
    ...
    \\end\\

Numbers are written with Python's shortest round-trip repr, so reading a file back gives the
same float64 values bit for bit (and a model scores the same before and after saving). A
backoff weight is written for every n-gram that is the context of a longer one.
"""

from __future__ import annotations

import itertools
import os
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hanformer.errors import InputError, where
from hanformer.models.ngram.counts import extend_keys, find_rows
from hanformer.models.ngram.model import NgramModel
from hanformer.models.ngram.vocab import BOS, EOS, SPECIALS, Vocabulary
from hanformer.utils.files import atomic_write, iter_lines

MISSING_UNK_LOGPROB = -100.0  # what KenLM gives <unk> when a file does not list it
_COUNT_LINE = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)")
_SECTION = re.compile(r"\\(\d+)-grams:")
_WRITE_BATCH = 1 << 16


# ------------------------------------------------------------------------------------ writing
def write_arpa(path: str | os.PathLike[str], model: NgramModel) -> None:
    words = np.array(model.vocab.words, dtype=object)
    with atomic_write(path) as f:
        f.write("\\data\\\n")
        for k, keys in enumerate(model.keys, start=1):
            f.write(f"ngram {k}={len(keys)}\n")
        for k, ids in enumerate(_word_ids(model), start=1):
            f.write(f"\n\\{k}-grams:\n")
            is_context = _contexts(model, k)
            for start in range(0, len(ids), _WRITE_BATCH):
                stop = start + _WRITE_BATCH
                f.write(_lines(words[ids[start:stop]], model.logprob[k - 1][start:stop],
                               model.backoff[k - 1][start:stop], is_context[start:stop]))
        f.write("\n\\end\\\n")


def _word_ids(model: NgramModel) -> Iterator[np.ndarray]:
    """The word ids of every row, order by order (rows x k)."""
    ids = model.keys[0][:, None]
    yield ids
    for keys in model.keys[1:]:
        ids = np.hstack([ids[keys // model.vocab_size], (keys % model.vocab_size)[:, None]])
        yield ids


def _contexts(model: NgramModel, k: int) -> np.ndarray:
    """Which k-grams start a listed (k+1)-gram, and so carry a backoff weight."""
    is_context = np.zeros(len(model.keys[k - 1]), bool)
    if k < model.order:
        is_context[model.keys[k] // model.vocab_size] = True
    return is_context


def _lines(grams: np.ndarray, logprob: np.ndarray, backoff: np.ndarray, is_context: np.ndarray) -> str:
    if not np.all(np.isfinite(logprob)) or not np.all(np.isfinite(backoff)):
        raise ValueError("non-finite log probability in an n-gram model")
    out = []
    for gram, p, b, has in zip(grams.tolist(), logprob.tolist(), backoff.tolist(), is_context.tolist(),
                               strict=True):
        text = f"{p!r}\t{' '.join(gram)}"
        out.append(f"{text}\t{b!r}\n" if has else f"{text}\n")
    return "".join(out)


# ------------------------------------------------------------------------------------ reading
@dataclass
class _Section:
    """The entries of one order: word ids (rows x order), log10 probability and backoff, and the
    line of the first entry (entries are consecutive lines)."""

    order: int
    ids: np.ndarray
    logprob: np.ndarray
    backoff: np.ndarray
    first_line: int

    def line(self, row: int) -> int:
        return self.first_line + row


class _Lines:
    """The file's lines, with the number of the last one read for error messages."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self.raw = iter_lines(path)  # (line number, text); entry loops read it directly, for speed
        self.line_no = 0

    def next(self) -> str | None:
        item = next(self.raw, None)
        if item is None:
            return None
        self.line_no, text = item
        return text.strip()

    def next_nonblank(self) -> str | None:
        while (text := self.next()) is not None:
            if text:
                return text
        return None

    def error(self, message: str) -> InputError:
        return InputError(f"{where(self.path, self.line_no)}: {message}")


def read_arpa(path: str | os.PathLike[str]) -> NgramModel:
    """Load an ARPA file (ours, KenLM's, SRILM's). Errors name the file and line."""
    lines = _Lines(path)
    counts = _read_header(lines)
    words: list[str] = []
    unigrams = _read_entries(lines, 1, counts[0], len(counts) == 1, None, words)
    vocab, unigram_ids = _vocabulary(path, words, unigrams)
    model = _unigram_model(vocab, unigram_ids, unigrams)
    for k, count in enumerate(counts[1:], start=2):
        _expect_section(lines, lines.next_nonblank(), k)
        _add_order(path, model, _read_entries(lines, k, count, k == len(counts), vocab.index))
    text = lines.next_nonblank()
    if text != "\\end\\":
        raise lines.error(f"expected '\\end\\' after the {len(counts)}-grams, found {_shown(text)}")
    return model


def _shown(text: str | None) -> str:
    return "the end of the file" if text is None else repr(text[:60])


def _read_header(lines: _Lines) -> list[int]:
    while (text := lines.next()) is not None and text != "\\data\\":
        pass  # text before \data\ is a comment, as in SRILM and KenLM
    if text is None:
        raise InputError(f"{lines.path}: no '\\data\\' line: not an ARPA language model file")
    counts: list[int] = []
    while (text := lines.next_nonblank()) is not None and (m := _COUNT_LINE.fullmatch(text)):
        if int(m.group(1)) != len(counts) + 1:
            raise lines.error(f"expected 'ngram {len(counts) + 1}=COUNT', found {text!r} (orders must run 1, 2, ...)")
        counts.append(int(m.group(2)))
    if not counts:
        raise lines.error(f"expected 'ngram 1=COUNT' after '\\data\\', found {_shown(text)}")
    _expect_section(lines, text, 1)
    return counts


def _expect_section(lines: _Lines, text: str | None, k: int) -> None:
    m = _SECTION.fullmatch(text or "")
    if m is None or int(m.group(1)) != k:
        raise lines.error(f"expected '\\{k}-grams:', found {_shown(text)}")


def _read_entries(lines: _Lines, k: int, count: int, highest: bool, index: dict[str, int] | None,
                  words: list[str] | None = None) -> _Section:
    """The next `count` entries of order `k`: word ids through `index` or, for the unigrams
    (`index` None), the words themselves appended to `words`. The loop is kept bare (typed
    arrays, no per-line calls of our own) because a large model has tens of millions of lines;
    anything unexpected is diagnosed afterwards, by line."""
    allowed = (k + 1,) if highest else (k + 1, k + 2)
    logprob, backoff, ids = array("d"), array("d"), array("q")
    lookup = index.__getitem__ if index is not None else None
    first_line = lines.line_no + 1
    for line_no, text in itertools.islice(lines.raw, count):
        lines.line_no = line_no
        fields = text.split()
        if len(fields) not in allowed or fields[0].startswith("\\"):
            raise _shape_error(lines, fields, k, count, len(logprob), highest)
        try:
            logprob.append(float(fields[0]))
            backoff.append(float(fields[-1]) if len(fields) == k + 2 else 0.0)
            if lookup is not None:
                ids.extend(map(lookup, fields[1:k + 1]))
        except (ValueError, KeyError):
            raise _entry_error(lines, fields, k, index) from None
        if words is not None:
            words.append(fields[1])
    if len(logprob) < count:
        raise _shape_error(lines, [], k, count, len(logprob), highest)
    section = _Section(k, np.frombuffer(ids, np.int64).reshape(-1, k) if lookup else np.zeros((0, k), np.int64),
                       np.frombuffer(logprob), np.frombuffer(backoff), first_line)
    _check_finite(lines, section)
    return section


def _shape_error(lines: _Lines, fields: list[str], k: int, count: int, done: int, highest: bool) -> InputError:
    if not fields or fields[0].startswith("\\"):
        return lines.error(f"the header announces {count} {k}-grams but the section ends after {done}; "
                           f"fix the 'ngram {k}=' line or the section")
    shape = "log10prob w1 ... wk" + ("" if highest else " [backoff]")
    return lines.error(f"a {k}-gram line has the fields '{shape}' with k={k}; found {len(fields)} fields")


def _entry_error(lines: _Lines, fields: list[str], k: int, index: dict[str, int] | None) -> InputError:
    """Why one entry failed: a number that is not one, or a word that is not a 1-gram."""
    for text, what in ((fields[0], "log10 probability"), (fields[-1] if len(fields) == k + 2 else "0", "backoff")):
        try:
            float(text)
        except ValueError:
            return lines.error(f"{what} {text!r} is not a number")
    word = next(w for w in fields[1:k + 1] if index is not None and w not in index)
    return lines.error(f"the word {word!r} of this {k}-gram is not among the 1-grams")


def _check_finite(lines: _Lines, section: _Section) -> None:
    for values, what in ((section.logprob, "log10 probability"), (section.backoff, "backoff")):
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            row = int(bad[0])
            raise InputError(f"{where(lines.path, section.line(row))}: {what} {values[row]!r} is not finite "
                             "(ARPA files write log10 of zero as -99)")


# ------------------------------------------------------------------------------ tables
def _vocabulary(path: str | os.PathLike[str], words: list[str], unigrams: _Section) -> tuple[Vocabulary, np.ndarray]:
    """The vocabulary (specials first, then the file's order) and the id of each unigram line."""
    seen: dict[str, int] = {}
    for row, word in enumerate(words):
        line = unigrams.line(row)
        if word in seen:
            raise InputError(f"{where(path, line)}: the 1-gram {word!r} is listed twice (first at line {seen[word]})")
        seen[word] = line
    for needed in (BOS, EOS):
        if needed not in seen:
            raise InputError(f"{path}: the 1-grams lack {needed!r}; an ARPA model must list <s> and </s>")
    vocab = Vocabulary(w for w in words if w not in SPECIALS)
    return vocab, np.array([vocab.index[w] for w in words], dtype=np.int64)


def _unigram_model(vocab: Vocabulary, ids: np.ndarray, unigrams: _Section) -> NgramModel:
    logprob = np.full(len(vocab), MISSING_UNK_LOGPROB)  # only an unlisted <unk> keeps it, as in KenLM
    backoff = np.zeros(len(vocab))
    logprob[ids] = unigrams.logprob
    backoff[ids] = unigrams.backoff
    return NgramModel(vocab, [np.arange(len(vocab), dtype=np.int64)], [logprob], [backoff])


def _add_order(path: str | os.PathLike[str], model: NgramModel, section: _Section) -> None:
    """Key the entries (their context looked up in the table below), sort them and append the order."""
    k, ids = section.order, section.ids
    context = ids[:, 0]
    for j in range(1, k - 1):
        context = find_rows(model.keys[j], extend_keys(context, ids[:, j], model.vocab_size))
    missing = np.flatnonzero(context < 0)
    if len(missing):
        i = int(missing[0])
        raise InputError(f"{where(path, section.line(i))}: the context "
                         f"{' '.join(model.vocab.words_of(ids[i, :-1]))!r} of this {k}-gram is not among the "
                         f"{k - 1}-grams (every n-gram's first words must be listed)")
    keys = extend_keys(context, ids[:, -1], model.vocab_size)
    order = np.argsort(keys, kind="stable")
    repeated = np.flatnonzero(np.diff(keys[order]) == 0)
    if len(repeated):
        first, again = sorted((int(order[repeated[0]]), int(order[repeated[0] + 1])))
        raise InputError(f"{where(path, section.line(again))}: the {k}-gram "
                         f"{' '.join(model.vocab.words_of(ids[again]))!r} is listed twice "
                         f"(first at line {section.line(first)})")
    model.keys.append(keys[order])
    model.logprob.append(section.logprob[order])
    model.backoff.append(section.backoff[order])
