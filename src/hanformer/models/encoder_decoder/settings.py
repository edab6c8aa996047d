"""Settings of `hanformer translation train` (light: the CLI reads them to build its --help).

The training defaults are the paper's: Adam with beta2 0.98 and eps 1e-9 (no weight decay),
the inverse-square-root schedule after a linear warmup, label smoothing 0.1, dropout 0.1,
batches of a token budget. The warmup is shorter than the base model's 4000 steps because the
runs this is made for are short (minutes to hours on a CPU); the peak rate 1e-3 is half what
the paper's formula gives for mini with that warmup ((256 x 1000)^-0.5 = 2e-3): a cautious
choice for a post-LN model, not a tuned one. The recurrent architectures (`--architecture gru`
or `lstm`) train with the same loop and defaults, so the comparison changes the model only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from hanformer.errors import ConfigError
from hanformer.training.config import TrainerConfig, check_output_dir
from hanformer.utils.config import setting

PRESET_NAMES = ("tiny", "mini", "small", "base")
# Model fields an --init-encoder BERT decides (the keys of warm_start.bert_encoder_fields, which a
# test holds equal); an override of one would break the copy of its weights.
BERT_DECIDED = ("vocab_size", "decoder_vocab_size", "d_model", "encoder_layers", "encoder_attention_heads",
                "encoder_ffn_dim", "activation_function", "norm_placement", "layer_norm_eps",
                "position_embedding_type", "normalize_embedding", "scale_embedding",
                "share_encoder_decoder_embeddings")
# What `--architecture` chooses: the Transformer, or a recurrent encoder-decoder on this cell.
ARCHITECTURES = ("transformer", "gru", "lstm")
ATTENTIONS = ("none", "bahdanau", "luong")

TRANSLATION_TRAINER_DEFAULTS: dict[str, Any] = {
    "output_dir": "runs/translation", "optimizer": "adamw", "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.98,
    "eps": 1e-9, "schedule": "inverse_sqrt", "warmup_steps": 1000, "lr": 1e-3, "grad_clip": 1.0,
    "max_steps": 20000, "log_every": 50, "eval_every": 1000, "metric_for_best": "bleu", "greater_is_better": True}


@dataclasses.dataclass
class TranslationTrainConfig:
    train_source: str = setting("", "training source sentences, one per line (line N of --train-target is its "
                                "translation)")
    train_target: str = setting("", "training target sentences, one per line")
    valid_source: str | None = setting(None, "validation source sentences (default: --valid-size pairs carved "
                                       "from the training files, seeded)")
    valid_target: str | None = setting(None, "validation target sentences (with --valid-source)")
    valid_size: int = setting(1000, "pairs carved from the training files for validation when no --valid-* "
                              "files are given (at most a tenth of them)")
    out: str = setting("runs/translation", "output folder: tokenizer/, checkpoints/, metrics.jsonl, best/, final/")
    tokenizer: str | None = setting(None, "an existing tokenizer folder to use instead of training one "
                                    "(it needs [PAD], [CLS] and [SEP])")
    init_encoder: str | None = setting(
        None, "a BERT folder (hanformer's or Hugging Face's) that starts the Transformer's encoder: its tokenizer "
        "is the joint vocabulary and its sizes the model's (--model then sets only the decoder's depth; "
        "--model-overrides may change the decoder's heads and feed-forward width)")
    subword: Literal["unigram", "wordpiece"] = setting(
        "unigram", "joint vocabulary kind: unigram (SentencePiece-style pieces, decodes to the exact text) or "
        "wordpiece (hanformer's BERT trainer; decoding puts spaces around hyphens)")
    vocab_size: int = setting(8000, "size of the joint source+target vocabulary to train")
    architecture: Literal["transformer", "gru", "lstm"] = setting(
        "transformer", "transformer (the encoder-decoder Transformer), or gru / lstm: a recurrent "
        "encoder-decoder on that cell (see --attention)")
    attention: Literal["none", "bahdanau", "luong"] = setting(
        "bahdanau", "gru / lstm only: the decoder's context: none (the encoder's final state), bahdanau "
        "(additive attention) or luong (multiplicative attention)")
    model: str = setting("mini", f"model size preset: {', '.join(PRESET_NAMES)} (transformer: base = the paper's "
                         "base model; gru / lstm: base = RNNsearch's sizes)")
    model_overrides: dict[str, Any] = setting(
        {}, "model config fields over the preset, e.g. dropout=0.3,norm_placement=pre (TransformerConfig) or "
        "hidden_size=512,bidirectional=false (RNNSeq2SeqConfig)")
    label_smoothing: float = setting(0.1, "label smoothing of the training loss (the paper's 0.1)")
    max_length: int = setting(128, "longest sentence in tokens (EOS included) on either side; longer training "
                              "pairs are left out; also the model's positions")
    max_tokens: int = setting(4096, "token budget of a batch: pairs x longest side (padding included)")
    pool_size: int = setting(2048, "pairs shuffled together and sorted by length before being cut into batches")
    eval_sentences: int = setting(500, "validation pairs translated for BLEU/chrF at every evaluation (0: all)")
    eval_beams: int = setting(1, "beam width of the BLEU/chrF translations during training (1: greedy)")
    eval_max_tokens: int = setting(8192, "token budget of the validation-loss batches")
    trainer: TrainerConfig = dataclasses.field(
        default_factory=lambda: TrainerConfig(**TRANSLATION_TRAINER_DEFAULTS),
        metadata={"help": "the training loop ([trainer] table)"})

    def check_sources(self) -> None:
        """The files (checked when training starts: the command line sets them after the merge)."""
        if not self.train_source or not self.train_target:
            raise ConfigError("give the training pairs as --train-source FILE --train-target FILE")
        if (self.valid_source is None) != (self.valid_target is None):
            raise ConfigError("give both --valid-source and --valid-target, or neither (then validation pairs "
                              "are carved from the training files)")

    def validate(self) -> None:
        if self.model not in PRESET_NAMES:
            raise ConfigError(f"--model {self.model!r}: use one of {', '.join(PRESET_NAMES)}")
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"--architecture {self.architecture!r}: use one of {', '.join(ARCHITECTURES)}")
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"--attention {self.attention!r}: use one of {', '.join(ATTENTIONS)}")
        for name in ("cell", "attention"):
            if self.architecture != "transformer" and name in self.model_overrides:
                raise ConfigError(f"--model-overrides {name}=...: choose it with --architecture (the cell) and "
                                  "--attention instead")
        if self.init_encoder is not None:
            if self.architecture != "transformer":
                raise ConfigError(f"--init-encoder starts a Transformer's encoder; --architecture "
                                  f"{self.architecture} has none to start")
            if self.tokenizer is not None:
                raise ConfigError("--init-encoder brings its BERT's tokenizer; leave out --tokenizer")
            decided = sorted(set(self.model_overrides) & set(BERT_DECIDED))
            if decided:
                raise ConfigError(f"--model-overrides {', '.join(decided)}: --init-encoder takes these from the "
                                  "BERT; leave them out")
        for name in ("valid_size", "vocab_size", "max_length", "max_tokens", "pool_size", "eval_beams",
                     "eval_max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 3:
            raise ConfigError(f"--max-length must be >= 3, got {self.max_length}")
        if self.eval_sentences < 0:
            raise ConfigError(f"--eval-sentences must be >= 0, got {self.eval_sentences}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        self.trainer.validate()
        check_output_dir(self.out, "out")


# Settings a resumed run may change: where things are and how much evaluation costs.
MAY_CHANGE_ON_RESUME = frozenset({"train_source", "train_target", "valid_source", "valid_target", "out",
                                  "tokenizer", "eval_sentences", "eval_beams", "eval_max_tokens", "trainer"})
