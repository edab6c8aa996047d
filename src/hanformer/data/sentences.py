"""Sentence splitting for Korean and English paragraphs.

NSP needs sentence boundaries: segment A and B are runs of whole sentences. Three splitters:

* ``rules`` (default) - a fast regular-expression splitter: a sentence ends at ``. ! ? …`` (and
  closing quotes/brackets after them) followed by whitespace, except after common English
  abbreviations, single-letter initials ("J. R. R. Tolkien") or when the next word starts in
  lower case. Korean sentences end in a period after a predicate (``...했다. 그러나``), which
  this rule handles; it is about 100x faster than a morphological analyser.
* ``kiwi`` - Kiwi's ``split_into_sents`` (morphological analysis; handles Korean sentences
  without final punctuation). Needs the ``korean`` extra (kiwipiepy); slower.
* ``lines`` - every input line is one sentence (the original BERT input format).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from hanformer.errors import ConfigError

SPLITTERS = ("rules", "kiwi", "lines")

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "vol",
    "fig", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "gen", "col", "lt", "sgt", "rev", "mt", "u.s", "u.k", "ph.d", "al",
    "approx", "dept", "est", "op", "pp", "ed", "eds",
}
# End punctuation, then optional closing quotes/brackets, then the whitespace we split at.
_BOUNDARY = re.compile(r"[.!?…。！？]+[\"'”’」』)\]]*(?=\s+)")


def split_rules(text: str) -> list[str]:
    """Split one paragraph into sentences with the rules above."""
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        nxt = end
        while nxt < len(text) and text[nxt].isspace():
            nxt += 1
        if nxt >= len(text):
            break
        if text[nxt].islower() and text[nxt].isascii():
            continue  # "e.g. this" / "3 p.m. today": the sentence goes on
        if text[m.start()] == ".":
            word = text[start:m.start()].rsplit(None, 1)[-1] if text[start:m.start()].strip() else ""
            bare = word.lstrip("(\"'“‘").lower()
            if bare in _ABBREVIATIONS or (len(bare) == 1 and bare.isalpha() and bare.isascii()):
                continue
        sentence = text[start:end].strip()
        if sentence:
            out.append(sentence)
        start = nxt
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


class KiwiSplitter:
    """Kiwi's sentence splitter, loaded once per process (loading takes about a second)."""

    def __init__(self) -> None:
        try:
            from kiwipiepy import Kiwi
        except ImportError:
            raise ConfigError("sentence splitter 'kiwi' needs kiwipiepy: pip install 'hanformer[korean]' "
                              "(or use --splitter rules)") from None
        self.kiwi = Kiwi()

    def __call__(self, text: str) -> list[str]:
        return [s.text.strip() for s in self.kiwi.split_into_sents(text) if s.text.strip()]


def get_splitter(name: str) -> Callable[[str], list[str]]:
    """A function paragraph -> sentences for splitter `name` (rules, kiwi, lines)."""
    if name == "rules":
        return split_rules
    if name == "kiwi":
        return KiwiSplitter()
    if name == "lines":
        return lambda text: [text.strip()] if text.strip() else []
    raise ConfigError(f"unknown sentence splitter {name!r}; choose one of {', '.join(SPLITTERS)}")


def split_document(lines: list[str], splitter: Callable[[str], list[str]]) -> list[str]:
    """All sentences of a document: each paragraph (line) split on its own."""
    out: list[str] = []
    for line in lines:
        out.extend(splitter(line))
    return out
