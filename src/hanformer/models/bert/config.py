"""BertConfig: the shape of a BERT model, in Hugging Face `config.json` field names.

Field names match `transformers.BertConfig` so a `config.json` moves both ways unchanged.
Two extras describe variants the original BERT does not have:

* `norm_placement`: "post" (LayerNorm after each residual add, as in BERT) or "pre"
  (LayerNorm before each sub-layer plus a final LayerNorm; trains more stably when deep);
* `position_embedding_type`: "absolute" (learned, as in BERT) or "sinusoidal"
  (the fixed sine/cosine table of "Attention Is All You Need"; no parameters).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from hanformer.errors import ConfigError
from hanformer.models.common.config import (
    ACTIVATIONS,
    SIZE_PRESETS,
    block_parameters,
    load_model_config,
    require_choice,
    require_positive_ints,
    require_positive_numbers,
    require_probabilities,
    require_token_ids,
)
from hanformer.utils.config import load_json_object, setting
from hanformer.utils.files import atomic_write_json

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")

# BERT's sizes: the shared table (tiny ... large).
PRESETS = SIZE_PRESETS

# config.json keys written by transformers that describe nothing we model; read and dropped.
_IGNORED_HF_KEYS = {
    "_name_or_path", "transformers_version", "torch_dtype", "dtype", "gradient_checkpointing",
    "use_cache", "is_decoder", "add_cross_attention", "output_past", "directionality",
    "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers", "pooler_size_per_head",
    "pooler_type", "tie_word_embeddings", "return_dict", "output_hidden_states", "output_attentions",
    "bos_token_id", "eos_token_id", "chunk_size_feed_forward", "tokenizer_class", "model_type",
}


@dataclasses.dataclass
class BertConfig:
    vocab_size: int = setting(30522, "number of token ids (must match the tokenizer's vocabulary)")
    hidden_size: int = setting(768, "width of every token vector")
    num_hidden_layers: int = setting(12, "number of stacked Transformer layers")
    num_attention_heads: int = setting(12, "attention heads per layer (hidden_size must divide evenly)")
    intermediate_size: int = setting(3072, "inner width of the feed-forward network (usually 4 x hidden)")
    hidden_act: str = setting("gelu", f"feed-forward activation: {', '.join(ACTIVATIONS)}")
    hidden_dropout_prob: float = setting(0.1, "dropout on embeddings and sub-layer outputs")
    attention_probs_dropout_prob: float = setting(0.1, "dropout on attention probabilities")
    max_position_embeddings: int = setting(512, "longest sequence the model accepts, in tokens")
    type_vocab_size: int = setting(2, "number of segment (token type) ids; 2 for sentence pairs")
    entity_type_vocab_size: int = setting(
        0, "rows of the entity embedding added to every token (0: none, as in BERT; 2: 0 = not part of an "
        "entity, 1 = part of one); not read by transformers")
    initializer_range: float = setting(0.02, "std of the normal init of weights")
    layer_norm_eps: float = setting(1e-12, "epsilon of every LayerNorm")
    pad_token_id: int = setting(0, "id of [PAD]; its embedding row gets no gradient")
    position_embedding_type: Literal["absolute", "sinusoidal"] = setting(
        "absolute", "learned positions (BERT) or fixed sine/cosine")
    norm_placement: Literal["post", "pre"] = setting("post", "LayerNorm after residuals (BERT) or before sub-layers")
    classifier_dropout: float | None = setting(None, "dropout before task classifiers (default: hidden_dropout_prob)")
    classifier_pooling: Literal["cls", "mean"] = setting(
        "cls", "sentence vector of a sequence classifier: the [CLS] pooler (BERT) or the mean of the "
        "last hidden states over real tokens (as ModernBERT's option; not read by transformers' BERT)")
    num_labels: int = setting(2, "outputs of a classification head (1 = regression)")
    problem_type: str | None = setting(
        None, "regression | single_label_classification | multi_label_classification (None: inferred)")
    id2label: dict[int, str] | None = setting(None, "label names of a classification head, by output index")
    architectures: list[str] | None = setting(None, "model classes this checkpoint was saved from")

    def __post_init__(self) -> None:
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)
        self.validate()

    # --- checks -------------------------------------------------------------------------
    def validate(self) -> None:
        """Reject shapes that cannot work, naming the field and the fix."""
        require_positive_ints(self, ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                                     "num_labels"))
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"BertConfig: hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads} (each head gets hidden_size / heads dimensions; e.g. use "
                f"{_nearest_divisor(self.hidden_size, self.num_attention_heads)} heads)")
        if not isinstance(self.entity_type_vocab_size, int) or isinstance(self.entity_type_vocab_size, bool) \
                or self.entity_type_vocab_size < 0:
            raise ConfigError(f"BertConfig: entity_type_vocab_size must be 0 (no entity embedding) or a "
                              f"positive integer, got {self.entity_type_vocab_size!r}")
        require_choice(self, "hidden_act", ACTIVATIONS)
        if self.position_embedding_type not in ("absolute", "sinusoidal"):
            raise ConfigError(
                f"BertConfig: position_embedding_type {self.position_embedding_type!r} is not supported "
                "(use 'absolute' or 'sinusoidal'; relative position embeddings are not implemented)")
        require_choice(self, "norm_placement", ("post", "pre"))
        require_choice(self, "classifier_pooling", ("cls", "mean"))
        if self.problem_type is not None:
            require_choice(self, "problem_type", PROBLEM_TYPES)
        require_probabilities(self, ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"))
        require_positive_numbers(self, ("initializer_range", "layer_norm_eps"))
        require_token_ids(self, ("pad_token_id",))

    def parameter_count(self) -> int:
        """Parameters of the bare encoder (`BertModel` with its pooler), from the shape alone.

        A cheap formula, so that a config.json asking for an impossible model is refused before
        anything is allocated; equal to `BertModel(config).num_parameters()`.
        """
        h, i = self.hidden_size, self.intermediate_size
        positions = self.max_position_embeddings * h if self.position_embedding_type == "absolute" else 0
        embeddings = (self.vocab_size + self.type_vocab_size + self.entity_type_vocab_size) * h + positions + 2 * h
        final_norm = 2 * h if self.norm_placement == "pre" else 0
        return embeddings + self.num_hidden_layers * block_parameters(h, i) + final_norm + h * h + h

    @property
    def layer_field(self) -> str:
        """The config.json key that counts the Transformer layers."""
        return "num_hidden_layers"

    @property
    def shape_fields(self) -> tuple[str, ...]:
        """The config.json keys that decide the model's size (named when it is too large)."""
        return ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "max_position_embeddings")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # --- construction -------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> BertConfig:
        """A known size (tiny, mini, small, medium, base, large), with any field overridden."""
        if name not in PRESETS:
            raise ConfigError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
        layers, hidden, heads = PRESETS[name]
        values: dict[str, Any] = dict(num_hidden_layers=layers, hidden_size=hidden,
                                      num_attention_heads=heads, intermediate_size=4 * hidden)
        values.update(overrides)
        return cls.from_dict(values, source=f"preset {name!r}", strict=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config", strict: bool = False) -> BertConfig:
        """Build from a (Hugging Face) config dict.

        With `strict=False` (reading config.json) keys that transformers writes for other
        purposes are ignored; anything else unknown is still an error, so typos are caught.
        """
        data = dict(data)
        model_type = data.get("model_type", "bert")
        if model_type not in ("bert", None):
            raise ConfigError(f"{source}: model_type {model_type!r} is not a BERT model (expected 'bert')")
        if not strict:
            for key in list(data):
                if key in _IGNORED_HF_KEYS:
                    del data[key]
            data.pop("label2id", None)
        if data.get("position_embedding_type") in ("relative_key", "relative_key_query"):
            raise ConfigError(f"{source}: position_embedding_type {data['position_embedding_type']!r} "
                              "(relative positions) is not supported; use 'absolute' or 'sinusoidal'")
        if "id2label" in data and data["id2label"] is not None:
            data["id2label"] = {int(k): v for k, v in data["id2label"].items()}
        return load_model_config(cls, data, source)

    @classmethod
    def from_json_file(cls, path: str | Path) -> BertConfig:
        p = Path(path)
        return cls.from_dict(load_json_object(p), source=str(p))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> BertConfig:
        return cls.from_json_file(Path(directory) / "config.json")

    # --- output -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The config.json content: transformers' fields plus ours (transformers keeps extras)."""
        out = dataclasses.asdict(self)
        out["model_type"] = "bert"
        labels = self.id2label or {i: f"LABEL_{i}" for i in range(self.num_labels)}
        out["id2label"] = {str(i): name for i, name in labels.items()}
        out["label2id"] = {name: i for i, name in labels.items()}
        del out["num_labels"]  # transformers derives it from id2label
        if out["classifier_dropout"] is None:
            del out["classifier_dropout"]
        if out["problem_type"] is None:
            del out["problem_type"]
        if out["architectures"] is None:
            del out["architectures"]
        if not out["entity_type_vocab_size"]:  # a plain BERT's config.json stays as transformers writes it
            del out["entity_type_vocab_size"]
        return out

    def save_pretrained(self, directory: str | Path) -> None:
        atomic_write_json(Path(directory) / "config.json", self.to_dict())


def _nearest_divisor(hidden: int, heads: int) -> int:
    divisors = [d for d in range(1, hidden + 1) if hidden % d == 0]
    return min(divisors, key=lambda d: (abs(d - heads), d))
