"""Entities from Kiwi's part-of-speech tags: proper nouns (NNP) by default. Fast, no model.

Kiwi reports every morpheme with its character position in the text it was given, so the spans
point into the original text as it is. Consecutive morphemes with a chosen tag, touching or
apart by whitespace only ('버락 오바마': NNP NNP), make one entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hanformer.entities.spans import EntitySpan
from hanformer.errors import ConfigError


def load_kiwi() -> Any:
    try:
        from kiwipiepy import Kiwi
    except ImportError:
        raise ConfigError("--entities kiwi needs the Korean analyser kiwipiepy: pip install 'hanformer[korean]'") \
            from None
    return Kiwi()


class KiwiEntityDetector:
    """`detect(texts)`: the entity spans of every text (Kiwi analyses the batch on its threads)."""

    def __init__(self, tags: Sequence[str], analyser: Any = None) -> None:
        self.tags = frozenset(tags)
        self.kiwi = analyser if analyser is not None else load_kiwi()

    def detect(self, texts: Sequence[str]) -> list[list[EntitySpan]]:
        if not texts:
            return []
        analysed = self.kiwi.tokenize(list(texts))
        return [self._spans(text, tokens) for text, tokens in zip(texts, analysed, strict=True)]

    def _spans(self, text: str, tokens: Sequence[Any]) -> list[EntitySpan]:
        spans: list[EntitySpan] = []
        for tok in tokens:
            if tok.tag not in self.tags or tok.len <= 0:
                continue
            start, end = tok.start, tok.start + tok.len
            last = spans[-1] if spans else None
            if last is not None and last.end <= start and not text[last.end:start].strip():
                spans[-1] = EntitySpan(last.start, end, last.label)
            else:
                spans.append(EntitySpan(start, end, tok.tag))
        return spans
