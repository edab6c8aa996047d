"""The settings of `hanformer pretrain` and what an objective hands the trainer.

Light on purpose (no torch): the command line shows these settings in `--help`, and recipes check
them before any work starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from hanformer.errors import ConfigError
from hanformer.training.batch_source import BatchSource
from hanformer.training.config import TrainerConfig, check_output_dir
from hanformer.utils.config import setting

if TYPE_CHECKING:  # types only: this module stays free of torch at run time
    from torch import nn

# BERT preset names that GPT shares (`--objective clm --model base`); "base" is GPT-2 small's size.
GPT_PRESET_ALIASES = {"base": "gpt2-small"}


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
    static_embeddings: Literal["none", "skipgram"] = setting(
        "none", "skipgram: before the first step, set the token embeddings to skip-gram vectors of the "
        "pieces trained on the shards' training text (seconds to a minute; needs gensim; new masked-LM "
        "models only)")
    static_epochs: int = setting(5, "skipgram: passes of word2vec over the training text")
    static_window: int = setting(5, "skipgram: context window in pieces on each side (word2vec's 5; a window "
                                 "as wide as a short document learns what a whole review is about)")
    freeze_embeddings: bool = setting(False, "keep the token embedding matrix fixed while pretraining (with "
                                      "static_embeddings: the encoder learns on top of the skip-gram space)")
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
        if self.static_embeddings != "none" and (self.objective not in ("mlm", "mlm_nsp") or self.init_from):
            raise ConfigError("static_embeddings works for new masked-LM models only (objective mlm or mlm_nsp, "
                              "no init_from)")
        if self.static_epochs < 1 or self.static_window < 1:
            raise ConfigError(f"static_epochs and static_window must be >= 1, got {self.static_epochs} and "
                              f"{self.static_window}")
        if self.eval_batches < 0 or self.prefetch < 0 or self.max_predictions < 0:
            raise ConfigError("eval_batches, prefetch and max_predictions must be >= 0")
        self.trainer.validate()
        check_output_dir(self.trainer.output_dir, "output_dir")


# Settings that may change when a run is resumed (where the data lives, how much is evaluated,
# how batches are fetched, and the starting weights, which the checkpoint replaces).
PRETRAIN_MAY_CHANGE_ON_RESUME = frozenset({"data", "tokenizer", "init_from", "eval_batches", "prefetch", "trainer"})


@dataclasses.dataclass
class ObjectiveParts:
    model: nn.Module                            # its forward returns an output with .loss
    train_batches: BatchSource
    eval_fn: Callable[[nn.Module], dict[str, float]] | None
    flops_fn: Callable[[dict], Any] | None = None  # an int or a 0-d tensor of FLOPs
    metric_names: tuple[str, ...] | None = None  # what eval_fn reports (checks --metric-for-best early)
    # The last evaluation's metrics -> a warning when they show a run that learned nothing useful.
    diagnose: Callable[[dict[str, float]], str | None] | None = None
