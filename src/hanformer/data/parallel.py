"""Parallel corpora: a source file and a target file, line N of one the translation of line N of the other.

Read together, line by line (compressed files too, through `iter_lines`), so a wrong pair of
files fails at the first line that shows it: a file that ends before the other, an empty line
on either side (an empty sentence teaches the model to translate something into nothing), or a
byte that is not UTF-8. Each is one error line naming the file, the line and the fix.
"""

from __future__ import annotations

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
