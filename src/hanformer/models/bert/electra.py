"""ELECTRA-style pretraining: replaced-token detection (Clark et al., 2020).

A small masked-LM *generator* fills the masked positions with its own samples; the encoder we
keep (the *discriminator*, a plain `BertModel`) then reads the corrupted text and says, at every
position, whether the token is the original or a replacement. The discriminator learns from
every token rather than the 15% that masked-LM scores, which is why ELECTRA gets more out of
the same compute; that matters most on a small budget (a CPU, an hour).

The generator is the same architecture with fewer layers and shares the embeddings with the
discriminator (the paper's "tied embeddings"). After pretraining the discriminator is the model
to fine-tune: `save_pretrained` writes it as a plain BERT checkpoint (loads in `BertModel` and
every task head, here and in transformers) and the generator as a `BertForMaskedLM` in a
`generator/` subfolder (usable for fill-mask).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import IGNORE_INDEX, BertForMaskedLM
from hanformer.models.bert.model import BertModel, BertPreTrainedModel
from hanformer.models.common.layers import activation
from hanformer.models.common.outputs import ModelOutput


@dataclass
class ElectraForPreTrainingOutput(ModelOutput):
    """`generator_logits`: (num_masked, vocab) at the masked positions. `rtd_logits` and
    `replaced`: one entry per real (non-padding) token, in row-major order."""

    loss: Tensor | None = None
    generator_loss: Tensor | None = None
    rtd_loss: Tensor | None = None
    generator_logits: Tensor | None = None
    rtd_logits: Tensor | None = None
    replaced: Tensor | None = None


class ReplacedTokenHead(nn.Module):
    """dense + activation + a single logit per token: "this token was replaced"."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.prediction = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.prediction(self.act(self.dense(hidden))).squeeze(-1)


class ElectraForPreTraining(BertPreTrainedModel):
    """Generator (masked LM, `generator_layers` deep) + discriminator (`config`) + detection head.

    loss = generator masked-LM loss + rtd_weight x replaced-token detection loss (the paper's 50:
    the detection loss is a per-token binary cross-entropy, much smaller than the LM loss)."""

    def __init__(self, config: BertConfig, generator_layers: int = 1, rtd_weight: float = 50.0) -> None:
        super().__init__(config)
        self.rtd_weight = rtd_weight
        self.generator = BertForMaskedLM(dataclasses.replace(config, num_hidden_layers=generator_layers))
        self.bert = BertModel(config, add_pooling_layer=False)  # fine-tuning adds its own head
        self.bert.embeddings = self.generator.bert.embeddings  # shared: one set of token vectors
        self.rtd = ReplacedTokenHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                sampler: torch.Generator | None = None, **_: Any) -> ElectraForPreTrainingOutput:
        """input_ids: the masked text; labels: original ids at masked positions, -100 elsewhere.
        sampler: random generator for the replacements (default: torch's global one)."""
        if labels is None:
            raise ValueError("ElectraForPreTraining needs labels (the masked positions' original ids)")
        gen = self.generator.bert(input_ids, attention_mask, token_type_ids)
        generator_loss, generator_logits = self.generator.mlm.masked_loss(gen.last_hidden_state, labels)
        masked = labels != IGNORE_INDEX
        with torch.no_grad():  # the discriminator's loss does not train the generator (not differentiable)
            probs = torch.softmax(generator_logits.detach().float(), dim=-1)
            sampled = torch.multinomial(probs, 1, generator=sampler).squeeze(1) if probs.numel() else \
                labels.new_empty(0)
            corrupted = input_ids.masked_scatter(masked, sampled)
            # A sample equal to the original counts as original, as in the paper.
            replaced = corrupted != torch.where(masked, labels, input_ids)
        disc = self.bert(corrupted, attention_mask, token_type_ids)
        real = attention_mask.bool() if attention_mask is not None and attention_mask.dim() == 2 \
            else torch.ones_like(input_ids, dtype=torch.bool)
        rtd_logits = self.rtd(disc.last_hidden_state[real])
        rtd_loss = F.binary_cross_entropy_with_logits(rtd_logits.float(), replaced[real].float())
        return ElectraForPreTrainingOutput(
            loss=generator_loss + self.rtd_weight * rtd_loss, generator_loss=generator_loss, rtd_loss=rtd_loss,
            generator_logits=generator_logits, rtd_logits=rtd_logits, replaced=replaced[real])

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> None:
        """The discriminator as a BERT checkpoint in `directory`, the generator in `directory/generator`."""
        self.bert.save_pretrained(directory, dtype=dtype)
        self.generator.save_pretrained(Path(directory) / "generator", dtype=dtype)
