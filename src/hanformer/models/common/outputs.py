"""Model outputs: dataclasses with the field names `transformers` uses.

Code written against `transformers` (`out.logits`, `out.last_hidden_state`, `out[0]`,
`out["loss"]`) works unchanged. Fields that are None are skipped by integer indexing, as there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from hanformer.models.common.layers import KVCache


class ModelOutput:
    """Attribute, key and (skipping None) index access over a dataclass's fields."""

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(v for v in (getattr(self, f.name) for f in dataclasses.fields(self)) if v is not None)  # type: ignore[arg-type]

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]  # type: ignore[arg-type]


@dataclass
class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class BertForPreTrainingOutput(ModelOutput):
    """With labels, `prediction_logits` holds only the masked positions: (num_masked, vocab)."""

    loss: Tensor | None = None
    prediction_logits: Tensor | None = None
    seq_relationship_logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    masked_lm_loss: Tensor | None = None
    next_sentence_loss: Tensor | None = None


@dataclass
class MaskedLMOutput(ModelOutput):
    """With labels, `logits` holds only the masked positions: (num_masked, vocab)."""

    loss: Tensor | None = None
    logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Tensor | None = None
    start_logits: Tensor | None = None
    end_logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class BaseModelOutputWithPast(ModelOutput):
    last_hidden_state: Tensor
    past_key_values: KVCache | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class CausalLMOutputWithPast(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None
    past_key_values: KVCache | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


def encoder_hidden_state(encoder_outputs: Any) -> Tensor:
    """An encoder's last hidden state from an output object, a tuple (as transformers and the
    search loops pass them) or a tensor: what every encoder-decoder's decoder reads."""
    if isinstance(encoder_outputs, Tensor):
        return encoder_outputs
    if hasattr(encoder_outputs, "last_hidden_state"):
        hidden: Tensor = encoder_outputs.last_hidden_state
        return hidden
    return encoder_outputs[0]
