"""`EntityInputs`: entity detection and marking for batches of texts already cut into pieces.

`tasks.encoding.PieceEncoder` applies it to every text it encodes (question and context alike);
anything else that has pieces with offsets can call `mark` the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hanformer.entities.config import EntityConfig
from hanformer.entities.detect import EntityDetector, entity_detector
from hanformer.entities.marking import MarkedPieces, mark_pieces
from hanformer.entities.tokens import marker_ids


class EntityInputs:
    """Finds the entities of texts (`config`'s source, or the `detector` given) and marks their
    pieces. `engine` is the tokenizer's `tokenizers` engine (for the ids of the markers)."""

    def __init__(self, config: EntityConfig, engine: Any, detector: EntityDetector | None = None) -> None:
        config.validate()
        self.config = config
        self.markers = marker_ids(engine) if config.entity_markers else None
        self.detector = detector if detector is not None else entity_detector(config)

    @property
    def embedding(self) -> bool:
        """Whether the model reads entity ids (else the markers alone carry the entities)."""
        return self.config.entity_embedding

    @property
    def marker_ids(self) -> frozenset[int]:
        return frozenset() if self.markers is None else frozenset((self.markers.start, self.markers.end))

    def mark(self, texts: Sequence[str], ids: Sequence[Sequence[int]],
             offsets: Sequence[Sequence[tuple[int, int]]]) -> list[MarkedPieces]:
        """The pieces of every text with its entities marked (offsets still into the text). Each
        distinct text is analysed once: a KorQuAD context comes once per question."""
        distinct = list(dict.fromkeys(texts))
        found = dict(zip(distinct, self.detector.detect(distinct), strict=True))
        return [mark_pieces(i, o, found[t], self.markers) for t, i, o in zip(texts, ids, offsets, strict=True)]
