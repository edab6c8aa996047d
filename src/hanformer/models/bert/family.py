"""BERT's relatives in the Hugging Face layout: RoBERTa, XLM-RoBERTa and ELECTRA discriminators.

All three are BERT's encoder (the same blocks, the same tensors under another prefix). What
differs is described by options of one config, `EncoderFamilyConfig`, read from config.json's
`model_type`, not by copies of the model:

* `position_offset` (RoBERTa, XLM-R): positions count the real tokens from `pad_token_id + 1`
  and padding keeps position `pad_token_id`, so `max_position_embeddings` 514 holds 512 tokens;
* one segment type (`type_vocab_size` 1, RoBERTa and XLM-R): every token reads as segment 0.
  RoBERTa has no segments, and klue/roberta's BERT tokenizer still marks a second text with 1s;
* `embedding_size` (ELECTRA): embeddings narrower than `hidden_size`, projected up;
* `sentence_activation`: the sentence classifier is dense + activation + out_proj on the first
  token (tanh for RoBERTa, GELU for ELECTRA) where BERT has its pooler and one linear layer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from hanformer.errors import ConfigError, InputError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.electra import ReplacedTokenHead
from hanformer.models.bert.embeddings import BertEmbeddings
from hanformer.models.bert.heads import (
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    _classifier_dropout,
)
from hanformer.models.bert.model import BertModel, BertPreTrainedModel
from hanformer.models.common.config import block_parameters, require_positive_ints
from hanformer.models.common.dropout import Dropout
from hanformer.models.common.layers import activation
from hanformer.models.common.outputs import BaseModelOutputWithPooling, TokenClassifierOutput
from hanformer.utils.config import setting

ROBERTA_TYPES = ("roberta", "xlm-roberta")
FAMILY_MODEL_TYPES = (*ROBERTA_TYPES, "electra")
# ElectraConfig keys about its multiple-choice summary, which no model here uses.
_ELECTRA_SUMMARY_KEYS = ("summary_type", "summary_use_proj", "summary_activation", "summary_last_dropout")
_ELECTRA_EMBEDDING_SIZE = 128  # ElectraConfig's default when config.json does not say


@dataclasses.dataclass
class EncoderFamilyConfig(BertConfig):
    """BertConfig plus the family (config.json's `model_type`) and ELECTRA's `embedding_size`."""

    family: str = setting("roberta", f"config.json model_type: {', '.join(FAMILY_MODEL_TYPES)}")
    embedding_size: int | None = setting(None, "width of the embeddings (ELECTRA), projected to hidden_size "
                                         "when narrower; None: hidden_size")

    def validate(self) -> None:
        super().validate()
        if self.family not in FAMILY_MODEL_TYPES:
            raise ConfigError(f"{type(self).__name__}: model_type {self.family!r} is not one of "
                              f"{', '.join(FAMILY_MODEL_TYPES)}")
        if self.embedding_size is not None:
            require_positive_ints(self, ("embedding_size",))
        if self.max_position_embeddings <= self.position_offset:
            raise ConfigError(f"{type(self).__name__}: max_position_embeddings {self.max_position_embeddings} "
                              f"leaves no position for a token after the {self.position_offset} that "
                              f"{self.family} reserves (pad_token_id + 1)")

    # --- the options the family implies ---------------------------------------------------
    @property
    def model_type(self) -> str:
        return self.family

    @property
    def position_offset(self) -> int:
        """First position of a real token (RoBERTa: pad_token_id + 1; ELECTRA, like BERT: 0)."""
        return self.pad_token_id + 1 if self.family in ROBERTA_TYPES else 0

    @property
    def max_tokens(self) -> int:
        """Longest input in tokens: the position table minus the positions the family reserves."""
        return self.max_position_embeddings - self.position_offset

    @property
    def embedding_width(self) -> int:
        return self.embedding_size or self.hidden_size

    @property
    def sentence_activation(self) -> str:
        """Activation inside the sentence classifier (tanh in RoBERTa's, GELU in ELECTRA's)."""
        return "tanh" if self.family in ROBERTA_TYPES else "gelu"

    def parameter_count(self) -> int:
        """Parameters of the bare encoder (with RoBERTa's pooler; ELECTRA has none)."""
        h, e = self.hidden_size, self.embedding_width
        positions = self.max_position_embeddings * e if self.position_embedding_type == "absolute" else 0
        embeddings = (self.vocab_size + self.type_vocab_size) * e + positions + 2 * e
        projection = e * h + h if e != h else 0
        pooler = h * h + h if self.family in ROBERTA_TYPES else 0
        final_norm = 2 * h if self.norm_placement == "pre" else 0
        return embeddings + projection + self.num_hidden_layers * block_parameters(h, self.intermediate_size) \
            + final_norm + pooler

    @property
    def shape_fields(self) -> tuple[str, ...]:
        return (*super().shape_fields, "embedding_size")

    # --- config.json --------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config", strict: bool = False) -> EncoderFamilyConfig:
        data = dict(data)
        family = data.pop("model_type", None)
        if family is None:
            family = data.get("family")
        if family not in FAMILY_MODEL_TYPES:
            raise ConfigError(f"{source}: model_type {family!r} is not one of {', '.join(FAMILY_MODEL_TYPES)}")
        data["family"] = family
        if not strict:
            for key in _ELECTRA_SUMMARY_KEYS:
                data.pop(key, None)
            # transformers' defaults for keys a config.json may leave out
            if family in ROBERTA_TYPES:
                data.setdefault("pad_token_id", 1)
            else:
                data.setdefault("embedding_size", _ELECTRA_EMBEDDING_SIZE)
        return super().from_dict(data, source, strict)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["model_type"] = out.pop("family")
        if self.family == "electra":  # ElectraConfig would assume 128 if the key were left out
            out["embedding_size"] = self.embedding_width
        elif out["embedding_size"] is None:
            del out["embedding_size"]
        return out


class FamilyEmbeddings(BertEmbeddings):
    """BERT's embeddings at `embedding_size` width, projected to `hidden_size` when narrower (ELECTRA)."""

    def __init__(self, config: EncoderFamilyConfig) -> None:
        width = config.embedding_width
        # Only the width changes; the embedding stage has no attention heads to divide it.
        super().__init__(dataclasses.replace(config, hidden_size=width, num_attention_heads=1))
        if config.position_offset and self.position_embeddings is not None:
            # RoBERTa: padding sits at position pad_token_id, a row that is never trained.
            self.position_embeddings.padding_idx = config.pad_token_id
        self.project = nn.Linear(width, config.hidden_size) if width != config.hidden_size else None

    def forward(self, input_ids: Tensor | None, token_type_ids: Tensor, position_ids: Tensor,
                inputs_embeds: Tensor | None = None) -> Tensor:
        x = super().forward(input_ids, token_type_ids, position_ids, inputs_embeds)
        return self.project(x) if self.project is not None else x


class InFamily:
    """What every RoBERTa / XLM-R / ELECTRA class shares: its config (and, through the registry,
    its checkpoint layout). `hf_suffix` is the class name after the family's prefix
    (`RobertaForMaskedLM` -> `ForMaskedLM`)."""

    config_class: ClassVar[type[BertConfig]] = EncoderFamilyConfig
    hf_suffix: ClassVar[str]


class FamilyModel(InFamily, BertModel):
    """The bare encoder (`RobertaModel`, `XLMRobertaModel`, `ElectraModel`): `BertModel` with the
    family's positions, segments and embeddings (see the module docstring). RoBERTa's has BERT's
    pooler; ELECTRA's has none."""

    embeddings_class = FamilyEmbeddings
    hf_suffix = "Model"
    config: EncoderFamilyConfig

    def __init__(self, config: EncoderFamilyConfig, add_pooling_layer: bool | None = None) -> None:
        pooled = config.family in ROBERTA_TYPES if add_pooling_layer is None else add_pooling_layer
        super().__init__(config, add_pooling_layer=pooled)

    def check_inputs(self, input_ids: Tensor | None, attention_mask: Tensor | None,
                     token_type_ids: Tensor | None, seq_len: int) -> None:
        cfg = self.config
        if seq_len > cfg.max_tokens:
            raise InputError(
                f"sequence length {seq_len} exceeds this model's limit of {cfg.max_tokens} tokens "
                f"(max_position_embeddings {cfg.max_position_embeddings} minus the {cfg.position_offset} "
                f"positions {cfg.family} reserves); truncate the input, e.g. "
                f"tokenizer(texts, truncation=True, max_length={cfg.max_tokens})")
        super().check_inputs(input_ids, attention_mask, token_type_ids, seq_len)

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False, **_: Any) -> BaseModelOutputWithPooling:
        if self.config.type_vocab_size == 1:
            token_type_ids = None  # one segment type: every token is segment 0
        if position_ids is None and self.config.position_offset:
            position_ids = self._offset_positions(input_ids, inputs_embeds)
        return super().forward(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states)

    def _offset_positions(self, input_ids: Tensor | None, inputs_embeds: Tensor | None) -> Tensor | None:
        """RoBERTa's positions: real tokens numbered from pad_token_id + 1, padding at pad_token_id."""
        pad = self.config.pad_token_id
        if input_ids is not None:
            if input_ids.dim() != 2:
                return None  # BertModel reports the shape
            real = input_ids.ne(pad).long()
            return torch.cumsum(real, dim=1) * real + pad
        if inputs_embeds is None or inputs_embeds.dim() != 3:
            return None
        batch, seq_len = inputs_embeds.shape[:2]
        # Embeddings cannot say which rows are padding: every one counts, as in transformers.
        return torch.arange(pad + 1, pad + 1 + seq_len, device=inputs_embeds.device).expand(batch, seq_len)


class DenseClassifier(nn.Module):
    """RoBERTa's and ELECTRA's sentence head after the first dropout: dense, activation, dropout, out_proj."""

    def __init__(self, config: EncoderFamilyConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.sentence_activation)
        self.dropout = Dropout(_classifier_dropout(config))
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, sentence: Tensor) -> Tensor:
        return self.out_proj(self.dropout(self.act(self.dense(sentence))))


