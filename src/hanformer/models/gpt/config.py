"""GPTConfig: the shape of a GPT model, in Hugging Face GPT-2 `config.json` field names
(`n_embd`, `n_layer`, ...), so a config.json moves to and from `transformers.GPT2Config` unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

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
    take_hf_fields,
)
from hanformer.utils.config import load_json_object, setting
from hanformer.utils.files import atomic_write_json

# name -> (layers, hidden, heads); the feed-forward is 4 x hidden. The small sizes are BERT's
# presets of the same name, so the two objectives can be compared at equal size.
PRESETS: dict[str, tuple[int, int, int]] = {
    **{name: SIZE_PRESETS[name] for name in ("tiny", "mini", "small", "medium")},
    "gpt2-small": (12, 768, 12),
}

# config.json keys transformers writes that describe nothing we model; read and dropped.
_IGNORED_HF_KEYS = {
    "_name_or_path", "transformers_version", "torch_dtype", "dtype", "use_cache", "model_type",
    "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels",
    "summary_first_dropout", "reorder_and_upcast_attn", "return_dict", "output_hidden_states",
    "output_attentions", "chunk_size_feed_forward", "is_encoder_decoder", "id2label", "label2id",
    "problem_type", "n_ctx", "task_specific_params", "tokenizer_class", "gradient_checkpointing",
}
# GPT-2 options that change the maths; we implement only their default value.
_REQUIRED_HF_VALUES = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
                       "add_cross_attention": False, "tie_word_embeddings": True}


@dataclasses.dataclass
class GPTConfig:
    vocab_size: int = setting(50257, "number of token ids (must match the tokenizer's vocabulary)")
    n_positions: int = setting(1024, "context window: the longest sequence the model reads, in tokens")
    n_embd: int = setting(768, "width of every token vector")
    n_layer: int = setting(12, "number of stacked Transformer layers")
    n_head: int = setting(12, "attention heads per layer (n_embd must divide evenly)")
    n_inner: int | None = setting(None, "inner width of the feed-forward network (default 4 x n_embd)")
    activation_function: str = setting("gelu_new", f"feed-forward activation: {', '.join(ACTIVATIONS)}")
    resid_pdrop: float = setting(0.1, "dropout on sub-layer outputs")
    embd_pdrop: float = setting(0.1, "dropout on the summed embeddings")
    attn_pdrop: float = setting(0.1, "dropout on attention probabilities")
    layer_norm_epsilon: float = setting(1e-5, "epsilon of every LayerNorm")
    initializer_range: float = setting(0.02, "std of the normal init of weights")
    bos_token_id: int | None = setting(None, "token a text starts from when the prompt is empty")
    eos_token_id: int | None = setting(None, "token that separates documents and ends generation")
    pad_token_id: int | None = setting(None, "token used to left-pad prompts in a batch (default: eos)")
    architectures: list[str] | None = setting(None, "model classes this checkpoint was saved from")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject shapes that cannot work, naming the field and the fix."""
        require_positive_ints(self, ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"))
        if self.n_inner is not None:
            require_positive_ints(self, ("n_inner",))
        if self.n_embd % self.n_head:
            raise ConfigError(f"GPTConfig: n_embd {self.n_embd} is not divisible by n_head {self.n_head} "
                              "(each head gets n_embd / n_head dimensions)")
        require_choice(self, "activation_function", ACTIVATIONS)
        require_probabilities(self, ("resid_pdrop", "embd_pdrop", "attn_pdrop"))
        require_positive_numbers(self, ("layer_norm_epsilon", "initializer_range"))
        require_token_ids(self, ("bos_token_id", "eos_token_id", "pad_token_id"))

    def parameter_count(self) -> int:
        """Parameters of the model (the head is tied, so it adds none), from the shape alone;
        equal to `GPTForCausalLM(config).num_parameters()`."""
        h = self.n_embd
        embeddings = (self.vocab_size + self.n_positions) * h
        return embeddings + self.n_layer * block_parameters(h, self.intermediate_size) + 2 * h

    @property
    def layer_field(self) -> str:
        """The config.json key that counts the Transformer layers."""
        return "n_layer"

    @property
    def shape_fields(self) -> tuple[str, ...]:
        """The config.json keys that decide the model's size (named when it is too large)."""
        return ("vocab_size", "n_embd", "n_layer", "n_inner", "n_positions")

    @property
    def intermediate_size(self) -> int:
        return self.n_inner or 4 * self.n_embd

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """A known size (tiny, mini, small, medium, gpt2-small), with any field overridden."""
        if name not in PRESETS:
            raise ConfigError(f"unknown GPT preset {name!r}; choose one of {', '.join(PRESETS)}")
        layers, hidden, heads = PRESETS[name]
        values: dict[str, Any] = dict(n_layer=layers, n_embd=hidden, n_head=heads)
        values.update(overrides)
        return cls.from_dict(values, source=f"preset {name!r}", strict=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config", strict: bool = False) -> GPTConfig:
        """Build from a (Hugging Face GPT-2) config dict; unknown keys are errors unless transformers writes them."""
        data = dict(data)
        model_type = data.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise ConfigError(f"{source}: model_type {model_type!r} is not a GPT-2 style model (expected 'gpt2')")
        take_hf_fields(data, source, required=_REQUIRED_HF_VALUES, ignored=_IGNORED_HF_KEYS, strict=strict)
        return load_model_config(cls, data, source)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> GPTConfig:
        p = Path(directory) / "config.json"
        return cls.from_dict(load_json_object(p), source=str(p))

    def to_dict(self) -> dict[str, Any]:
        """The config.json content, readable by `transformers.GPT2Config`."""
        out = dataclasses.asdict(self)
        if out["architectures"] is None:
            del out["architectures"]
        out.update(model_type="gpt2", tie_word_embeddings=True, scale_attn_weights=True)
        return out

    def save_pretrained(self, directory: str | Path) -> None:
        atomic_write_json(Path(directory) / "config.json", self.to_dict())
