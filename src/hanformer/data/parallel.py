"""Parallel corpora: a source file and a target file, line N of one the translation of line N of the other.

Read together, line by line (compressed files too, through `iter_lines`), so a wrong pair of
files fails at the first line that shows it: a file that ends before the other, an empty line
on either side (an empty sentence teaches the model to translate something into nothing), or a
byte that is not UTF-8. Each is one error line naming the file, the line and the fix.

Some corpora keep both sides in one table instead (Tatoeba's tab-separated `English<TAB>Korean
<TAB>attribution`, a chatbot's `Q,A,label` CSV): `read_table_pairs` reads a source and a target
column of such a file, with the same kind of errors.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import Literal

from hanformer.errors import InputError
from hanformer.utils.files import iter_lines

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class SentencePair:
    line: int
    """1-based line number in both files."""
    source: str
    target: str


def iter_parallel(source: PathLike, target: PathLike, *,
                  empty: Literal["error", "skip"] = "error") -> Iterator[SentencePair]:
    """The sentence pairs of two line-aligned files, in order.

    `empty`: what a blank line on either side is; 'error' (default) or 'skip' (the pair is
    dropped; line numbers still count it, so they keep naming lines of the files).
    """
    if empty not in ("error", "skip"):
        raise InputError(f"empty = {empty!r}: must be 'error' or 'skip'")
    pairs = zip_longest((text for _, text in iter_lines(source)), (text for _, text in iter_lines(target)))
    for line, (src, tgt) in enumerate(pairs, start=1):
        if src is None or tgt is None:
            longer, shorter = (source, target) if tgt is None else (target, source)
            raise InputError(f"{longer}:{line}: {shorter} has only {line - 1} lines; the two files must have one "
                             "line per sentence pair (line N of one is the translation of line N of the other)")
        blank = [path for path, text in ((source, src), (target, tgt)) if not text.strip()]
        if blank:
            if empty == "skip":
                continue
            other = target if blank[0] == source else source
            raise InputError(f"{blank[0]}:{line}: empty line (its pair is {other}:{line}); remove the pair from "
                             "both files, or skip such pairs (empty = 'skip')")
        yield SentencePair(line, src, tgt)


def read_parallel(source: PathLike, target: PathLike, *,
                  empty: Literal["error", "skip"] = "error") -> list[SentencePair]:
    """All sentence pairs of two line-aligned files (see `iter_parallel`); none is an error."""
    pairs = list(iter_parallel(source, target, empty=empty))
    if not pairs:
        raise InputError(f"{source} and {target}: no sentence pairs (the files are empty)")
    return pairs


def _resolve_column(column: int | str, header: list[str] | None, path: PathLike, side: str) -> int:
    """A column's 0-based index from its index or, with a header row, its name."""
    if isinstance(column, int):
        if column < 0:
            raise InputError(f"{path}: {side} column {column}: columns are counted from 0")
        return column
    if header is None:
        raise InputError(f"{path}: {side} column {column!r} is a name, but the file is read without a header "
                         "row; give the column's 0-based index, or read the first line as the header")
    if column not in header:
        raise InputError(f"{path}:1: no column named {column!r} in the header ({', '.join(header)}); "
                         "use one of those names or a 0-based index")
    return header.index(column)


def iter_table_pairs(path: PathLike, source_column: int | str, target_column: int | str, *,
                     delimiter: str = "\t", header: bool = False,
                     empty: Literal["error", "skip"] = "error") -> Iterator[SentencePair]:
    """The sentence pairs held in two columns of one delimited file (TSV, CSV; compressed too).

    Columns are 0-based indexes or, with `header` (the first row names the columns), names.
    Tab-separated files are read verbatim (a quote is text there, as in Tatoeba's sentences);
    CSV follows the `csv` module's quoting, so a quoted field may hold commas. `line` is the
    file's line where the row starts. A row too short for a column is an error; a blank field
    is one too unless `empty = 'skip'`.
    """
    if empty not in ("error", "skip"):
        raise InputError(f"empty = {empty!r}: must be 'error' or 'skip'")
    if len(delimiter) != 1:
        raise InputError(f"delimiter {delimiter!r}: must be one character (e.g. ',' or a tab)")
    lines = (text + "\n" for _, text in iter_lines(path))  # the newlines back, for quoted fields that span lines
    rows = csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE) if delimiter == "\t" else \
        csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    names = None
    if header:
        names = [name.strip() for name in next(rows, [])]
    src_col = _resolve_column(source_column, names, path, "source")
    tgt_col = _resolve_column(target_column, names, path, "target")
    need = max(src_col, tgt_col) + 1
    start = rows.line_num + 1
    for row in rows:
        line, start = start, rows.line_num + 1
        if not row or not any(field.strip() for field in row):
            continue  # a blank line (a file's last line often is one)
        if len(row) < need:
            raise InputError(f"{path}:{line}: {len(row)} column(s), but column {need - 1} is read; every row "
                             f"needs {need} columns separated by {delimiter!r}")
        src, tgt = row[src_col].strip(), row[tgt_col].strip()
        if not src or not tgt:
            if empty == "skip":
                continue
            which = src_col if not src else tgt_col
            raise InputError(f"{path}:{line}: column {which} is empty; remove the row, or skip such rows "
                             "(empty = 'skip')")
        yield SentencePair(line, src, tgt)


def read_table_pairs(path: PathLike, source_column: int | str, target_column: int | str, *,
                     delimiter: str = "\t", header: bool = False,
                     empty: Literal["error", "skip"] = "error") -> list[SentencePair]:
    """All sentence pairs of two columns of one delimited file (see `iter_table_pairs`); none is an error."""
    pairs = list(iter_table_pairs(path, source_column, target_column, delimiter=delimiter, header=header,
                                  empty=empty))
    if not pairs:
        raise InputError(f"{path}: no sentence pairs (the file has no rows)")
    return pairs