class FamilyForSequenceClassification(InFamily, BertForSequenceClassification):
    """BERT's classifier (same loss, same `classifier_pooling`), with the family's head: the first
    token's vector (no pooler) through `DenseClassifier`."""

    encoder_class = FamilyModel
    hf_suffix = "ForSequenceClassification"

    def __init__(self, config: EncoderFamilyConfig) -> None:
        BertPreTrainedModel.__init__(self, config)  # not BERT's layers: no pooler, a two-layer classifier
        self.num_labels = config.num_labels
        self.bert = self.encoder_class(config, add_pooling_layer=False)
        self.dropout = Dropout(_classifier_dropout(config))
        self.classifier = DenseClassifier(config)  # type: ignore[assignment]
        self.init_weights()

    def _sentence_vector(self, out: Any, attention_mask: Tensor | None) -> Tensor:
        if self.config.classifier_pooling == "cls":
            return out.last_hidden_state[:, 0]
        return super()._sentence_vector(out, attention_mask)


class FamilyForTokenClassification(InFamily, BertForTokenClassification):
    encoder_class = FamilyModel
    hf_suffix = "ForTokenClassification"


class FamilyForQuestionAnswering(InFamily, BertForQuestionAnswering):
    encoder_class = FamilyModel
    hf_suffix = "ForQuestionAnswering"


