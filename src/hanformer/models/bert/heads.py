"""Task heads: thin modules over one shared `BertModel` (attribute `bert`).

Names, arguments and outputs follow `transformers`, so code moves over unchanged. One
difference is deliberate: given `labels`, the masked-LM heads project onto the vocabulary only
at the masked positions (labels != -100, typically 15% of tokens). The vocabulary projection
is the largest matmul of pretraining, so this saves most of its time and memory; the loss is
the same. Without labels they return logits for every position, as transformers does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.model import BertModel, BertPreTrainedModel
from hanformer.models.common.dropout import Dropout
from hanformer.models.common.layers import activation, masked_mean
from hanformer.models.common.outputs import (
    BertForPreTrainingOutput,
    MaskedLMOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from hanformer.utils.labels import IGNORE_INDEX


class MaskedLMHead(nn.Module):
    """transform (dense + act + LayerNorm), then a decoder tied to the word embeddings, + bias."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        # Not a submodule: the decoder weight *is* the embedding matrix (tied, saved once).
        self._word_embeddings = [word_embeddings]

    @property
    def decoder_weight(self) -> Tensor:
        return self._word_embeddings[0].weight

    def forward(self, hidden: Tensor) -> Tensor:
        h = self.norm(self.act(self.transform(hidden)))
        return F.linear(h, self.decoder_weight, self.bias)

    def masked_loss(self, hidden: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Loss and logits over the masked positions only (labels != -100)."""
        selected = labels != IGNORE_INDEX
        logits = self(hidden[selected])
        targets = labels[selected]
        if targets.numel() == 0:  # nothing masked: a zero loss that still has a graph
            return logits.sum() * 0.0, logits
        return F.cross_entropy(logits.float(), targets), logits


class BertForPreTraining(BertPreTrainedModel):
    """Masked-LM + next-sentence prediction, as BERT was pretrained."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.mlm = MaskedLMHead(config, self.bert.embeddings.word_embeddings)
        self.nsp = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                next_sentence_label: Tensor | None = None, entity_ids: Tensor | None = None,
                **kwargs: Any) -> BertForPreTrainingOutput:
        """labels: (batch, seq) original ids at masked positions, -100 elsewhere.
        next_sentence_label: (batch,) 0 = B follows A, 1 = B is random."""
        out = self.bert(input_ids, attention_mask, token_type_ids, entity_ids=entity_ids, **kwargs)
        nsp_logits = self.nsp(out.pooler_output)
        mlm_loss = nsp_loss = loss = None
        if labels is not None:
            mlm_loss, logits = self.mlm.masked_loss(out.last_hidden_state, labels)
            loss = mlm_loss
        else:
            logits = self.mlm(out.last_hidden_state)
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(nsp_logits.float(), next_sentence_label.view(-1))
            loss = nsp_loss if loss is None else loss + nsp_loss
        return BertForPreTrainingOutput(loss=loss, prediction_logits=logits, seq_relationship_logits=nsp_logits,
                                        hidden_states=out.hidden_states, attentions=out.attentions,
                                        masked_lm_loss=mlm_loss, next_sentence_loss=nsp_loss)


