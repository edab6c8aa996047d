"""The `mlm_nsp` and `mlm` objectives: BERT's masked LM with or without next-sentence prediction."""

from __future__ import annotations

from typing import Any

from hanformer.data.shards import ShardSet
from hanformer.entities.marking import MarkerIds
from hanformer.entities.model import add_entity_embedding
from hanformer.entities.tokens import marker_ids, recorded_entity_config
from hanformer.errors import ConfigError
from hanformer.models.bert.heads import BertForMaskedLM, BertForPreTraining
from hanformer.pretraining.config import ObjectiveParts, PretrainConfig
from hanformer.pretraining.masked import (
    MaskedLMScore,
    check_seq_len,
    encoder_flops,
    held_out_batches,
    init_unigram_bias,
    masked_batches,
    masked_lm_head_flops,
    new_bert_config,
)
from hanformer.pretraining.static_embeddings import load_static_vectors, skipgram_vectors
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import DistInfo
from hanformer.training.optim import freeze_token_embeddings


def build_mlm_nsp(cfg: PretrainConfig, shards: ShardSet, tokenizer: Tokenizer, dist: DistInfo) -> ObjectiveParts:
    return _build_masked_lm(cfg, shards, tokenizer, dist, with_nsp=True)


def build_mlm(cfg: PretrainConfig, shards: ShardSet, tokenizer: Tokenizer, dist: DistInfo) -> ObjectiveParts:
    """Masked LM alone (RoBERTa found NSP unhelpful; on one-sentence documents it is degenerate).
    Same instances as mlm_nsp; the model ignores their NSP labels."""
    return _build_masked_lm(cfg, shards, tokenizer, dist, with_nsp=False)


def entity_embedding_markers(tokenizer: Tokenizer) -> MarkerIds | None:
    """The markers whose spans give the entity ids, when the shards' text has its entities marked
    (`hanformer data prepare --entities`) for a model with the entity embedding; else None."""
    entities = recorded_entity_config(tokenizer)
    if entities is None or not entities.entity_embedding:
        return None
    return marker_ids(tokenizer.backend)


def _build_masked_lm(cfg: PretrainConfig, shards: ShardSet, tokenizer: Tokenizer, dist: DistInfo,
                     with_nsp: bool) -> ObjectiveParts:
    cls = BertForPreTraining if with_nsp else BertForMaskedLM
    if cfg.init_from:
        model = cls.from_pretrained(cfg.init_from)
        if model.config.vocab_size != shards.vocab_size:
            raise ConfigError(f"{cfg.init_from}: the model has {model.config.vocab_size} token ids but the "
                              f"shards' tokenizer has {shards.vocab_size}; use matching data")
    else:
        model = cls(new_bert_config(cfg, shards))
    check_seq_len(cfg, model.config)
    if cfg.unigram_bias_init and not cfg.init_from:
        init_unigram_bias(model.mlm, shards)
    if cfg.static_embeddings == "skipgram":
        embedding = model.bert.embeddings.word_embeddings
        static = skipgram_vectors(shards.train, shards.vocab_size, embedding.embedding_dim,
                                  epochs=cfg.static_epochs, window=cfg.static_window, seed=cfg.trainer.seed)
        load_static_vectors(embedding, static)
    markers = entity_embedding_markers(tokenizer)
    if markers is not None:
        add_entity_embedding(model)  # zero at the start, like every entity table; trained from the first step
    if cfg.freeze_embeddings:
        freeze_token_embeddings(model)
    train, valid = masked_batches(cfg, shards, dist, markers)
    score = MaskedLMScore(shards)
    eval_set = held_out_batches(valid, cfg.eval_batches)

    def evaluate(m: Any) -> dict[str, float]:
        device = next(m.parameters()).device
        score.reset()
        nsp_correct = nsp_n = 0.0
        for batch in eval_set():
            b = {k: v.to(device) for k, v in batch.items()}
            out = m(**b)
            logits = out.prediction_logits if with_nsp else out.logits
            if logits.dim() == 3:  # a model that projects every position
                logits = logits[b["labels"] != -100]
            score.add(logits, b["labels"][b["labels"] != -100])
            if with_nsp:
                nsp = out.seq_relationship_logits.argmax(-1)
                nsp_correct += float((nsp == b["next_sentence_label"]).sum())
                nsp_n += nsp.numel()
        return masked_lm_metrics(score, nsp_correct / max(nsp_n, 1) if with_nsp else None)

    c = model.config
    encoder_params = sum(p.numel() for n, p in model.named_parameters()
                         if "embeddings" not in n and not n.startswith(("mlm.", "nsp.")))

    def flops(batch: dict) -> Any:
        """Useful work only: the encoder on real tokens, attention over real lengths, the
        masked-LM head on masked tokens (forward + backward = 3 x forward = 6 x params)."""
        return encoder_flops(batch, encoder_params, c) + masked_lm_head_flops(batch, c)

    names = tuple(masked_lm_metrics(MaskedLMScore(shards), 0.0 if with_nsp else None))
    return ObjectiveParts(model=model, train_batches=train, eval_fn=evaluate, flops_fn=flops, metric_names=names)


def masked_lm_metrics(score: MaskedLMScore, nsp_accuracy: float | None) -> dict[str, float]:
    return {**score.metrics(), **({"nsp_accuracy": nsp_accuracy} if nsp_accuracy is not None else {})}
