"""The examples every task reader produces: what a fine-tuning task is made of, before tokens.

`source` is `file:line` (or `file: item N`) so any later complaint can point at the user's data.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TextExample:
    """A sentence (or sentence pair) with a class label or a real-valued score."""

    text: str
    text_pair: str | None = None
    label: str | float | None = None
    source: str = ""


@dataclass
class TokenExample:
    """A sentence split into units (words for CoNLL, characters for KLUE-NER) with one tag each.

    `text` is the sentence as a string and `spans[i]` the character span of unit i in it, so that
    sub-word tokens can be mapped back to units (and entities reported as character spans).
    """

    text: str
    spans: list[tuple[int, int]]
    tags: list[str] | None = None
    source: str = ""

    @property
    def units(self) -> list[str]:
        return [self.text[s:e] for s, e in self.spans]

    @classmethod
    def from_units(cls, units: list[str], tags: list[str] | None, sep: str, source: str = "") -> TokenExample:
        """Join units with `sep` (" " for words, "" for characters) remembering their spans."""
        spans, pos = [], 0
        for i, u in enumerate(units):
            if i:
                pos += len(sep)
            spans.append((pos, pos + len(u)))
            pos += len(u)
        return cls(sep.join(units), spans, tags, source)


@dataclass
class Answer:
    text: str
    start: int  # character offset in the context

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass
class QAExample:
    """A question about a context, with the gold answers (several for dev-style files)."""

    id: str
    question: str
    context: str
    answers: list[Answer] = field(default_factory=list)
    title: str = ""
    source: str = ""
