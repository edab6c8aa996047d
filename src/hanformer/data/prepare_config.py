"""`PrepareConfig`: how raw text becomes pretraining shards (settings of `hanformer data prepare`
and of a recipe's [data] stage). Kept apart from `prepare`, so the command line reads it without
loading numpy or the tokenizer."""

from __future__ import annotations

import dataclasses
from typing import Literal

from hanformer.entities.config import EntityConfig
from hanformer.errors import ConfigError
from hanformer.utils.config import setting


@dataclasses.dataclass
class PrepareConfig:
    format: Literal["auto", "text", "wiki", "jsonl", "tsv"] = setting(
        "auto", "input format: plain text (blank line between documents), wiki-extractor <doc>, JSON lines, TSV")
    text_fields: list[str] = setting(["text"], "JSON-lines fields / TSV columns holding the text")
    splitter: Literal["rules", "kiwi", "lines"] = setting(
        "rules", "sentence splitter: fast rules (Korean + English), Kiwi (Korean morphology; slower), "
        "or one sentence per line")
    valid_fraction: float = setting(0.01, "share of documents held out for evaluation (at least one)")
    seed: int = setting(0, "seed of the held-out selection")
    max_documents: int = setting(0, "stop after this many documents (0: all)")
    include_titles: bool = setting(False, "keep document titles as a first sentence")
    batch_documents: int = setting(512, "documents tokenized per batch")
    workers: int = setting(1, "processes for sentence splitting (worth it for --splitter kiwi)")
    progress: bool = setting(True, "show a progress bar")
    # Entities marked in the text ([ENT] ... [/ENT] around each, found by Kiwi or a NER model), for
    # pretraining an entity-aware BERT; off by default.
    entity: EntityConfig = dataclasses.field(default_factory=EntityConfig)

    def validate(self) -> None:
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.batch_documents < 1 or self.workers < 1 or self.max_documents < 0:
            raise ConfigError("batch_documents and workers must be >= 1, max_documents >= 0")
        self.entity.validate()
        if self.entity.enabled and not self.entity.entity_markers:
            raise ConfigError(f"--entities {self.entity.entities} --no-entity-markers: pretraining data carries its "
                              "entities as [ENT] ... [/ENT] in the token ids (the entity embedding's ids are read "
                              "from them); keep the markers")
