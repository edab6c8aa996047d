"""Readers for the data formats people actually have, with row-level error reporting.

Every reader returns a `ReadResult`: the good examples plus the malformed rows it skipped
(each with `file:line` and the reason). With `on_error="fail"` the first malformed row raises
an `InputError` instead. Formats:

* delimited tables (`read_table`): NSMC and KorSTS (TSV, quotes are literal: quoting off),
  SST-2, or any CSV/TSV with named text/label columns;
* JSON records (`read_records`): a JSON list (KLUE-NLI) or JSON lines, named fields;
* `read_klue_ner`: KLUE's character-per-line BIO TSV with `##` comment lines;
* `read_conll`: `TOKEN ... TAG` lines, blank line between sentences, `-DOCSTART-` skipped;
* `read_squad`: SQuAD 1.1 / KorQuAD 1.0 JSON, answers checked against the context.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar

from hanformer.errors import InputError
from hanformer.tasks.examples import Answer, QAExample, TextExample, TokenExample
from hanformer.utils.files import iter_lines, plain_suffix, require_file

OnError = Literal["skip", "fail"]
E = TypeVar("E")


@dataclass
class BadRow:
    where: str  # "file:line"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ReadResult(Generic[E]):
    examples: list[E]
    skipped: list[BadRow] = field(default_factory=list)
    path: str = ""

    def summary(self) -> str:
        """One line for the log: always printed, so skipped rows never go unnoticed."""
        text = f"{self.path}: read {len(self.examples)} examples, skipped {len(self.skipped)} malformed rows"
        if self.skipped:
            text += f" (first: {self.skipped[0]})"
        return text


class _Collector:
    """Records malformed rows, or raises on the first one when on_error='fail'."""

    def __init__(self, on_error: OnError) -> None:
        if on_error not in ("skip", "fail"):
            raise InputError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
        self.on_error = on_error
        self.bad: list[BadRow] = []

    def __call__(self, where: str, reason: str) -> None:
        if self.on_error == "fail":
            raise InputError(f"{where}: {reason} (fix the row, or pass --on-error skip to skip such rows)")
        self.bad.append(BadRow(where, reason))


def _check_label(value: str, labels: Sequence[str] | None) -> str | None:
    """The label as a string, or None when it is not one of `labels`."""
    value = value.strip()
    if labels is None or value in labels:
        return value
    return None


def _parse_score(value: str) -> float | None:
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if math.isfinite(score) else None  # NaN and inf are not scores


def _score_problem(raw: object, field_name: str, score_range: tuple[float, float] | None) -> str | None:
    """Why `raw` is not a usable score for field `field_name` (None: it is one)."""
    score = _parse_score(str(raw))
    if score is None:
        return f"score {raw!r} in field {field_name!r} is not a number"
    if score_range is not None and not score_range[0] <= score <= score_range[1]:
        low, high = score_range
        return f"score {raw!r} in field {field_name!r} is outside {low:g}-{high:g}"
    return None


def _make_text_example(fields: dict[str, object], where: str, text_field: str, pair_field: str | None,
                       label_field: str | None, labels: Sequence[str] | None, regression: bool,
                       bad: _Collector, score_range: tuple[float, float] | None = None) -> TextExample | None:
    for name in (text_field, pair_field, label_field):
        if name is not None and name not in fields:
            bad(where, f"missing field {name!r}")
            return None
    text = fields[text_field]
    if not isinstance(text, str) or not text.strip():
        bad(where, f"empty text in field {text_field!r}")
        return None
    pair: str | None = None
    if pair_field is not None:
        raw_pair = fields[pair_field]
        if not isinstance(raw_pair, str) or not raw_pair.strip():
            bad(where, f"empty text in field {pair_field!r}")
            return None
        pair = raw_pair
    label: str | float | None = None
    if label_field is not None:
        raw = fields[label_field]
        if regression:
            problem = _score_problem(raw, label_field, score_range)
            if problem:
                bad(where, problem)
                return None
            label = _parse_score(str(raw))
        else:
            label = _check_label(str(raw), labels)
            if label is None:
                bad(where, f"unknown label {raw!r} in field {label_field!r} (expected one of {', '.join(labels or [])})")
                return None
    return TextExample(text, pair, label, where)


def read_table(path: str | os.PathLike[str], *, text: str, pair: str | None = None,
               label: str | None = "label", labels: Sequence[str] | None = None,
               regression: bool = False, delimiter: str | None = None, quoting: bool | None = None,
               on_error: OnError = "skip", score_range: tuple[float, float] | None = None) -> ReadResult[TextExample]:
    """A CSV/TSV file with a header row naming its columns.

    `delimiter` defaults to tab for `.tsv`/`.txt` and comma otherwise. `quoting` defaults to off
    for tab-separated files (NSMC and KorSTS contain literal quotes) and on for CSV.
    `label=None` reads texts only (for prediction). `score_range` (regression): the scores the
    task defines, e.g. KorSTS's (0, 5); others are malformed rows.
    """
    p = require_file(path, "data file")
    if delimiter is None:
        delimiter = "," if plain_suffix(p) == ".csv" else "\t"
    if quoting is None:
        quoting = delimiter != "\t"
    bad = _Collector(on_error)
    examples: list[TextExample] = []
    header: list[str] | None = None
    for line_no, fields in _iter_delimited(p, delimiter, quoting):
        if header is None:
            header = [h.strip().lstrip("\ufeff") for h in fields]
            missing = [c for c in (text, pair, label) if c is not None and c not in header]
            if missing:
                raise InputError(f"{p}:{line_no}: header has no column {missing[0]!r} "
                                 f"(columns: {', '.join(header)}); name the right column with --text-column/--pair-column/--label-column")
            continue
        if not any(f.strip() for f in fields):
            continue  # blank line
        where = f"{p}:{line_no}"
        if len(fields) != len(header):
            bad(where, f"{len(fields)} columns, expected {len(header)} ({', '.join(header)})")
            continue
        ex = _make_text_example(dict(zip(header, fields, strict=False)), where, text, pair, label, labels, regression,
                                bad, score_range)
        if ex is not None:
            examples.append(ex)
    if header is None:
        raise InputError(f"{p}: file is empty (expected a header row)")
    return ReadResult(examples, bad.bad, str(p))


def _iter_delimited(p: Path, delimiter: str, quoting: bool) -> Iterator[tuple[int, list[str]]]:
    if not quoting:
        for line_no, line in iter_lines(p):
            yield line_no, line.split(delimiter)
        return
    # csv needs the whole logical record (quoted fields may span lines); decode errors are
    # still reported by iter_lines with their line number.
    text = "\n".join(line for _, line in iter_lines(p))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as e:
        raise InputError(f"{p}:{reader.line_num}: malformed CSV ({e})") from None


def _iter_json_records(p: Path) -> Iterator[tuple[str, object]]:
    """(location, record) of a JSON list file or a JSON-lines file."""
    first = ""
    for _, line in iter_lines(p):
        if line.strip():
            first = line.strip().lstrip("\ufeff")
            break
    if first.startswith("["):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
        for i, rec in enumerate(data):
            yield f"{p}: item {i}", rec
        return
    for line_no, line in iter_lines(p):
        if not line.strip():
            continue
        try:
            yield f"{p}:{line_no}", json.loads(line)
        except json.JSONDecodeError as e:
            yield f"{p}:{line_no}", InputError(f"invalid JSON ({e.msg} at column {e.colno})")


def read_records(path: str | os.PathLike[str], *, text: str, pair: str | None = None,
                 label: str | None = "label", labels: Sequence[str] | None = None,
                 regression: bool = False, on_error: OnError = "skip") -> ReadResult[TextExample]:
    """A JSON list of objects (KLUE-NLI) or JSON lines, with named text/pair/label fields."""
    p = require_file(path, "data file")
    bad = _Collector(on_error)
    examples = []
    for where, rec in _iter_json_records(p):
        if isinstance(rec, InputError):
            bad(where, rec.message)
            continue
        if not isinstance(rec, dict):
            bad(where, "record is not a JSON object")
            continue
        ex = _make_text_example(rec, where, text, pair, label, labels, regression, bad)
        if ex is not None:
            examples.append(ex)
    return ReadResult(examples, bad.bad, str(p))


def _check_tags(tags: list[str], labels: Sequence[str] | None) -> str | None:
    if labels is None:
        return None
    for t in tags:
        if t not in labels:
            return f"unknown tag {t!r} (expected one of {', '.join(labels)})"
    return None


# `## <guid><TAB><sentence>`: the sentence the character lines below it spell, its entities
# marked `<text:TYPE>` (the file's header comments have spaces before any tab, so never match).
_KLUE_SENTENCE_LINE = re.compile(r"##\s*\S+\t(.*)$")
_KLUE_ENTITY_MARK = re.compile(r"<([^<>]*):([A-Z]{2})>")


def _sentence_mismatch(sentence: tuple[int, str] | None, chars: list[str]) -> str | None:
    """Why the character lines do not spell their `##` sentence line (None: they do, or the
    file has no sentence lines)."""
    if sentence is None:
        return None
    line_no, tagged = sentence
    expected = _KLUE_ENTITY_MARK.sub(r"\1", tagged)
    got = "".join(chars)
    if got == expected:
        return None
    at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))
    return (f"the character lines spell {len(got)} characters but the sentence on line {line_no} has "
            f"{len(expected)}; they first differ at character {at + 1} "
            f"({got[at:at + 1]!r} vs {expected[at:at + 1]!r}): a character line is missing, extra or wrong")


def read_klue_ner(path: str | os.PathLike[str], *, labels: Sequence[str] | None = None,
                  on_error: OnError = "skip") -> ReadResult[TokenExample]:
    """KLUE-NER TSV: one `CHAR<TAB>TAG` line per character (a space is a character too),
    sentences separated by blank lines, `## ...` lines are comments (guid + tagged sentence).
    A sentence whose character lines do not spell its `## guid<TAB>sentence` line (a line lost
    or added by an edit) is malformed."""
    p = require_file(path, "data file")
    bad = _Collector(on_error)
    examples: list[TokenExample] = []
    chars: list[str] = []
    tags: list[str] = []
    start = 0
    broken: str | None = None
    sentence: tuple[int, str] | None = None  # (line, text) of the current `##` sentence line

    def flush() -> None:
        nonlocal chars, tags, broken, sentence
        if chars or broken:
            where = f"{p}:{start}"
            problem = broken or _check_tags(tags, labels) or _sentence_mismatch(sentence, chars)
            if problem:
                bad(where, problem)
            else:
                examples.append(TokenExample.from_units(chars, tags, "", where))
        chars, tags, broken, sentence = [], [], None, None

    for line_no, line in iter_lines(p):
        if line.startswith("##"):
            match = _KLUE_SENTENCE_LINE.match(line)
            if match:
                if chars or broken:
                    flush()  # a new sentence line without the blank line before it
                sentence = (line_no, match.group(1))
            continue
        if line == "":
            flush()
            continue
        if not chars and broken is None:
            start = line_no
        parts = line.split("\t")
        if len(parts) != 2 or len(parts[0]) != 1:
            broken = broken or f"line {line_no}: expected 'CHAR<TAB>TAG' with one character, got {line!r}"
            continue
        chars.append(parts[0])
        tags.append(parts[1].strip())
    flush()
    return ReadResult(examples, bad.bad, str(p))


def read_conll(path: str | os.PathLike[str], *, labels: Sequence[str] | None = None,
               on_error: OnError = "skip") -> ReadResult[TokenExample]:
    """CoNLL-style NER: `TOKEN [POS CHUNK] TAG` per line (first and last columns are used),
    blank lines between sentences, `-DOCSTART-` lines ignored."""
    p = require_file(path, "data file")
    bad = _Collector(on_error)
    examples: list[TokenExample] = []
    words: list[str] = []
    tags: list[str] = []
    start = 0
    broken: str | None = None

    def flush() -> None:
        nonlocal words, tags, broken
        if words or broken:
            where = f"{p}:{start}"
            problem = broken or _check_tags(tags, labels)
            if problem:
                bad(where, problem)
            else:
                examples.append(TokenExample.from_units(words, tags, " ", where))
        words, tags, broken = [], [], None

    for line_no, line in iter_lines(p):
        parts = line.split()
        if not parts:
            flush()
            continue
        if parts[0] == "-DOCSTART-":
            flush()
            continue
        if not words and broken is None:
            start = line_no
        if len(parts) < 2:
            broken = broken or f"line {line_no}: expected 'TOKEN TAG', got {line!r}"
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    flush()
    return ReadResult(examples, bad.bad, str(p))


def read_squad(path: str | os.PathLike[str], *, on_error: OnError = "skip",
               require_answers: bool = True) -> ReadResult[QAExample]:
    """SQuAD 1.1 / KorQuAD 1.0 JSON. A question whose answer text is not found at
    `answer_start` in the context is malformed; so is one with no answer (unless
    `require_answers=False`, for prediction-only files)."""
    p = require_file(path, "data file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        list(iter_lines(p))  # reports the line and byte offset
        raise
    except json.JSONDecodeError as e:
        raise InputError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{p}: not SQuAD-format JSON (expected an object with a 'data' list of articles)")
    bad = _Collector(on_error)
    examples: list[QAExample] = []
    for a_i, article in enumerate(data["data"]):
        title = str(article.get("title", "")) if isinstance(article, dict) else ""
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            bad(f"{p}: data[{a_i}]", "article has no 'paragraphs' list")
            continue
        for p_i, para in enumerate(paragraphs):
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not context.strip():
                bad(f"{p}: data[{a_i}].paragraphs[{p_i}]", "missing or empty 'context'")
                continue
            for q_i, qa in enumerate(para.get("qas", [])):
                qid = str(qa.get("id", f"{a_i}-{p_i}-{q_i}")) if isinstance(qa, dict) else f"{a_i}-{p_i}-{q_i}"
                where = f"{p}: question {qid} (data[{a_i}].paragraphs[{p_i}].qas[{q_i}])"
                if not isinstance(qa, dict) or not str(qa.get("question", "")).strip():
                    bad(where, "missing or empty 'question'")
                    continue
                answers, problem = [], None
                for ans in qa.get("answers", []) or []:
                    try:
                        a = Answer(str(ans["text"]), int(ans["answer_start"]))
                    except (KeyError, TypeError, ValueError):
                        problem = "answer without 'text' and integer 'answer_start'"
                        break
                    if context[a.start:a.end] != a.text:
                        problem = (f"answer {a.text!r} does not match the context at answer_start "
                                   f"{a.start} (context has {context[a.start:a.end]!r})")
                        break
                    answers.append(a)
                if problem is None and require_answers and not answers:
                    problem = "question has no answers"
                if problem:
                    bad(where, problem)
                    continue
                examples.append(QAExample(qid, str(qa["question"]), context, answers, title, where))
    return ReadResult(examples, bad.bad, str(p))


def read_texts(path: str | os.PathLike[str] | None, *, pair_separator: str = "\t",
               lines: Sequence[str] | None = None) -> list[TextExample]:
    """Raw input for prediction: one text per line, or `TEXT<TAB>PAIR` for pair tasks
    (`QUESTION<TAB>CONTEXT` for QA). `path=None` reads `lines` (e.g. stdin)."""
    out = []
    source = iter_lines(path) if path is not None else enumerate(lines or [], start=1)
    for line_no, line in source:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        text, _, pair = line.partition(pair_separator)
        out.append(TextExample(text, pair or None, None, f"{path or '<stdin>'}:{line_no}"))
    return out


Reader = Callable[..., ReadResult]
