"""Entity spans -> markers and entity ids on the pieces of a text, offsets kept.

Works on the pieces the tokenizer made of the *original* text: `[ENT]` goes in front of the first
piece of an entity and `[/ENT]` after its last, and every piece keeps its own offsets, so answer
spans, NER spans and attention views still point into what the user typed. The markers get
zero-width offsets at the entity's edges ((start, start) and (end, end)): they cover no
character, so no answer or entity span can start or end on one. An entity that starts or ends
inside a piece takes the whole piece (with Kiwi's morpheme split, pieces end at morphemes).

Pretraining shards keep only the marked ids; `entity_ids_from_markers` reads the entity ids back
from the markers in each batch.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hanformer.entities.spans import EntitySpan, merged_spans

ENTITY_START, ENTITY_END = "[ENT]", "[/ENT]"
Offsets = list[tuple[int, int]]


@dataclass(frozen=True)
class MarkerIds:
    start: int  # id of [ENT]
    end: int  # id of [/ENT]


@dataclass
class MarkedPieces:
    ids: list[int]
    offsets: Offsets
    entity_ids: list[int]  # 1: the piece is part of an entity; 0: not, and for the markers themselves


def piece_ranges(offsets: Sequence[tuple[int, int]], spans: Sequence[EntitySpan | tuple[int, int]]
                 ) -> list[tuple[int, int]]:
    """(first, last) piece indices of every entity: the pieces overlapping its characters.
    Entities that share a piece become one range; spans covering no piece (only spaces) none."""
    ends = [e for _, e in offsets]  # non-decreasing, as the tokenizer emits pieces in text order
    ranges: list[tuple[int, int]] = []
    for start, end in merged_spans(spans):
        first = bisect.bisect_right(ends, start)  # the first piece ending after the entity starts
        last = first - 1
        while last + 1 < len(offsets) and offsets[last + 1][0] < end:
            last += 1
        if last < first:
            continue
        if ranges and first <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(last, ranges[-1][1]))
        else:
            ranges.append((first, last))
    return ranges


def mark_pieces(ids: Sequence[int], offsets: Sequence[tuple[int, int]],
                spans: Sequence[EntitySpan | tuple[int, int]], markers: MarkerIds | None) -> MarkedPieces:
    """The pieces with markers around every entity (when `markers` is given) and their entity ids."""
    ranges = piece_ranges(offsets, spans)
    inside = [0] * len(ids)
    for first, last in ranges:
        inside[first:last + 1] = [1] * (last + 1 - first)
    if markers is None:
        return MarkedPieces(list(ids), list(offsets), inside)
    opens = {first for first, _ in ranges}
    closes = {last for _, last in ranges}
    out = MarkedPieces([], [], [])
    for i, (piece, offset) in enumerate(zip(ids, offsets, strict=True)):
        if i in opens:
            _append(out, markers.start, (offset[0], offset[0]))
        _append(out, piece, offset, inside[i])
        if i in closes:
            _append(out, markers.end, (offset[1], offset[1]))
    return out


def _append(out: MarkedPieces, piece: int, offset: tuple[int, int], entity: int = 0) -> None:
    out.ids.append(piece)
    out.offsets.append(offset)
    out.entity_ids.append(entity)


def entity_ids_from_markers(ids: np.ndarray, markers: MarkerIds, boundary_ids: Sequence[int] = ()) -> np.ndarray:
    """Entity ids (1 inside [ENT] ... [/ENT], 0 elsewhere and on the markers) of rows of token ids
    that carry the markers, as pretraining shards do. `boundary_ids` ([CLS], [SEP], [PAD]) end a
    segment: no entity runs across one. A segment cut inside an entity (its [ENT] or [/ENT] fell
    outside it) counts the part it holds as entity."""
    opens, closes = ids == markers.start, ids == markers.end
    stops = opens | closes | np.isin(ids, np.asarray(list(boundary_ids), dtype=ids.dtype))
    width = ids.shape[-1]
    index = np.broadcast_to(np.arange(width), ids.shape)
    # The nearest marker or boundary at or before each position, and at or after it.
    last = np.maximum.accumulate(np.where(stops, index, -1), axis=-1)
    following = np.flip(np.minimum.accumulate(np.flip(np.where(stops, index, width), -1), axis=-1), -1)
    last = np.where(last < 0, width, last)  # none before: the padding column, neither open nor close
    is_open = np.concatenate([opens, np.zeros_like(opens[..., :1])], -1)
    is_close = np.concatenate([closes, np.zeros_like(closes[..., :1])], -1)
    after_open = np.take_along_axis(is_open, last, -1)
    # No marker yet in the segment, and the next one closes: the segment began inside an entity.
    began_inside = ~np.take_along_axis(is_open | is_close, last, -1) & np.take_along_axis(is_close, following, -1)
    return ((after_open | began_inside) & ~stops).astype(np.int64)
