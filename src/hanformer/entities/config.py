"""`EntityConfig`: where entity information comes from and how the model is given it.

Two ways, either or both (the course material's entity-aware Korean BERT):

* markers: `[ENT]` and `[/ENT]` (added special tokens) around every entity in the pieces;
* embedding: an entity id per token (1 = part of an entity, 0 = not), looked up in the model's
  `entity_type_embeddings` table and added to the token, segment and position embeddings.

Entities come from Kiwi's part-of-speech tags (proper nouns, NNP, by default; no model needed)
or from a fine-tuned token-classification model (e.g. one trained on KLUE-NER).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from hanformer.errors import ConfigError
from hanformer.utils.config import load_config, setting

OFF, KIWI = "off", "kiwi"
DEFAULT_KIWI_TAGS = ("NNP",)
# Kiwi's part-of-speech tags (Sejong tag set plus Kiwi's web tags): a typo in --entity-tags
# would otherwise find no entity at all, silently.
KIWI_TAGS = frozenset("""
NNG NNP NNB NR NP VV VA VX VCP VCN MM MAG MAJ IC JKS JKC JKG JKO JKB JKV JKQ JX JC EP EF EC ETN ETM
XPN XSN XSV XSA XSM XR SF SP SS SSO SSC SE SO SW SL SH SN SB UN W_URL W_EMAIL W_HASHTAG W_MENTION
W_SERIAL W_EMOJI Z_CODA Z_SIOT USER0 USER1 USER2 USER3 USER4
""".split())

Source = Literal["off", "kiwi", "model"]


@dataclasses.dataclass
class EntityConfig:
    entities: str = setting(
        OFF, "entity information for the model: 'off', 'kiwi' (proper nouns found by the Kiwi analyser, "
        "no model) or the directory of a fine-tuned token-classification (NER) model, e.g. one "
        "fine-tuned with --task klue-ner")
    entity_tags: list[str] = setting(
        [], "kiwi: the part-of-speech tags that make an entity (default NNP; e.g. NNP,NNG,SL); NER model: "
        "the entity types kept (default all, e.g. PS,LC,OG)")
    entity_markers: bool = setting(True, "put [ENT] ... [/ENT] (added special tokens) around every entity")
    entity_embedding: bool = setting(
        True, "add an entity embedding (is this token part of an entity or not; starts at zero, so the model "
        "starts as the plain one) to the token, segment and position embeddings (BERT checkpoints)")
    entity_batch_size: int = setting(32, "NER model: texts per forward pass when detecting entities")

    @property
    def enabled(self) -> bool:
        return self.entities != OFF

    @property
    def source(self) -> Source:
        if self.entities == OFF:
            return "off"
        return "kiwi" if self.entities == KIWI else "model"

    @property
    def tags(self) -> tuple[str, ...]:
        """Kiwi tags (or NER entity types) that count; empty: every entity type of the NER model."""
        if self.entity_tags:
            return tuple(self.entity_tags)
        return DEFAULT_KIWI_TAGS if self.source == "kiwi" else ()

    def validate(self) -> None:
        if not self.entities.strip():
            raise ConfigError("entities (--entities): empty; use 'off', 'kiwi' or a NER model directory")
        if not self.enabled:
            return
        if not self.entity_markers and not self.entity_embedding:
            raise ConfigError(f"--entities {self.entities} with --no-entity-markers and --no-entity-embedding "
                              "gives the model no entity information; keep the markers or the embedding")
        if self.entity_batch_size < 1:
            raise ConfigError(f"entity_batch_size (--entity-batch-size) must be >= 1, got {self.entity_batch_size}")
        if self.source == "kiwi":
            unknown = [t for t in self.entity_tags if t not in KIWI_TAGS]
            if unknown:
                raise ConfigError(f"entity_tags (--entity-tags): {', '.join(unknown)} is not a Kiwi tag; "
                                  "proper nouns are NNP, common nouns NNG, foreign words SL")

    def record(self) -> dict[str, Any]:
        """What is saved with a model (tokenizer_config.json, task.json), so that it is encoded
        the same way when evaluated, served or asked for predictions."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, data: Any, source: str) -> EntityConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: 'entities' must be an object of entity settings, got {data!r:.60}")
        config = load_config(cls, data, source)
        config.validate()
        return config
