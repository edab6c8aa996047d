"""What the masked objectives (masked LM + NSP, masked LM, ELECTRA) share: the model config sized
to the shards, BERT sentence-pair batches with masks, the held-out score with its unigram floor,
and the FLOP counts behind MFU."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from hanformer.data.batches import (
    BatchStream,
    IndexedBatches,
    NSPBatches,
    iter_eval_batches,
    require_batches,
)
from hanformer.data.masking import Masker, MaskingSpec
from hanformer.data.shards import ShardSet, ShardSplit
from hanformer.entities.marking import MarkerIds
from hanformer.errors import ConfigError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import MaskedLMHead
from hanformer.pretraining.config import PretrainConfig
from hanformer.training.distributed import DistInfo


def new_bert_config(cfg: PretrainConfig, shards: ShardSet) -> BertConfig:
    """The preset sized to the shards' vocabulary, with the config's overrides."""

    overrides: dict[str, Any] = {"vocab_size": shards.vocab_size, "pad_token_id": shards.special_ids["pad"],
                                 "max_position_embeddings": max(512, cfg.seq_len)}
    if cfg.dropout is not None:
        overrides.update(hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
    overrides.update(cfg.model_config)
    return BertConfig.preset(cfg.model, **overrides)


def check_seq_len(cfg: PretrainConfig, config: BertConfig) -> None:
    if config.max_position_embeddings < cfg.seq_len:
        raise ConfigError(f"seq_len {cfg.seq_len} exceeds the model's max_position_embeddings "
                          f"{config.max_position_embeddings}")


def init_unigram_bias(mlm_head: MaskedLMHead, shards: ShardSet) -> None:
    logp = shards.unigram_log_probs()
    with torch.no_grad():
        mlm_head.bias.copy_(torch.from_numpy(logp - logp.mean()).float())


def masked_batches(cfg: PretrainConfig, shards: ShardSet, dist: DistInfo, entity_markers: MarkerIds | None = None
                   ) -> tuple[BatchStream, NSPBatches]:
    """(training stream, held-out batches) of BERT sentence-pair instances with masks (and the
    entity ids the markers give, with `entity_markers`)."""

    sp = shards.special_ids
    spec = MaskingSpec(cfg.mask_prob, cfg.mask_token_prob, cfg.random_token_prob, cfg.max_predictions,
                       cfg.whole_word_masking)
    masker = Masker(spec, shards.vocab_size, sp["mask"], shards.meta.get("all_special_ids", list(sp.values())))

    def builder(split: ShardSplit, split_seed: int, name: str) -> NSPBatches:
        return NSPBatches(split, seq_len=cfg.seq_len, batch_size=cfg.batch_size, short_seq_prob=cfg.short_seq_prob,
                          masker=masker, special_ids=sp, seed=split_seed, name=name, entity_markers=entity_markers)

    train = BatchStream(builder(shards.train, cfg.trainer.seed, "train"), rank=dist.rank,
                        world_size=dist.world_size, prefetch=cfg.prefetch, what="training")
    valid = builder(shards.valid, 1234, "valid")
    require_batches(valid, 1, "held-out (valid)")
    return train, valid


def held_out_batches(valid: IndexedBatches, eval_batches: int) -> Callable[[], list[dict]]:
    """The held-out batches, built at the first evaluation and reused, so every evaluation sees
    the same sequences and masks."""

    cache: list[dict] = []

    def get() -> list[dict]:
        if not cache:
            cache.extend(iter_eval_batches(valid, eval_batches))
        return cache
    return get


class MaskedLMScore:
    """Masked-LM accuracy, loss and perplexity over held-out batches, next to the unigram
    baseline on the same positions (always the most frequent token; its perplexity is the floor
    a model must beat)."""

    def __init__(self, shards: ShardSet) -> None:
        logp = shards.unigram_log_probs()
        self.top_id = int(logp.argmax())
        self.unigram_logp = torch.from_numpy(logp).float()
        self.reset()

    def reset(self) -> None:
        self.loss = self.correct = self.n = self.unigram_correct = self.unigram_nll = 0.0

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """logits: (masked, vocab); labels: (masked,)."""

        logits = logits.float()
        self.loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        self.correct += float((logits.argmax(-1) == labels).sum())
        self.unigram_correct += float((labels == self.top_id).sum())
        self.unigram_nll -= float(self.unigram_logp[labels.cpu()].sum())
        self.n += labels.numel()

    def metrics(self) -> dict[str, float]:
        n = max(self.n, 1)
        return {"mlm_accuracy": self.correct / n, "mlm_loss": self.loss / n,
                "perplexity": math.exp(min(self.loss / n, 50.0)), "unigram_accuracy": self.unigram_correct / n,
                "unigram_perplexity": math.exp(min(self.unigram_nll / n, 50.0)), "masked_tokens": int(self.n)}


def masked_lm_head_flops(batch: dict, c: BertConfig) -> torch.Tensor:
    """Training FLOPs of the masked-LM head (transform + vocabulary projection) on the masked tokens."""
    return 6 * (c.hidden_size * c.hidden_size + c.hidden_size * c.vocab_size) * (batch["labels"] != -100).sum()


def encoder_flops(batch: dict, encoder_params: int, c: BertConfig) -> torch.Tensor:
    """Training FLOPs of an encoder on the real tokens of `batch` (6 x params per token) plus
    attention over the real lengths."""
    lengths = batch["attention_mask"].sum(1)
    attention = 12 * c.num_hidden_layers * c.hidden_size * (lengths * lengths).sum()
    return 6 * encoder_params * lengths.sum() + attention