class BertForMaskedLM(BertPreTrainedModel):
    """Masked-LM only (no pooler, no NSP), e.g. for RoBERTa-style pretraining or fill-mask."""

    encoder_class: ClassVar[type[BertModel]] = BertModel  # RoBERTa/ELECTRA heads swap the encoder

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = self.encoder_class(config, add_pooling_layer=False)
        self.mlm = MaskedLMHead(config, self.bert.embeddings.word_embeddings)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                entity_ids: Tensor | None = None, **kwargs: Any) -> MaskedLMOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, entity_ids=entity_ids, **kwargs)
        loss = None
        if labels is not None:
            loss, logits = self.mlm.masked_loss(out.last_hidden_state, labels)
        else:
            logits = self.mlm(out.last_hidden_state)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class BertForSequenceClassification(BertPreTrainedModel):
    """A classifier (or regressor, num_labels == 1) on the pooled [CLS] vector; single sentences or pairs."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        self.dropout = Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                entity_ids: Tensor | None = None, **kwargs: Any) -> SequenceClassifierOutput:
        """labels: (batch,) class ids; floats for regression; (batch, num_labels) 0/1 for multi-label."""
        out = self.bert(input_ids, attention_mask, token_type_ids, entity_ids=entity_ids, **kwargs)
        logits = self.classifier(self.dropout(self._sentence_vector(out, attention_mask)))
        loss = None
        if labels is not None:
            loss = self._loss(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                        attentions=out.attentions)

    def _sentence_vector(self, out: Any, attention_mask: Tensor | None) -> Tensor:
        if self.config.classifier_pooling == "cls":
            return out.pooler_output
        hidden = out.last_hidden_state
        if attention_mask is None or attention_mask.dim() != 2:
            return hidden.mean(1)
        return masked_mean(hidden, attention_mask)

    def _loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        # transformers' rule: 1 output -> regression; integer labels -> single-label; else multi-label.
        problem = self.config.problem_type
        if problem is None:
            if self.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            if self.num_labels == 1:
                return F.mse_loss(logits.squeeze().float(), labels.squeeze().float())
            return F.mse_loss(logits.float(), labels.float())
        if problem == "single_label_classification":
            return F.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class BertForTokenClassification(BertPreTrainedModel):
    """A label per token (NER, POS); labels of -100 (padding, sub-word continuations) are ignored."""

    encoder_class: ClassVar[type[BertModel]] = BertModel  # RoBERTa/ELECTRA heads swap the encoder

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = self.encoder_class(config, add_pooling_layer=False)
        self.dropout = Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                entity_ids: Tensor | None = None, **kwargs: Any) -> TokenClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, entity_ids=entity_ids, **kwargs)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1),
                                   ignore_index=IGNORE_INDEX)
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                     attentions=out.attentions)


class BertForQuestionAnswering(BertPreTrainedModel):
    """Extractive QA: a start and an end logit per token; the answer is the best span."""

    encoder_class: ClassVar[type[BertModel]] = BertModel  # RoBERTa/ELECTRA heads swap the encoder

    def __init__(self, config: BertConfig) -> None:
        if config.num_labels != 2:  # transformers sizes qa_outputs by num_labels: keep the file loadable there
            config = dataclasses.replace(config, num_labels=2, id2label=None)
        super().__init__(config)
        self.num_labels = 2
        self.bert = self.encoder_class(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, start_positions: Tensor | None = None,
                end_positions: Tensor | None = None, entity_ids: Tensor | None = None,
                **kwargs: Any) -> QuestionAnsweringModelOutput:
        """start_positions/end_positions: (batch,) token indices of the answer span (0 = [CLS] = no answer)."""
        out = self.bert(input_ids, attention_mask, token_type_ids, entity_ids=entity_ids, **kwargs)
        start_logits, end_logits = self.qa_outputs(out.last_hidden_state).unbind(dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the window (answer truncated away) are ignored, as in transformers.
            ignored = start_logits.shape[1]
            start = start_positions.view(-1).clamp(0, ignored)
            end = end_positions.view(-1).clamp(0, ignored)
            # Unlike transformers, padding is no candidate answer: the loss does not change with padding.
            pad = attention_mask == 0 if attention_mask is not None and attention_mask.dim() == 2 else None
            loss = (self._span_loss(start_logits, start, pad, ignored)
                    + self._span_loss(end_logits, end, pad, ignored)) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits.contiguous(),
                                            end_logits=end_logits.contiguous(),
                                            hidden_states=out.hidden_states, attentions=out.attentions)

    @staticmethod
    def _span_loss(logits: Tensor, target: Tensor, pad: Tensor | None, ignored: int) -> Tensor:
        logits = logits.float()
        if pad is not None:
            logits = logits.masked_fill(pad, torch.finfo(logits.dtype).min)
            on_pad = pad.gather(1, target.clamp(max=ignored - 1)[:, None]).squeeze(1)
            target = target.masked_fill(on_pad, ignored)  # an answer inside padding is no answer
        return F.cross_entropy(logits, target, ignore_index=ignored)


def _classifier_dropout(config: BertConfig) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