class FamilyForMaskedLM(InFamily, BertForMaskedLM):
    """RoBERTa's `lm_head`: dense, GELU (always, whatever hidden_act says), LayerNorm, then the
    decoder tied to the word embeddings, + bias."""

    encoder_class = FamilyModel
    hf_suffix = "ForMaskedLM"

    def __init__(self, config: EncoderFamilyConfig) -> None:
        super().__init__(config)
        self.mlm.act = activation("gelu")


class ReplacedTokenDetector(InFamily, BertPreTrainedModel):
    """transformers' `ElectraForPreTraining`: the discriminator with its detection head, one logit
    per token ("this token was replaced"). `labels` (batch, seq) 0/1; the loss counts real tokens."""

    hf_suffix = "ForPreTraining"

    def __init__(self, config: EncoderFamilyConfig) -> None:
        super().__init__(config)
        self.bert = FamilyModel(config, add_pooling_layer=False)
        self.rtd = ReplacedTokenHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                **kwargs: Any) -> TokenClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, **kwargs)
        logits = self.rtd(out.last_hidden_state)
        loss = None
        if labels is not None:
            real = attention_mask.bool() if attention_mask is not None and attention_mask.dim() == 2 \
                else torch.ones_like(labels, dtype=torch.bool)
            loss = nn.functional.binary_cross_entropy_with_logits(logits[real].float(), labels[real].float())
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                     attentions=out.attentions)


# transformers' class-name prefix of each family.
CLASS_PREFIX = {"roberta": "Roberta", "xlm-roberta": "XLMRoberta", "electra": "Electra"}
_CLASSES: tuple[type[InFamily], ...] = (FamilyModel, FamilyForSequenceClassification, FamilyForTokenClassification,
                                        FamilyForQuestionAnswering, FamilyForMaskedLM, ReplacedTokenDetector)
# Heads transformers has for one family only.
_ONLY: dict[type, tuple[str, ...]] = {FamilyForMaskedLM: ROBERTA_TYPES, ReplacedTokenDetector: ("electra",)}


def family_architectures(family: str) -> dict[str, type[BertPreTrainedModel]]:
    """transformers' class name -> our class for one family, e.g. "XLMRobertaForTokenClassification"."""
    return {CLASS_PREFIX[family] + cls.hf_suffix: cls  # type: ignore[misc]
            for cls in _CLASSES if family in _ONLY.get(cls, FAMILY_MODEL_TYPES)}


def family_of(model: BertPreTrainedModel) -> str:
    """The family (config.json model_type) of a RoBERTa / XLM-R / ELECTRA model."""
    return cast(EncoderFamilyConfig, model.config).family


def architecture_name(model: BertPreTrainedModel) -> str:
    """transformers' class name for `model` (the family comes from its config)."""
    return CLASS_PREFIX[family_of(model)] + type(model).hf_suffix  # type: ignore[attr-defined]
