"""Composing text to the normalizer's form (NFC/NFKC) in Python, with an offset map back to the
caller's text.

The engine's composition keeps only the first original character of each composed one (NFD `한`
= 3 jamo -> offsets (0, 1)), so texts not already in the normalizer's form are composed here,
where every composed character keeps the span of the characters it came from. Text already in
normal form (the usual case, checked in C) passes through untouched, with no alignment.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Literal

from tokenizers import normalizers

from hanformer.tokenization.normalizer import normalizer_steps

TextInput = str | Sequence[str]  # a text, or a list of words with is_split_into_words=True
ComposingForm = Literal["NFC", "NFKC"]  # the normal forms that compose (what offsets must undo)


class Alignment:
    """Character positions of a text composed in Python (NFC/NFKC) -> spans of the text the caller
    passed: every composed character keeps the span of the characters it came from."""

    __slots__ = ("_starts", "_ends", "_to_composed", "length")

    def __init__(self, starts: list[int], ends: list[int], to_composed: list[int], length: int) -> None:
        self._starts, self._ends, self._to_composed, self.length = starts, ends, to_composed, length

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of composed characters `start:end`."""
        if end > start:
            return self._starts[start], self._ends[end - 1]
        at = self._starts[start] if start < len(self._starts) else self.length
        return at, at

    def composed_index(self, original_index: int) -> int:
        return self._to_composed[original_index] if 0 <= original_index < self.length else original_index


# What one sequence's offsets need: nothing (already in normal form), one Alignment (a text), or
# one per word (with is_split_into_words, whose offsets the engine counts within each word).
SequenceAlignment = Alignment | list[Alignment | None] | None
# The alignments of a text and its pair; None when neither had to be composed.
PairAlignment = tuple[SequenceAlignment, SequenceAlignment] | None


def composing_form(normalizer: normalizers.Normalizer | None) -> ComposingForm | None:
    """"NFC" or "NFKC" when `normalizer` composes characters (whose offsets the engine gets wrong)."""
    forms = [step["type"] for step in normalizer_steps(normalizer) if step.get("type") in ("NFC", "NFKC")]
    return forms[0] if forms else None


def compose_pair(text: TextInput, pair: TextInput | None, form: ComposingForm | None, split: bool,
                 ) -> tuple[tuple[TextInput, TextInput | None], PairAlignment]:
    """The text (and pair) as the engine should see them, and the alignments that take its
    offsets back to the caller's text (None when nothing had to be composed)."""
    if form is None:
        return (text, pair), None
    text, text_alignment = compose_sequence(text, form, split)
    pair, pair_alignment = (pair, None) if pair is None else compose_sequence(pair, form, split)
    if text_alignment is None and pair_alignment is None:
        return (text, pair), None
    return (text, pair), (text_alignment, pair_alignment)


def compose_sequence(text: TextInput, form: ComposingForm, split: bool) -> tuple[TextInput, SequenceAlignment]:
    """One text (or, with `split`, each word of a word list) composed, with its alignment(s)."""
    if not split:
        return compose(text, form)  # type: ignore[arg-type]
    words = [compose(word, form) for word in text]
    if all(alignment is None for _, alignment in words):
        return text, None
    return [word for word, _ in words], [alignment for _, alignment in words]


def compose(text: str, form: ComposingForm) -> tuple[str, Alignment | None]:
    """`text` in normal form `form` ("NFC" or "NFKC") and the alignment back to `text`; None when
    `text` is in that form already (the usual case, checked in C)."""
    if unicodedata.is_normalized(form, text):
        return text, None
    whole = unicodedata.normalize(form, text)
    spans = [span for m in _RUNS.finditer(text) for span in _composition_units(text, m.start(), m.end(), form)]
    pieces = [text[a:b] if same else unicodedata.normalize(form, text[a:b]) for a, b, same in spans]
    if "".join(pieces) != whole:  # a composition across our cuts: one unit, coarse but true
        spans, pieces = [(0, len(text), False)], [whole]
    starts: list[int] = []
    ends: list[int] = []
    to_composed: list[int] = []
    for (a, b, _), piece in zip(spans, pieces, strict=True):
        if piece == text[a:b]:
            to_composed.extend(range(len(starts), len(starts) + b - a))
            starts.extend(range(a, b))
            ends.extend(range(a + 1, b + 1))
        else:  # every composed character spans all the characters it came from
            to_composed.extend([len(starts)] * (b - a))
            starts.extend([a] * len(piece))
            ends.extend([b] * len(piece))
    return whole, Alignment(starts, ends, to_composed, len(text))


# Whitespace never composes with its neighbours, so runs between spaces are normalized on their own.
_RUNS = re.compile(r"\s+|\S+")


def _composition_units(text: str, start: int, end: int, form: ComposingForm) -> Iterator[tuple[int, int, bool]]:
    """(start, end, unchanged) spans of text[start:end] that the normal form changes independently:
    a run already in normal form is one unchanged span; otherwise each span is a character with
    what composes with it (combining marks, Hangul vowel and final jamo)."""
    if unicodedata.is_normalized(form, text[start:end]):
        yield start, end, True
        return
    unit_start = start
    for i in range(start + 1, end):
        unit, ch = text[unit_start:i], text[i]
        joins = unicodedata.combining(ch) or (
            unicodedata.normalize(form, unit + ch) != unicodedata.normalize(form, unit) + unicodedata.normalize(form, ch))
        if not joins:
            yield unit_start, i, False
            unit_start = i
    yield unit_start, end, False
