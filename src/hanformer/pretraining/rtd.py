"""The `rtd` pretraining objective: ELECTRA's replaced-token detection on the BERT shards.

Same instances and masks as masked-LM + NSP (the sentence pairs keep their segment ids; the
NSP label is ignored), the model is `ElectraForPreTraining`, and the final checkpoint is the
discriminator as a plain BERT encoder, ready for `hanformer finetune`.
"""

from __future__ import annotations

from typing import Any

import torch

from hanformer.data.shards import ShardSet
from hanformer.errors import ConfigError
from hanformer.models.bert.electra import ElectraForPreTraining
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
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import DistInfo

EVAL_SAMPLING_SEED = 1234  # held-out replacements are drawn the same way at every evaluation


def build_rtd(cfg: PretrainConfig, shards: ShardSet, tokenizer: Tokenizer, dist: DistInfo) -> ObjectiveParts:
    if cfg.init_from:
        raise ConfigError("init_from is not supported with objective 'rtd' (it starts generator and "
                          "discriminator fresh); drop init_from or use objective 'mlm_nsp'")
    config = new_bert_config(cfg, shards)
    check_seq_len(cfg, config)
    generator_layers = cfg.generator_layers or max(1, config.num_hidden_layers // 4)
    model = ElectraForPreTraining(config, generator_layers=generator_layers, rtd_weight=cfg.rtd_weight)
    if cfg.unigram_bias_init:
        init_unigram_bias(model.generator.mlm, shards)
    train, valid = masked_batches(cfg, shards, dist)
    score = MaskedLMScore(shards)
    eval_set = held_out_batches(valid, cfg.eval_batches)

    def evaluate(m: Any) -> dict[str, float]:
        device = next(m.parameters()).device
        sampler = torch.Generator(device=device).manual_seed(EVAL_SAMPLING_SEED)
        score.reset()
        loss = tp = fp = fn = tn = 0.0
        for batch in eval_set():
            b = {k: v.to(device) for k, v in batch.items()}
            out = m(**b, sampler=sampler)
            masked = b["labels"] != -100
            score.add(out.generator_logits, b["labels"][masked])
            guess = out.rtd_logits > 0
            truth = out.replaced
            loss += float(out.rtd_loss) * truth.numel()  # the batch's mean over its real tokens
            tp += float((guess & truth).sum())
            fp += float((guess & ~truth).sum())
            fn += float((~guess & truth).sum())
            tn += float((~guess & ~truth).sum())
        return rtd_metrics(score, loss, tp, fp, fn, tn)

    c = config
    params = {n: p.numel() for n, p in model.named_parameters() if "embeddings" not in n}
    discriminator = sum(v for n, v in params.items() if n.startswith("bert."))
    generator = sum(v for n, v in params.items() if n.startswith("generator.bert."))
    rtd_head = c.hidden_size * c.hidden_size + c.hidden_size
    generator_config = model.generator.config

    def flops(batch: dict) -> Any:
        """Useful work: generator and discriminator on the real tokens, the masked-LM head on the
        masked tokens, the detection head on the real tokens (forward + backward)."""
        real = batch["attention_mask"].sum()
        return (encoder_flops(batch, discriminator, c) + encoder_flops(batch, generator, generator_config)
                + masked_lm_head_flops(batch, c) + 6 * rtd_head * real)

    names = tuple(rtd_metrics(MaskedLMScore(shards), 0.0, 0.0, 0.0, 0.0, 0.0))
    return ObjectiveParts(model=model, train_batches=train, eval_fn=evaluate, flops_fn=flops, metric_names=names,
                          diagnose=collapsed_detector)


def collapsed_detector(metrics: dict[str, float]) -> str | None:
    """A detector that never flags a replaced token has settled on always answering "original"
    (its accuracy is then exactly the baseline's), and its encoder transfers worse than random
    weights. Too high a learning rate does that: with lr 2e-3 the tiny model collapsed for good;
    at 5e-4 (ELECTRA-small's) it kept flagging a few replacements (2% of them after 3,000 steps)."""
    if metrics.get("replaced_recall", 1.0) > 0.0:
        return None
    return ("the ELECTRA detector never flags a replaced token (it answers 'original' everywhere: accuracy "
            f"{metrics.get('rtd_accuracy', 0.0):.4f} = its baseline); this encoder will fine-tune worse than "
            "random weights. Pretrain again with a lower --lr (ELECTRA-small used 5e-4)")


def rtd_metrics(score: MaskedLMScore, loss: float, tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    """The generator's masked-LM scores and the detector's, from summed counts over held-out tokens."""
    n = max(tp + fp + fn + tn, 1.0)
    return {**score.metrics(), "rtd_accuracy": (tp + tn) / n, "rtd_loss": loss / n,
            # always answering "original": the floor the detector must beat
            "rtd_baseline_accuracy": (fp + tn) / n,
            "replaced_precision": tp / max(tp + fp, 1.0), "replaced_recall": tp / max(tp + fn, 1.0)}
