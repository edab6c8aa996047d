"""The entity detector an `EntityConfig` asks for: Kiwi's tags or a NER model."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

from hanformer.entities.config import EntityConfig
from hanformer.entities.kiwi import KiwiEntityDetector
from hanformer.entities.spans import EntitySpan

# Looked up when a NER model is asked for, not imported at the top: that module runs the model
# through tasks' Predictor, and tasks' encoding imports this package.
_NER_MODULE = "hanformer.entities.ner_model"


class EntityDetector(Protocol):
    def detect(self, texts: Sequence[str]) -> list[list[EntitySpan]]:
        """The entity spans of every text, as character offsets into that text."""


def entity_detector(config: EntityConfig, device: str = "auto") -> EntityDetector:
    """Kiwi (`--entities kiwi`) or the NER model in the directory `--entities` names."""
    config.validate()
    if config.source == "kiwi":
        return KiwiEntityDetector(config.tags)
    if config.source == "model":
        detector: EntityDetector = importlib.import_module(_NER_MODULE).ModelEntityDetector(
            config.entities, config.tags, config.entity_batch_size, device)
        return detector
    raise ValueError("entity_detector: entities are off")
