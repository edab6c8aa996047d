"""The causal-LM objective (`hanformer pretrain --objective clm`): GPT on BERT's token shards.

Everything but the model, the batches and the evaluation is the shared pretraining entry point
and `Trainer` (optimizer, schedule, precision, checkpoints, resume, DDP, progress). Batches are
packed contiguous sequences (`data/clm.py`); evaluation is held-out perplexity, next to the
perplexity of a unigram model (token frequencies of the training split) as the floor a model
must beat to have learned anything from context.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from hanformer.data.batches import BatchStream, require_batches
from hanformer.data.clm import PackedCLMBatches
from hanformer.data.shards import ShardSet, ShardSplit
from hanformer.errors import ConfigError
from hanformer.models.gpt.config import PRESETS, GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM
from hanformer.pretraining.config import GPT_PRESET_ALIASES, ObjectiveParts, PretrainConfig
from hanformer.pretraining.masked import held_out_batches
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import DistInfo


def build_clm(cfg: PretrainConfig, shards: ShardSet, tokenizer: Tokenizer, dist: DistInfo) -> ObjectiveParts:
    sp = shards.special_ids
    separator = sp["sep"]
    if cfg.init_from:
        model = GPTForCausalLM.from_pretrained(cfg.init_from)
        model.train()
        if model.config.vocab_size != shards.vocab_size:
            raise ConfigError(f"{cfg.init_from}: the model has {model.config.vocab_size} token ids but the "
                              f"shards' tokenizer has {shards.vocab_size}; use matching data")
    else:
        preset = GPT_PRESET_ALIASES.get(cfg.model, cfg.model)
        if preset not in PRESETS:
            raise ConfigError(f"unknown GPT preset {cfg.model!r}; choose one of {', '.join(PRESETS)}")
        # The separator between documents is also where a text starts and where it ends.
        overrides: dict[str, Any] = {"vocab_size": shards.vocab_size, "n_positions": cfg.seq_len,
                                     "bos_token_id": separator, "eos_token_id": separator,
                                     "pad_token_id": sp.get("pad", separator)}
        if cfg.dropout is not None:
            overrides.update(resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout)
        overrides.update(cfg.model_config)
        model = GPTForCausalLM(GPTConfig.preset(preset, **overrides))
    if model.config.n_positions < cfg.seq_len:
        raise ConfigError(f"seq_len {cfg.seq_len} exceeds the model's context window n_positions "
                          f"{model.config.n_positions}")

    def builder(split: ShardSplit, seed: int, name: str, shuffle: bool = True) -> PackedCLMBatches:
        return PackedCLMBatches(split, seq_len=cfg.seq_len, batch_size=cfg.batch_size, separator_id=separator,
                                seed=seed, shuffle=shuffle, name=name)

    train = BatchStream(builder(shards.train, cfg.trainer.seed, "train"), rank=dist.rank,
                        world_size=dist.world_size, prefetch=cfg.prefetch, what="training")
    valid = builder(shards.valid, 0, "valid", shuffle=False)
    require_batches(valid, 1, "held-out (valid)")

    # Unigram floor: cross-entropy of held-out tokens under the training frequencies (the same
    # smoothing as the masked-LM objectives', so the floors of all objectives compare).
    unigram_logp = torch.from_numpy(shards.unigram_log_probs())
    eval_set = held_out_batches(valid, cfg.eval_batches)

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        device = next(m.parameters()).device
        nll = correct = unigram = 0.0
        n = 0
        for batch in eval_set():
            ids = batch["input_ids"].to(device)
            logits = m(ids).logits[:, :-1].float()
            targets = ids[:, 1:]
            nll += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                           targets.reshape(-1), reduction="sum"))
            correct += float((logits.argmax(-1) == targets).sum())
            unigram -= float(unigram_logp[targets.cpu()].sum())
            n += targets.numel()
        return clm_metrics(nll, correct, unigram, n)

    c = model.config
    layer_params = sum(p.numel() for name, p in model.named_parameters() if ".layers." in name)
    head_params = c.n_embd * c.vocab_size

    def flops(batch: dict) -> int:
        """Forward + backward = 6 x params per token, plus causal attention (half of the T x T scores)."""
        rows, length = batch["input_ids"].shape
        tokens = rows * length
        return 6 * (layer_params + head_params) * tokens + 6 * c.n_layer * c.n_embd * rows * length * length

    return ObjectiveParts(model=model, train_batches=train, eval_fn=evaluate, flops_fn=flops,
                          metric_names=tuple(clm_metrics(0.0, 0.0, 0.0, 0)))


def clm_metrics(nll: float, correct: float, unigram_nll: float, n: int) -> dict[str, float]:
    """Held-out scores from sums over `n` predicted tokens (model and unigram negative log-likelihoods)."""
    loss = nll / max(n, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "next_token_accuracy": correct / max(n, 1),
            "unigram_perplexity": math.exp(min(unigram_nll / max(n, 1), 50.0)), "predicted_tokens": n}
