"""`pretrain`: train a model from scratch (or continue one) on token shards.

The objective decides the model, the batches and the evaluation; everything else (optimizer,
schedule, precision, checkpoints, DDP, progress) is the shared `Trainer`. Objectives register
in `OBJECTIVES` as "module:function" so a new one (e.g. a causal LM on the same shards) is one
line here plus a builder function `build(config, shards, tokenizer, dist) -> ObjectiveParts`.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from hanformer.errors import ConfigError
from hanformer.training.config import TrainerConfig, check_output_dir
from hanformer.utils.config import setting

# objective name -> "module:function" returning ObjectiveParts
OBJECTIVES: dict[str, str] = {
    "mlm_nsp": "hanformer.training.pretrain:build_mlm_nsp",
    "mlm": "hanformer.training.pretrain:build_mlm",
    "clm": "hanformer.generation.pretrain:build_clm",
    "rtd": "hanformer.training.rtd:build_rtd",
}


@dataclasses.dataclass
class PretrainConfig:
    data: str = setting("", "shard directory made by `hanformer data prepare`")
    objective: Literal["mlm_nsp", "mlm", "rtd", "clm"] = setting(
        "mlm_nsp", "mlm_nsp: BERT masked LM + next sentence prediction; mlm: masked LM only (no NSP "
        "head or loss, as RoBERTa); rtd: ELECTRA replaced-token "
        "detection (a small generator fills the masks, the encoder learns from every token); "
        "clm: causal LM (GPT)")
    model: str = setting("mini", "model size preset: tiny, mini, small, medium, base, large")
    model_config: dict = setting({}, "model settings overriding the preset (TOML table, config.json names)")
    init_from: str | None = setting(None, "start from this checkpoint directory instead of random weights")
    tokenizer: str | None = setting(None, "tokenizer directory to check against the shards' vocab_hash "
                                    "(default: the copy stored with the shards)")
    seq_len: int = setting(128, "maximum sequence length in tokens")
    batch_size: int = setting(32, "sequences per micro-batch per process (global batch = "
                              "batch-size x grad-accum x processes)")
    short_seq_prob: float = setting(0.1, "probability of a shorter target length for an instance (BERT)")
    mask_prob: float = setting(0.15, "share of tokens chosen for masked-LM prediction")
    mask_token_prob: float = setting(0.8, "of the chosen tokens: replaced by [MASK]")
    random_token_prob: float = setting(0.1, "of the chosen tokens: replaced by a random token (rest unchanged)")
    max_predictions: int = setting(0, "cap on masked tokens per sequence (0: none)")
    whole_word_masking: bool = setting(False, "mask all pieces of a word (Korean: an eojeol) together")
    dropout: float | None = setting(None, "override the preset's dropout (hidden and attention)")
    generator_layers: int = setting(
        0, "rtd: layers of the masked-LM generator (0: a quarter of the encoder's, at least 1)")
    rtd_weight: float = setting(50.0, "rtd: weight of the replaced-token detection loss against the "
                                "generator's masked-LM loss (ELECTRA's 50)")
    unigram_bias_init: bool = setting(
        True, "start the masked-LM output bias at the log token frequencies of the training data, so "
        "training begins at the unigram baseline instead of spending its first steps learning "
        "frequencies (new models only)")
    eval_batches: int = setting(20, "held-out batches per evaluation (0: all)")
    prefetch: int = setting(2, "batches built ahead in a background thread (0: off)")
    trainer: TrainerConfig = dataclasses.field(
        default_factory=lambda: TrainerConfig(output_dir="runs/pretrain"),
        metadata={"help": "the training loop ([trainer] table)"})

    def validate(self) -> None:
        if not self.data:
            raise ConfigError("pretraining needs data: give --data SHARD_DIR (or `data = ...` in the TOML)")
        if self.seq_len < 8:
            raise ConfigError(f"seq_len must be >= 8, got {self.seq_len}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"mask_prob must be in (0, 1), got {self.mask_prob}")
        if self.mask_token_prob + self.random_token_prob > 1.0 or min(self.mask_token_prob, self.random_token_prob) < 0:
            raise ConfigError("mask_token_prob + random_token_prob must be within [0, 1]")
        if self.generator_layers < 0 or self.rtd_weight <= 0:
            raise ConfigError("generator_layers must be >= 0 and rtd_weight > 0")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ConfigError(f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout (--dropout) must be in [0, 1), got {self.dropout}")
        if self.eval_batches < 0 or self.prefetch < 0 or self.max_predictions < 0:
            raise ConfigError("eval_batches, prefetch and max_predictions must be >= 0")
        self.trainer.validate()
        check_output_dir(self.trainer.output_dir, "output_dir")


# Settings that may change when a run is resumed (where the data lives, how much is evaluated,
# how batches are fetched, and the starting weights, which the checkpoint replaces).
PRETRAIN_MAY_CHANGE_ON_RESUME = frozenset({"data", "tokenizer", "init_from", "eval_batches", "prefetch", "trainer"})


@dataclasses.dataclass
class ObjectiveParts:
    model: Any                                  # nn.Module with .loss
    train_batches: Any                          # BatchSource
    eval_fn: Callable[[Any], dict[str, float]] | None
    flops_fn: Callable[[dict], Any] | None = None
    metric_names: tuple[str, ...] | None = None  # what eval_fn reports (checks --metric-for-best early)


def get_objective(name: str) -> Callable[..., ObjectiveParts]:
    target = OBJECTIVES.get(name)
    if target is None:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    module, func = target.split(":")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError):
        raise ConfigError(f"objective {name!r} is not available in this version ({target} missing)") from None


# --------------------------------------------------------------------------- masked LM + NSP
def build_mlm_nsp(cfg: PretrainConfig, shards: Any, tokenizer: Any, dist: Any) -> ObjectiveParts:
    return _build_masked_lm(cfg, shards, dist, with_nsp=True)


def build_mlm(cfg: PretrainConfig, shards: Any, tokenizer: Any, dist: Any) -> ObjectiveParts:
    """Masked LM alone (RoBERTa found NSP unhelpful; on one-sentence documents it is degenerate).
    Same instances as mlm_nsp; the model ignores their NSP labels."""
    return _build_masked_lm(cfg, shards, dist, with_nsp=False)


def _build_masked_lm(cfg: PretrainConfig, shards: Any, dist: Any, with_nsp: bool) -> ObjectiveParts:
    from hanformer.models.heads import BertForMaskedLM, BertForPreTraining

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
    train, valid = masked_batches(cfg, shards, dist)
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


# --------------------------------------------------------------------------- shared by masked objectives
def new_bert_config(cfg: PretrainConfig, shards: Any) -> Any:
    """The preset sized to the shards' vocabulary, with the config's overrides."""
    from hanformer.models.config import BertConfig

    overrides: dict[str, Any] = {"vocab_size": shards.vocab_size, "pad_token_id": shards.special_ids["pad"],
                                 "max_position_embeddings": max(512, cfg.seq_len)}
    if cfg.dropout is not None:
        overrides.update(hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
    overrides.update(cfg.model_config)
    return BertConfig.preset(cfg.model, **overrides)


def check_seq_len(cfg: PretrainConfig, config: Any) -> None:
    if config.max_position_embeddings < cfg.seq_len:
        raise ConfigError(f"seq_len {cfg.seq_len} exceeds the model's max_position_embeddings "
                          f"{config.max_position_embeddings}")


def init_unigram_bias(mlm_head: Any, shards: Any) -> None:
    import torch

    logp = shards.unigram_log_probs()
    with torch.no_grad():
        mlm_head.bias.copy_(torch.from_numpy(logp - logp.mean()).float())


def masked_batches(cfg: PretrainConfig, shards: Any, dist: Any) -> tuple[Any, Any]:
    """(training stream, held-out batches) of BERT sentence-pair instances with masks."""
    from hanformer.data.batches import BatchStream, NSPBatches, require_batches
    from hanformer.data.masking import Masker, MaskingSpec

    sp = shards.special_ids
    spec = MaskingSpec(cfg.mask_prob, cfg.mask_token_prob, cfg.random_token_prob, cfg.max_predictions,
                       cfg.whole_word_masking)
    masker = Masker(spec, shards.vocab_size, sp["mask"], shards.meta.get("all_special_ids", list(sp.values())))

    def builder(split: Any, split_seed: int, name: str) -> NSPBatches:
        return NSPBatches(split, seq_len=cfg.seq_len, batch_size=cfg.batch_size, short_seq_prob=cfg.short_seq_prob,
                          masker=masker, special_ids=sp, seed=split_seed, name=name)

    train = BatchStream(builder(shards.train, cfg.trainer.seed, "train"), rank=dist.rank,
                        world_size=dist.world_size, prefetch=cfg.prefetch, what="training")
    valid = builder(shards.valid, 1234, "valid")
    require_batches(valid, 1, "held-out (valid)")
    return train, valid


def held_out_batches(valid: Any, eval_batches: int) -> Callable[[], list[dict]]:
    """The held-out batches, built at the first evaluation and reused, so every evaluation sees
    the same sequences and masks."""
    from hanformer.data.batches import iter_eval_batches

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

    def __init__(self, shards: Any) -> None:
        import torch

        logp = shards.unigram_log_probs()
        self.top_id = int(logp.argmax())
        self.unigram_logp = torch.from_numpy(logp).float()
        self.reset()

    def reset(self) -> None:
        self.loss = self.correct = self.n = self.unigram_correct = self.unigram_nll = 0.0

    def add(self, logits: Any, labels: Any) -> None:
        """logits: (masked, vocab); labels: (masked,)."""
        import torch.nn.functional as F

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


def masked_lm_head_flops(batch: dict, c: Any) -> Any:
    """Training FLOPs of the masked-LM head (transform + vocabulary projection) on the masked tokens."""
    return 6 * (c.hidden_size * c.hidden_size + c.hidden_size * c.vocab_size) * (batch["labels"] != -100).sum()


def encoder_flops(batch: dict, encoder_params: int, c: Any) -> Any:
    """Training FLOPs of an encoder on the real tokens of `batch` (6 x params per token) plus
    attention over the real lengths."""
    lengths = batch["attention_mask"].sum(1)
    attention = 12 * c.num_hidden_layers * c.hidden_size * (lengths * lengths).sum()
    return 6 * encoder_params * lengths.sum() + attention


# --------------------------------------------------------------------------- entry point
def check_init_vocabulary(init_from: str, shards: Any) -> None:
    """--init-from a checkpoint whose tokenizer is not the shards' (same size, other ids) would
    train on ids that mean other tokens: refuse it, as for --tokenizer."""
    from hanformer.tokenization.tokenizer import Tokenizer

    if not (Path(init_from) / "vocab.txt").is_file() and not (Path(init_from) / "tokenizer.json").is_file():
        return  # no tokenizer saved with the weights: the vocabulary size check is all there is
    shards.check_tokenizer(Tokenizer.from_pretrained(init_from).vocab_hash, f"--init-from {init_from}")


def pretrain(config: PretrainConfig, resume: str | bool | None = None) -> Any:
    """Pretrain on `config.data`; returns the Trainer's TrainResult. The final model (with the
    tokenizer files) is in OUTPUT_DIR/final, loadable with `from_pretrained`."""
    from hanformer.data.shards import ShardSet
    from hanformer.tokenization.tokenizer import Tokenizer
    from hanformer.training.distributed import env_dist_info, resolve_device
    from hanformer.training.trainer import Trainer, seed_everything
    from hanformer.utils.config import config_to_dict
    from hanformer.utils.files import atomic_write_json

    config.validate()
    dist = env_dist_info()
    resolve_device(config.trainer.device, dist)  # a missing GPU is said before any work
    shards = ShardSet(config.data)
    tokenizer = Tokenizer.from_pretrained(config.tokenizer or shards.tokenizer_dir)
    shards.check_tokenizer(tokenizer.vocab_hash, f"tokenizer {config.tokenizer or shards.tokenizer_dir}")
    if config.init_from:
        check_init_vocabulary(config.init_from, shards)
    seed_everything(config.trainer.seed)
    parts = get_objective(config.objective)(config, shards, tokenizer, dist)

    def export(model: Any, directory: Path) -> None:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    settings = {k: v for k, v in config_to_dict(config).items() if k not in PRETRAIN_MAY_CHANGE_ON_RESUME}
    identity = {"vocab_hash": shards.meta["vocab_hash"], "data": shards.meta.get("splits"), "pretrain": settings}
    trainer = Trainer(parts.model, config.trainer, parts.train_batches, parts.eval_fn,
                      export_fn=export, flops_fn=parts.flops_fn, dist_info=dist,
                      metric_names=parts.metric_names, run_identity=identity)
    try:
        trainer.prepare_output_dir(resume)  # before writing into it: it may hold another run
        if dist.is_main:
            atomic_write_json(Path(config.trainer.output_dir) / "pretrain_config.json", config_to_dict(config))
        return trainer.train(resume=resume)
    finally:
        close = getattr(parts.train_batches, "close", None)
        if close:
            close()
