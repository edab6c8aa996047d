"""The tokenizer of an entity-aware model: `[ENT]`/`[/ENT]` added as special tokens, and the
entity settings recorded in its tokenizer_config.json.

The record travels with the model's tokenizer, so `evaluate`, `predict`, `serve` and the
`Predictor` encode a fine-tuned entity-aware model exactly as it was trained, with no option.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tokenizers import AddedToken
from tokenizers import Tokenizer as Engine

from hanformer.entities.config import EntityConfig
from hanformer.entities.marking import ENTITY_END, ENTITY_START, MarkerIds
from hanformer.errors import ConfigError
from hanformer.tokenization.tokenizer import Tokenizer

SETTINGS_KEY = "entities"  # hanformer's record in tokenizer_config.json


def recorded_entity_config(tokenizer: Tokenizer) -> EntityConfig | None:
    """The entity settings a tokenizer was saved with (None: a plain model's tokenizer)."""
    data = (getattr(tokenizer, "settings", None) or {}).get(SETTINGS_KEY)
    if data is None:
        return None
    return EntityConfig.from_record(data, f"tokenizer_config.json [{SETTINGS_KEY}]")


def marker_ids(engine: Any) -> MarkerIds:
    """The ids of [ENT] and [/ENT] in a `tokenizers` engine; an error when it has none."""
    start, end = engine.token_to_id(ENTITY_START), engine.token_to_id(ENTITY_END)
    if start is None or end is None:
        raise ConfigError(f"the tokenizer has no {ENTITY_START}/{ENTITY_END} tokens for the entity markers; "
                          "fine-tune with --entities to add them, or pass --no-entity-markers")
    return MarkerIds(int(start), int(end))


def entity_tokenizer(tokenizer: Tokenizer, config: EntityConfig) -> Tokenizer:
    """A copy of `tokenizer` with the markers added (when `config` uses them) and `config`
    recorded; `tokenizer` itself is left as it is."""
    with tempfile.TemporaryDirectory() as tmp:
        # The saved tokenizer.json is the engine without Kiwi attached (which cannot be copied).
        tokenizer.save_pretrained(tmp)
        engine = Engine.from_file(str(Path(tmp) / "tokenizer.json"))
    extra = list(tokenizer.extra_special_tokens)
    if config.entity_markers:
        new = [t for t in (ENTITY_START, ENTITY_END) if engine.token_to_id(t) is None]
        # Matched whole in any text, never split into pieces, as [CLS] and [SEP] are.
        engine.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in new])
        extra += [t for t in (ENTITY_START, ENTITY_END) if t not in extra]
    return Tokenizer(engine, morpheme_split=tokenizer.morpheme_split, model_max_length=tokenizer.model_max_length,
                     unk_token=tokenizer.unk_token, cls_token=tokenizer.cls_token, sep_token=tokenizer.sep_token,
                     pad_token=tokenizer.pad_token, mask_token=tokenizer.mask_token, extra_special_tokens=extra,
                     settings={**tokenizer.settings, SETTINGS_KEY: config.record()})
