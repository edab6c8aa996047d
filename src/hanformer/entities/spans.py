"""`EntitySpan`: an entity as a character span of the text it was found in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class EntitySpan:
    start: int  # character offsets into the original text: text[start:end] is the entity
    end: int
    label: str  # the Kiwi tag (NNP, ...) or the NER model's entity type (PS, LC, ...)


def merged_spans(spans: Iterable[EntitySpan | tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) pairs sorted, empty ones dropped, overlapping and nested ones merged into
    their union: markers cannot nest, and a token is in an entity or not. Spans that only touch
    (one ends where the next starts) stay apart."""
    pairs = sorted((s.start, s.end) if isinstance(s, EntitySpan) else (int(s[0]), int(s[1])) for s in spans)
    out: list[tuple[int, int]] = []
    for start, end in pairs:
        if end <= start:
            continue
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
