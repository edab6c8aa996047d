"""Sentences in, translations out: `translate(model, sentences)` over `decode_encoder_decoder`.

This layer owns what needs the tokenizer: each source is its pieces + EOS (as Marian encodes
it), cut to the model's positions with a warning when longer; sources are batched by length (so
a batch pads little), right-padded, translated and put back in the input's order; the output ids
are cut at EOS and decoded to text. An empty (or blank) source gives an empty translation
without running the model, so line N of the output is always the translation of line N.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from hanformer.data.padding import pad_rows, padding_mask_of
from hanformer.errors import CheckpointError, ConfigError, InputError
from hanformer.generation.config import GenerationConfig
from hanformer.generation.search import decode_encoder_decoder
from hanformer.generation.translate_config import TranslateConfig
from hanformer.models.checkpoint import load_model
from hanformer.models.hf_cache import locate_model
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.config import load_config

log = logging.getLogger("hanformer.generation")


@runtime_checkable
class TranslationModel(Protocol):
    """What translation needs of a model (`TransformerForSeq2SeqLM`, `RNNForSeq2SeqLM`): an
    encoder, a decoder called as `decode_encoder_decoder` calls it, an output projection onto the
    target vocabulary (a bare encoder–decoder has none), and a config with max_position_embeddings,
    pad_token_id, eos_token_id and start_token_id."""

    config: Any

    def get_encoder(self) -> Any: ...

    def output_weight(self) -> torch.Tensor: ...

    def eval(self) -> Any: ...  # a torch module


@dataclasses.dataclass
class Translation:
    source: str
    text: str
    """The translation, detokenized (special tokens dropped)."""
    token_ids: list[int]
    """The generated ids (ending with EOS when the model ended the translation)."""
    finish_reason: str
    """'eos' (the model ended it), 'length' (max_length or the model's positions), 'empty' (empty source)."""
    score: float | None
    """Beam search: the length-penalised log-probability; None for greedy and empty sources."""
    source_tokens: int
    """Source length in tokens after any truncation (EOS included)."""


def load_translator(model_dir: str | Path) -> tuple[TranslationModel, Tokenizer]:
    """A translation model folder (config.json, model.safetensors, tokenizer.json) -> (model in
    eval mode, its tokenizer)."""
    try:
        folder = locate_model(model_dir)
    except CheckpointError as e:
        raise InputError(f"{e.message}; pass the folder of a translation model (config.json, "
                         "model.safetensors, tokenizer.json)") from None
    if not folder.is_dir():
        raise InputError(f"{folder} is a file; pass the folder of a translation model")
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder}: no config.json, so not a model folder; pass the folder a translation "
                         "model was saved to")
    model = load_model(folder)  # the registry knows both kinds (Marian layout and the recurrent one)
    if not isinstance(model, TranslationModel):
        raise InputError(f"{folder}: a {type(model).__name__} checkpoint cannot translate; translation needs an "
                         "encoder-decoder model (MarianMTModel layout, or a recurrent one from "
                         "`hanformer translation train`)")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise InputError(f"{folder}: no tokenizer.json; save the tokenizer the model was trained with into this "
                         "folder (tokenizer.save_pretrained(folder))")
    return model.eval(), Tokenizer.from_pretrained(folder)


def encode_sources(tokenizer: Tokenizer, sentences: Sequence[str], eos_token_id: int, max_positions: int) -> list[list[int]]:
    """Source ids: pieces + EOS, cut to `max_positions` with a warning; [] for a blank sentence."""
    out: list[list[int]] = []
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise InputError(f"sentence {i + 1} is a {type(sentence).__name__}, expected text")
        if not sentence.strip():
            out.append([])
            continue
        ids = tokenizer.encode(sentence, add_special_tokens=False).ids
        if len(ids) + 1 > max_positions:
            log.warning("sentence %d has %d tokens; keeping its first %d (the model reads %d positions)",
                        i + 1, len(ids) + 1, max_positions - 1, max_positions)
            ids = ids[:max_positions - 1]
        out.append([*ids, eos_token_id])
    return out


def translate(model: Any, sentences: str | Sequence[str], config: TranslateConfig | None = None, *,
              tokenizer: Tokenizer | None = None, **settings: Any) -> list[Translation]:
    """Translate each sentence with an encoder–decoder model.

    `model` is a model folder or a loaded `TransformerForSeq2SeqLM` / `RNNForSeq2SeqLM` (then
    pass `tokenizer`).
    Settings come from `config` and/or keyword overrides (`num_beams=5, batch_size=16`).
    Returns `num_return_sequences` translations per sentence, sentence by sentence, best first.
    """
    if isinstance(model, (str, Path)):
        model, loaded_tokenizer = load_translator(model)
        tokenizer = tokenizer or loaded_tokenizer
    if tokenizer is None:
        raise ConfigError("translate: pass the tokenizer along with a loaded model (or pass a model folder)")
    values = dataclasses.asdict(config) if config is not None else {}
    config = load_config(TranslateConfig, {**values, **settings}, "translate")
    if isinstance(sentences, str):
        sentences = [sentences]
    model_config = model.config
    positions = model_config.max_position_embeddings
    sources = encode_sources(tokenizer, sentences, model_config.eos_token_id, positions)
    generation = config.generation(positions - 1)  # the decoder start token takes one position
    per = config.num_return_sequences
    results: list[Translation | None] = [None] * (len(sentences) * per)
    for i, ids in enumerate(sources):
        if not ids:
            for k in range(per):
                results[i * per + k] = Translation(sentences[i], "", [], "empty", None, 0)
    order = sorted((i for i, ids in enumerate(sources) if ids), key=lambda i: len(sources[i]))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            for row, translation in zip(_rows_of(rows, per), _translate_batch(
                    model, tokenizer, [sources[i] for i in rows], generation), strict=True):
                i = row // per
                results[row] = dataclasses.replace(translation, source=sentences[i])
    finally:
        model.train(was_training)
    return [r for r in results if r is not None]


def _rows_of(sentences: list[int], per: int) -> list[int]:
    return [i * per + k for i in sentences for k in range(per)]


def _translate_batch(model: Any, tokenizer: Tokenizer, sources: list[list[int]],
                     generation: GenerationConfig) -> list[Translation]:
    config = model.config
    input_ids = pad_rows(sources, config.pad_token_id, device=model.device)
    mask = padding_mask_of(sources, device=model.device)
    out = decode_encoder_decoder(model, input_ids, mask, generation, decoder_start_token_id=config.start_token_id,
                                 eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id)
    scores = out.sequence_scores.tolist() if out.sequence_scores is not None else None
    per = generation.num_return_sequences
    results = []
    for row, sequence in enumerate(out.sequences[:, out.prompt_length:].tolist()):
        reason = "length"
        if config.eos_token_id in sequence:
            sequence = sequence[:sequence.index(config.eos_token_id) + 1]
            reason = "eos"
        text = tokenizer.decode(sequence, skip_special_tokens=True)
        results.append(Translation("", text, sequence, reason, scores[row] if scores is not None else None,
                                   len(sources[row // per])))
    return results
