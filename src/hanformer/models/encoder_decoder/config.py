"""TransformerConfig: the shape of an encoder–decoder Transformer, in Marian `config.json` names.

The defaults are the choices of "Attention Is All You Need": post-LN, sinusoidal positions,
dropout 0.1, ReLU, one vocabulary for source and target whose embedding matrix is shared by the
encoder, the decoder and the output projection (three-way tying), token embeddings scaled by
sqrt(d_model). Field names are those of `transformers.MarianConfig` (Marian NMT is this
architecture), so a `config.json` moves both ways; `norm_placement`, `position_embedding_type`,
`layer_norm_eps` and `label_smoothing` are ours and `normalize_embedding` is older BART configs'
(transformers' Marian keeps and ignores them, so only post-LN models with eps 1e-5 and no
embedding LayerNorm compute alike there; learned positions load fine, as Marian's
position table is an ordinary tensor).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from hanformer.errors import ConfigError
from hanformer.models.common.config import (
    ACTIVATIONS,
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

MODEL_TYPE = "marian"

# name -> (layers per side, d_model, heads, feed-forward width). "base" is the paper's base model.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 128, 2, 512),
    "mini": (3, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "base": (6, 512, 8, 2048),
}

# config.json keys transformers writes that describe nothing we model; read and dropped.
# Generation settings stored there (num_beams, max_length, bad_words_ids) are not applied.
_IGNORED_HF_KEYS = {
    "_name_or_path", "transformers_version", "torch_dtype", "dtype", "use_cache", "model_type",
    "is_encoder_decoder", "is_decoder", "return_dict", "output_hidden_states", "output_attentions",
    "id2label", "label2id", "num_labels", "problem_type", "classifier_dropout", "num_hidden_layers",
    "gradient_checkpointing", "chunk_size_feed_forward", "tokenizer_class", "task_specific_params",
    "num_beams", "max_length", "bad_words_ids", "extra_pos_embeddings", "tie_encoder_decoder",
}
# Options of older Marian/BART configs that change the maths; we implement only these values.
# (The layer drops and the activation dropout only act in training.)
_REQUIRED_HF_VALUES: dict[str, Any] = {
    "normalize_before": False, "static_position_embeddings": True,
    "add_final_layer_norm": False, "add_bias_logits": False, "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0,
}


@dataclasses.dataclass
class TransformerConfig:
    vocab_size: int = setting(32000, "number of source token ids (and target ids when the vocabulary is shared)")
    decoder_vocab_size: int | None = setting(
        None, "number of target token ids (default vocab_size; must equal it when embeddings are shared)")
    max_position_embeddings: int = setting(512, "longest source or target sequence, in tokens")
    d_model: int = setting(512, "width of every token vector")
    encoder_layers: int = setting(6, "number of encoder layers")
    decoder_layers: int = setting(6, "number of decoder layers")
    encoder_attention_heads: int = setting(8, "attention heads per encoder layer (d_model must divide evenly)")
    decoder_attention_heads: int = setting(8, "attention heads per decoder layer (d_model must divide evenly)")
    encoder_ffn_dim: int = setting(2048, "inner width of the encoder's feed-forward networks")
    decoder_ffn_dim: int = setting(2048, "inner width of the decoder's feed-forward networks")
    activation_function: str = setting("relu", f"feed-forward activation: {', '.join(ACTIVATIONS)}")
    dropout: float = setting(0.1, "dropout on the summed embeddings and on every sub-layer output")
    attention_dropout: float = setting(0.0, "dropout on attention probabilities")
    scale_embedding: bool = setting(True, "multiply token embeddings by sqrt(d_model) (the paper's choice)")
    share_encoder_decoder_embeddings: bool = setting(True, "one embedding matrix for source and target tokens")
    tie_word_embeddings: bool = setting(True, "the output projection is the (target) token embedding matrix")
    norm_placement: Literal["post", "pre"] = setting(
        "post", "LayerNorm after each residual add (the paper) or before each sub-layer plus a final one")
    position_embedding_type: Literal["sinusoidal", "learned"] = setting(
        "sinusoidal", "fixed sine/cosine positions (the paper) or a learned table")
    normalize_embedding: bool = setting(
        False, "a LayerNorm on the summed token and position embeddings of each stack (as BERT and BART have; "
        "an encoder started from a BERT needs it); transformers' Marian has no such layer")
    layer_norm_eps: float = setting(1e-5, "epsilon of every LayerNorm")
    init_std: float = setting(0.02, "std of the normal init of the projection weights")
    label_smoothing: float = setting(0.1, "label smoothing of the training loss (0 = plain cross-entropy)")
    pad_token_id: int = setting(0, "id of the padding token")
    eos_token_id: int = setting(2, "token that ends a source sentence and a translation")
    bos_token_id: int | None = setting(None, "beginning-of-sentence token, if the vocabulary has one")
    decoder_start_token_id: int | None = setting(None, "first decoder input (default: pad_token_id, as Marian)")
    forced_eos_token_id: int | None = setting(None, "recorded for transformers; hanformer does not force EOS")
    architectures: list[str] | None = setting(None, "model classes this checkpoint was saved from")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject shapes that cannot work, naming the field and the fix."""
        require_positive_ints(self, ("vocab_size", "max_position_embeddings", "d_model", "encoder_layers",
                                     "decoder_layers", "encoder_attention_heads", "decoder_attention_heads",
                                     "encoder_ffn_dim", "decoder_ffn_dim"))
        if self.decoder_vocab_size is not None:
            require_positive_ints(self, ("decoder_vocab_size",))
            if self.share_encoder_decoder_embeddings and self.decoder_vocab_size != self.vocab_size:
                raise ConfigError(f"TransformerConfig: decoder_vocab_size {self.decoder_vocab_size} differs from "
                                  f"vocab_size {self.vocab_size}, but share_encoder_decoder_embeddings is true; "
                                  "use one vocabulary or set it to false")
        for side in ("encoder", "decoder"):
            heads = getattr(self, f"{side}_attention_heads")
            if self.d_model % heads:
                raise ConfigError(f"TransformerConfig: d_model {self.d_model} is not divisible by "
                                  f"{side}_attention_heads {heads} (each head gets d_model / heads dimensions)")
        require_choice(self, "activation_function", ACTIVATIONS)
        require_choice(self, "norm_placement", ("post", "pre"))
        require_choice(self, "position_embedding_type", ("sinusoidal", "learned"))
        require_probabilities(self, ("dropout", "attention_dropout", "label_smoothing"))
        require_positive_numbers(self, ("layer_norm_eps", "init_std"))
        require_token_ids(self, ("pad_token_id", "eos_token_id", "bos_token_id", "decoder_start_token_id",
                                 "forced_eos_token_id"))

    @property
    def target_vocab_size(self) -> int:
        return self.decoder_vocab_size or self.vocab_size

    @property
    def start_token_id(self) -> int:
        """The first decoder input of every translation."""
        return self.pad_token_id if self.decoder_start_token_id is None else self.decoder_start_token_id

    def parameter_count(self) -> int:
        """Parameters of the model (tied matrices counted once), from the shape alone; equal to
        `TransformerForSeq2SeqLM(config).num_parameters()`."""
        d = self.d_model
        embeddings = self.vocab_size * d
        if not self.share_encoder_decoder_embeddings:
            embeddings += self.target_vocab_size * d
        if not self.tie_word_embeddings:
            embeddings += self.target_vocab_size * d
        if self.position_embedding_type == "learned":
            embeddings += 2 * self.max_position_embeddings * d
        encoder = self.encoder_layers * block_parameters(d, self.encoder_ffn_dim)
        cross = 4 * d * d + 4 * d + 2 * d  # query, key/value, output projections + their LayerNorm
        decoder = self.decoder_layers * (block_parameters(d, self.decoder_ffn_dim) + cross)
        final_norms = 4 * d if self.norm_placement == "pre" else 0
        embedding_norms = 4 * d if self.normalize_embedding else 0
        return embeddings + encoder + decoder + final_norms + embedding_norms

    @property
    def layer_field(self) -> str:
        """The config.json key that counts the encoder layers (the decoder's is checked beside it)."""
        return "encoder_layers"

    @property
    def shape_fields(self) -> tuple[str, ...]:
        """The config.json keys that decide the model's size (named when it is too large)."""
        return ("vocab_size", "decoder_vocab_size", "d_model", "encoder_layers", "decoder_layers",
                "encoder_ffn_dim", "decoder_ffn_dim", "max_position_embeddings")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TransformerConfig:
        """A known size (tiny, mini, small, base), with any field overridden."""
        if name not in PRESETS:
            raise ConfigError(f"unknown Transformer preset {name!r}; choose one of {', '.join(PRESETS)}")
        layers, d_model, heads, ffn = PRESETS[name]
        values: dict[str, Any] = dict(encoder_layers=layers, decoder_layers=layers, d_model=d_model,
                                      encoder_attention_heads=heads, decoder_attention_heads=heads,
                                      encoder_ffn_dim=ffn, decoder_ffn_dim=ffn)
        values.update(overrides)
        return cls.from_dict(values, source=f"preset {name!r}", strict=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config", strict: bool = False) -> TransformerConfig:
        """Build from a (Marian) config dict; unknown keys are errors unless transformers writes them."""
        data = dict(data)
        model_type = data.get("model_type", MODEL_TYPE)
        if model_type != MODEL_TYPE:
            raise ConfigError(f"{source}: model_type {model_type!r} is not an encoder-decoder Transformer "
                              f"(expected {MODEL_TYPE!r})")
        take_hf_fields(data, source, required=_REQUIRED_HF_VALUES, ignored=_IGNORED_HF_KEYS, strict=strict)
        return load_model_config(cls, data, source)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> TransformerConfig:
        p = Path(directory) / "config.json"
        return cls.from_dict(load_json_object(p), source=str(p))

    def to_dict(self) -> dict[str, Any]:
        """The config.json content, readable by `transformers.MarianConfig`."""
        out = dataclasses.asdict(self)
        if out["architectures"] is None:
            del out["architectures"]
        # Marian's defaults differ from ours (decoder start 58100, forced EOS 0): always write them.
        out.update(model_type=MODEL_TYPE, is_encoder_decoder=True, decoder_vocab_size=self.target_vocab_size,
                   decoder_start_token_id=self.start_token_id)
        return out

    def save_pretrained(self, directory: str | Path) -> None:
        atomic_write_json(Path(directory) / "config.json", self.to_dict())
