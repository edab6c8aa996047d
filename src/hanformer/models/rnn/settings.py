"""Settings of `hanformer rnn train` (light: the CLI reads them to build its --help)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from hanformer.errors import ConfigError
from hanformer.training.config import TrainerConfig, check_output_dir
from hanformer.utils.config import setting
from hanformer.utils.corpus import FORMATS

# word_language_model clips at 0.25; Adam at 2e-3 trains these sizes faster than its SGD at lr 20.
RNN_TRAINER_DEFAULTS: dict[str, Any] = {"output_dir": "runs/rnn", "lr": 2e-3, "grad_clip": 0.25,
                                        "max_steps": 2000, "log_every": 50}


@dataclasses.dataclass
class RNNTrainConfig:
    input: list[str] = setting([], "training text files or folders (with --tokenizer)")
    valid: list[str] = setting([], "held-out text files (default: the last --valid-fraction of --input's "
                               "documents; with --data: the shards' held-out split)")
    data: str | None = setting(None, "shard folder made by `hanformer data prepare`, instead of --input: "
                               "exactly the token streams GPT pretraining reads")
    tokenizer: str | None = setting(None, "tokenizer folder (needed with --input; with --data the shards' copy)")
    input_format: str = setting("auto", "format of the text files: auto, text, wiki, jsonl, tsv")
    valid_fraction: float = setting(0.01, "share of --input's tokens held out (whole documents from the end) "
                                    "when no --valid is given")
    out: str = setting("runs/rnn", "output folder: checkpoints/, metrics.jsonl, final/ (model + tokenizer)")
    cell: Literal["lstm", "gru"] = setting("lstm", "recurrent cell: lstm or gru")
    embedding_size: int = setting(256, "width of the token embeddings")
    hidden_size: int = setting(256, "width of the recurrent state of every layer")
    num_layers: int = setting(2, "stacked recurrent layers")
    dropout: float = setting(0.2, "dropout on the embeddings, between layers and on the output")
    tie_embeddings: bool = setting(True, "the output layer reuses the input embedding matrix (a projection "
                                   "bridges hidden-size and embedding-size when they differ)")
    batch_size: int = setting(20, "parallel streams the training text is cut into (per process)")
    bptt: int = setting(35, "tokens per window of truncated backpropagation through time")
    eval_streams: int = setting(10, "held-out pieces scored side by side (1: the whole text as one)")
    eval_window: int = setting(128, "tokens per forward pass when scoring held-out text")
    eval_tokens: int = setting(0, "score at most this many held-out tokens per evaluation (0: all)")
    trainer: TrainerConfig = dataclasses.field(
        default_factory=lambda: TrainerConfig(**RNN_TRAINER_DEFAULTS),
        metadata={"help": "the training loop ([trainer] table)"})

    def check_sources(self) -> None:
        """Where the text comes from (checked when training starts: the command line sets
        --input after the other settings are merged and validated)."""
        if bool(self.input) == bool(self.data):
            raise ConfigError("give the training text as --input FILE... (with --tokenizer DIR) or as "
                              "--data SHARD_DIR, one of the two")
        if self.input and not self.tokenizer:
            raise ConfigError("--input needs --tokenizer DIR (a folder made by `hanformer tokenizer train`)")
        if self.data and self.valid:
            raise ConfigError("--valid is for --input; with --data the held-out text is the shards' valid split")

    def validate(self) -> None:
        if self.input_format not in FORMATS:
            raise ConfigError(f"--input-format {self.input_format!r}: use one of {', '.join(FORMATS)}")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"--valid-fraction must be in (0, 1), got {self.valid_fraction}")
        for name in ("embedding_size", "hidden_size", "num_layers", "batch_size", "bptt", "eval_streams",
                     "eval_window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.eval_tokens < 0:
            raise ConfigError(f"--eval-tokens must be >= 0, got {self.eval_tokens}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        self.trainer.validate()
        check_output_dir(self.out, "out")


# Settings a resumed run may change: where things are and how much is evaluated.
MAY_CHANGE_ON_RESUME = frozenset({"input", "valid", "data", "tokenizer", "out", "eval_streams", "eval_window",
                                  "eval_tokens", "trainer"})
