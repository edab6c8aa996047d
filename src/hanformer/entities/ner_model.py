"""Entities from a fine-tuned token-classification model (e.g. KLUE-NER), run in batches.

Long texts (a KorQuAD context) are cut into chunks of at most `CHUNK_CHARS` characters at
sentence ends or spaces, since the NER model sees at most its max_length pieces at once; the
chunks of all texts go through the model together, and their spans are shifted back into the
text they came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hanformer.entities.spans import EntitySpan
from hanformer.errors import CheckpointError, ConfigError
from hanformer.tasks.examples import TextExample
from hanformer.tasks.inference import raw_examples
from hanformer.tasks.predictor import Predictor

# About 100 pieces of Korean text with morpheme splitting: inside the usual NER max_length of 128.
CHUNK_CHARS = 150
_BREAK = re.compile(r"(?<=[.!?。])\s+|\n+")


def chunks(text: str, limit: int = CHUNK_CHARS) -> list[tuple[int, str]]:
    """(offset, piece) pairs covering `text` in order, each at most `limit` characters, cut at
    sentence ends where possible, else at the last space, else hard."""
    out: list[tuple[int, str]] = []
    start, n = 0, len(text)
    while start < n:
        end = min(start + limit, n)
        if end < n:
            window = text[start:end]
            cuts = [m.end() for m in _BREAK.finditer(window)]
            space = window.rfind(" ")
            cut = cuts[-1] if cuts and cuts[-1] > limit // 3 else (space + 1 if space > limit // 3 else len(window))
            end = start + cut
        out.append((start, text[start:end]))
        start = end
    return out


class ModelEntityDetector:
    """`detect(texts)`: spans of the entities a NER model finds, keeping only `types` (all when empty)."""

    def __init__(self, model_dir: str, types: Sequence[str] = (), batch_size: int = 32, device: str = "auto") -> None:
        if not Path(model_dir).is_dir():
            raise ConfigError(f"--entities {model_dir}: no such directory; give 'kiwi' or the directory of a "
                              "fine-tuned NER model (e.g. hanformer finetune --task klue-ner ... --out DIR)")
        try:
            self.predictor = Predictor(model_dir, device=device, batch_size=batch_size)
        except CheckpointError as e:
            raise CheckpointError(f"--entities {model_dir}: {e.message}") from None
        if self.predictor.task.kind != "token":
            raise ConfigError(f"--entities {model_dir}: a {self.predictor.task.kind} model "
                              f"({self.predictor.task.name}); entities need a token-classification (NER) model, "
                              "e.g. one fine-tuned with --task klue-ner")
        self.types = frozenset(types)

    def detect(self, texts: Sequence[str]) -> list[list[EntitySpan]]:
        owners: list[tuple[int, int]] = []  # (text index, offset of the chunk)
        pieces: list[TextExample] = []
        for i, text in enumerate(texts):
            for offset, piece in chunks(text):
                if piece.strip():
                    owners.append((i, offset))
                    pieces.append(TextExample(piece, None, None, f"texts[{i}]"))
        found: list[list[EntitySpan]] = [[] for _ in texts]
        if not pieces:
            return found
        records = self.predictor.predict_examples(raw_examples(self.predictor.task, pieces))
        for (i, offset), record in zip(owners, records, strict=True):
            found[i] += self._spans(record, offset)
        return found

    def _spans(self, record: dict[str, Any], offset: int) -> list[EntitySpan]:
        return [EntitySpan(offset + e["start"], offset + e["end"], e["type"]) for e in record["entities"]
                if not self.types or e["type"] in self.types]
