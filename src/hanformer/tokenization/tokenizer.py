"""`Tokenizer`: the BERT WordPiece tokenizer every other part of hanformer calls.

It wraps a Hugging Face `tokenizers.Tokenizer` (the Rust engine: fast, parallel batches,
exact character offsets) and adds what a BERT project needs around it: the Hugging Face
folder layout both ways, per-call truncation/padding, tensors for models, special-token ids,
a vocabulary hash for data shards, and the optional Kiwi morpheme pre-tokenizer, which
cannot live in tokenizer.json and is re-attached on load from tokenizer_config.json.

The jobs around the class have their own modules: `folder.py` (reading/writing the folder),
`pipeline.py` (the stages over a vocabulary), `alignment.py` (offsets of text composed to NFC),
`call_settings.py` (per-call truncation/padding), `inputs.py` (argument checks, tensors) and
`encoding.py` (`Encoding`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, cast

import tokenizers

from hanformer.errors import InputError
from hanformer.tokenization.alignment import PairAlignment, TextInput, compose_pair, composing_form
from hanformer.tokenization.call_settings import (
    Padding,
    Truncation,
    check_length,
    engine_settings,
    padding_mode,
    run_engine,
    truncation_strategy,
)
from hanformer.tokenization.config import (
    BERT_SPECIAL_TOKENS,
    CLS,
    MASK,
    PAD,
    SEP,
    UNK,
    TokenizerConfig,
)
from hanformer.tokenization.encoding import Encoding
from hanformer.tokenization.folder import read_tokenizer_folder, write_tokenizer_folder
from hanformer.tokenization.inputs import as_id_list, as_tensors, batch_inputs, check_text
from hanformer.tokenization.model import CONTINUATION_PREFIX, check_special_tokens
from hanformer.tokenization.normalizer import decomposes_hangul
from hanformer.tokenization.pipeline import TokenizerParts, configured_parts
from hanformer.tokenization.pre_tokenizer import KiwiMorphemeSplitter, attach_morpheme_splitter
from hanformer.utils.hashing import hash_json

_CLEANUP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]


class Tokenizer:
    """BERT WordPiece tokenizer; see the module docstring. Build one with `from_pretrained`,
    `train_tokenizer`, or `Tokenizer.build(vocab, config)`.

    Safe to call from several threads at once: truncation and padding live on the engine, so
    each call sets them and encodes under one lock (uncontended, it costs well under a
    microsecond). Calls from threads therefore run one at a time; for throughput, batch
    instead (the engine itself parallelises `encode_batch`)."""

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        *,
        model_max_length: int = 512,
        morpheme_split: bool = False,
        unk_token: str = UNK,
        cls_token: str = CLS,
        sep_token: str = SEP,
        pad_token: str | None = PAD,
        mask_token: str | None = MASK,
        extra_special_tokens: Sequence[str] = (),
        settings: dict[str, Any] | None = None,
        source: str = "tokenizer",
    ) -> None:
        check_special_tokens(backend.get_vocab(with_added_tokens=True), [unk_token, cls_token, sep_token], source)
        # Truncation/padding are chosen per call; a saved default (e.g. a fixed 128) must not leak in.
        backend.no_truncation()
        backend.no_padding()
        self._base = backend  # serializable; what save_pretrained writes
        self.model_max_length = int(model_max_length)
        self.morpheme_split = bool(morpheme_split)
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.pad_token, self.mask_token = pad_token, mask_token
        self.extra_special_tokens = list(extra_special_tokens)
        self._settings = dict(settings or {})
        self._composition = composing_form(backend.normalizer)
        self._call_lock = threading.Lock()  # held from setting truncation/padding to the reset
        self._splitter: KiwiMorphemeSplitter | None = None
        if self.morpheme_split:
            self._splitter = KiwiMorphemeSplitter()
            self._backend = tokenizers.Tokenizer.from_str(backend.to_str())
            attach_morpheme_splitter(self._backend, self._splitter)
        else:
            self._backend = backend

    # ------------------------------------------------------------------ building and loading
    @classmethod
    def build(cls, vocab: dict[str, int], config: TokenizerConfig | None = None, *, source: str = "vocabulary",
              settings: dict[str, Any] | None = None) -> Tokenizer:
        """A tokenizer with our pipeline (NFC, no accent stripping, BERT split, WordPiece) over `vocab`."""
        return cls._from_parts(configured_parts(vocab, config or TokenizerConfig(), source, settings))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Load a Hugging Face tokenizer folder: ours, or any BERT one (tokenizer.json and/or vocab.txt).

        A foreign tokenizer.json is used exactly as written, so ids equal `BertTokenizerFast`'s
        (check `decomposes_hangul`: uncased English vocabularies turn Hangul into jamo).
        """
        return cls._from_parts(read_tokenizer_folder(path))

    @classmethod
    def _from_parts(cls, parts: TokenizerParts) -> Tokenizer:
        return cls(parts.backend, model_max_length=parts.model_max_length, morpheme_split=parts.morpheme_split,
                   unk_token=parts.unk_token, cls_token=parts.cls_token, sep_token=parts.sep_token,
                   pad_token=parts.pad_token, mask_token=parts.mask_token,
                   extra_special_tokens=parts.extra_special_tokens, settings=parts.settings, source=parts.source)

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json,
        each atomically, in the layout `transformers.BertTokenizerFast.from_pretrained` reads."""
        return write_tokenizer_folder(path, TokenizerParts(
            self._base, model_max_length=self.model_max_length, morpheme_split=self.morpheme_split,
            unk_token=self.unk_token, cls_token=self.cls_token, sep_token=self.sep_token, pad_token=self.pad_token,
            mask_token=self.mask_token, extra_special_tokens=self.extra_special_tokens, settings=self._settings))

    # ------------------------------------------------------------------ encoding
    def encode(self, text: TextInput, pair: TextInput | None = None, *, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: Truncation = False, padding: Padding = False,
               stride: int = 0, pad_to_multiple_of: int | None = None, is_split_into_words: bool = False) -> Encoding:
        """Encode one text (or a text pair). No truncation or padding unless asked for."""
        check_text(text, is_split_into_words, "text")
        if pair is not None:
            check_text(pair, is_split_into_words, "pair")
        (text, pair), alignments = compose_pair(text, pair, self._composition, is_split_into_words)
        specials = self._specials_added(pair is not None, add_special_tokens)
        with self._settings_for_call(max_length, truncation, padding, stride, pad_to_multiple_of, specials):
            enc = run_engine(lambda: self._backend.encode(text, pair, is_pretokenized=is_split_into_words,
                                                         add_special_tokens=add_special_tokens))
        return Encoding(enc, alignments)

    def encode_batch(self, texts: Sequence[TextInput], pairs: Sequence[TextInput] | None = None, *,
                     add_special_tokens: bool = True, max_length: int | None = None, truncation: Truncation = False,
                     padding: Padding = False, stride: int = 0, pad_to_multiple_of: int | None = None,
                     is_split_into_words: bool = False) -> list[Encoding]:
        """Encode many texts (or pairs) in parallel in the engine; same options as `encode`."""
        inputs, alignments = self._composed_batch(texts, pairs, is_split_into_words)
        specials = self._specials_added(pairs is not None, add_special_tokens)
        with self._settings_for_call(max_length, truncation, padding, stride, pad_to_multiple_of, specials):
            encs = run_engine(lambda: self._backend.encode_batch(inputs, is_pretokenized=is_split_into_words,
                                                                add_special_tokens=add_special_tokens))
        return [Encoding(e, a) for e, a in zip(encs, alignments, strict=True)]

    def __call__(self, texts: TextInput | Sequence[TextInput], pairs: TextInput | Sequence[TextInput] | None = None, *,
                 max_length: int | None = None, truncation: Truncation = True, padding: Padding = "longest",
                 return_tensors: Literal["pt", "np"] | None = "pt", add_special_tokens: bool = True,
                 return_offsets_mapping: bool = False, pad_to_multiple_of: int | None = None,
                 is_split_into_words: bool = False) -> dict[str, Any]:
        """Model inputs, as `transformers` returns them: `input_ids`, `token_type_ids`, `attention_mask`
        (and `offset_mapping` on request), as tensors of shape (batch, length).

        Unlike `encode`, the defaults suit a model: truncate to `model_max_length`, pad to the longest.
        A single text (or a list of words with `is_split_into_words`) gives a batch of one.
        """
        single = isinstance(texts, str) or (is_split_into_words and texts and isinstance(texts[0], str))
        # `single`: `texts` (and `pairs`) is one TextInput, which the isinstance checks cannot tell mypy
        batch: list[TextInput] = [cast(TextInput, texts)] if single else list(texts)
        pair_batch: list[TextInput] | None = (
            None if pairs is None else ([cast(TextInput, pairs)] if single else list(pairs)))
        specials = self._specials_added(pair_batch is not None, add_special_tokens)
        if return_offsets_mapping:
            inputs, alignments = self._composed_batch(batch, pair_batch, is_split_into_words)
        else:  # the ids are the same either way: the engine composes too, only its offsets are off
            inputs, alignments = batch_inputs(batch, pair_batch, is_split_into_words), [None] * len(batch)
        with self._settings_for_call(max_length, truncation, padding, 0, pad_to_multiple_of, specials):
            if return_offsets_mapping:
                run = self._backend.encode_batch
            else:  # skips offset tracking: the fast path for training and inference
                run = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)
            encs = run_engine(lambda: run(inputs, is_pretokenized=is_split_into_words,
                                         add_special_tokens=add_special_tokens))
        out: dict[str, Any] = {
            "input_ids": [e.ids for e in encs],
            "token_type_ids": [e.type_ids for e in encs],
            "attention_mask": [e.attention_mask for e in encs],
        }
        if return_offsets_mapping:
            out["offset_mapping"] = [Encoding(e, a).offsets for e, a in zip(encs, alignments, strict=True)]
        return as_tensors(out, return_tensors)

    def tokenize(self, text: str, pair: str | None = None) -> list[str]:
        """The word pieces of `text`, without special tokens."""
        return self.encode(text, pair, add_special_tokens=False).tokens

    def decode(self, ids: Any, skip_special_tokens: bool = True, clean_up_tokenization_spaces: bool = True) -> str:
        """Token ids (a list, a tensor, or an Encoding) back to text: `##` pieces are joined to
        their word; spaces before punctuation are removed unless `clean_up_tokenization_spaces=False`."""
        ids = as_id_list(ids)
        if ids and (min(ids) < 0 or max(ids) >= self.vocab_size):
            bad = next(i for i in ids if i < 0 or i >= self.vocab_size)
            raise InputError(f"token id {bad} is outside the vocabulary (0..{self.vocab_size - 1})")
        text = self._backend.decode(ids, skip_special_tokens=skip_special_tokens)
        if clean_up_tokenization_spaces:
            for dirty, clean in _CLEANUP:
                text = text.replace(dirty, clean)
        return text

    def decode_batch(self, batch: Any, skip_special_tokens: bool = True,
                     clean_up_tokenization_spaces: bool = True) -> list[str]:
        rows = batch.tolist() if hasattr(batch, "tolist") else batch
        return [self.decode(r, skip_special_tokens, clean_up_tokenization_spaces) for r in rows]

    # ------------------------------------------------------------------ vocabulary
    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        if isinstance(ids, int):
            return self._id_to_token(ids)
        return [self._id_to_token(i) for i in as_id_list(ids)]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Unknown tokens map to the [UNK] id, as in `transformers`."""
        if isinstance(tokens, str):
            tid = self._backend.token_to_id(tokens)
            return self.unk_token_id if tid is None else tid
        return [self.convert_tokens_to_ids(t) for t in tokens]  # type: ignore[misc]

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    @cached_property
    def vocab_hash(self) -> str:
        """Hash of everything that decides the ids of a text: the vocabulary in id order, the
        normalizer, the pre-tokenizer and the morpheme option. Token shards store it so data made
        with another tokenizer is detected."""
        spec = json.loads(self._base.to_str())
        vocab = self._base.get_vocab(with_added_tokens=True)
        return hash_json({
            "vocab": sorted(vocab, key=vocab.__getitem__),
            "normalizer": spec.get("normalizer"),
            "pre_tokenizer": spec.get("pre_tokenizer"),
            "max_input_chars_per_word": spec.get("model", {}).get("max_input_chars_per_word"),
            "morpheme_split": self.morpheme_split,
        })

    @property
    def settings(self) -> dict[str, Any]:
        """hanformer's own record in tokenizer_config.json: the training config and facts
        (files, bytes, lines, seconds) for trained tokenizers; empty for foreign ones."""
        return dict(self._settings)

    @property
    def backend(self) -> tokenizers.Tokenizer:
        """The `tokenizers.Tokenizer` that does the work (with Kiwi attached when enabled)."""
        return self._backend

    @property
    def decomposes_hangul(self) -> bool:
        """True when this tokenizer's normalizer splits Hangul into jamo (an uncased English BERT)."""
        return decomposes_hangul(self._base.normalizer)

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self._backend.token_to_id(token)

    pad_token_id = property(lambda self: self._id(self.pad_token))
    unk_token_id = property(lambda self: self._id(self.unk_token))
    cls_token_id = property(lambda self: self._id(self.cls_token))
    sep_token_id = property(lambda self: self._id(self.sep_token))
    mask_token_id = property(lambda self: self._id(self.mask_token))

    @property
    def all_special_tokens(self) -> list[str]:
        named = [self.pad_token, self.unk_token, self.cls_token, self.sep_token, self.mask_token]
        return [t for t in named if t] + [t for t in self.extra_special_tokens if t not in named]

    @property
    def all_special_ids(self) -> list[int]:
        return [i for i in (self._id(t) for t in self.all_special_tokens) if i is not None]

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens encoding adds to one text (or pair): 2 (3) for BERT's frame."""
        processor = self._backend.post_processor
        return 0 if processor is None else int(processor.num_special_tokens_to_add(pair))

    def __getstate__(self) -> dict[str, Any]:
        # A lock cannot be pickled (spawned DataLoader workers pickle the tokenizer); each copy gets its own.
        return {k: v for k, v in self.__dict__.items() if k != "_call_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._call_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Tokenizer(vocab_size={self.vocab_size}, model_max_length={self.model_max_length}, "
                f"morpheme_split={self.morpheme_split})")

    # ------------------------------------------------------------------ internals
    def _id_to_token(self, i: int) -> str:
        tok = self._backend.id_to_token(int(i))
        if tok is None:
            raise InputError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
        return tok

    def _composed_batch(self, texts: Sequence[TextInput], pairs: Sequence[TextInput] | None, split: bool,
                        ) -> tuple[list[Any], list[PairAlignment]]:
        inputs = batch_inputs(texts, pairs, split)
        if self._composition is None:
            return inputs, [None] * len(inputs)
        composed, alignments = [], []
        for item in inputs:
            text, pair = item if pairs is not None else (item, None)
            (text, pair), alignment = compose_pair(text, pair, self._composition, split)
            composed.append((text, pair) if pairs is not None else text)
            alignments.append(alignment)
        return composed, alignments

    @contextlib.contextmanager
    def _settings_for_call(self, max_length: int | None, truncation: Truncation, padding: Padding,
                           stride: int, pad_to_multiple_of: int | None, specials: int = 0) -> Iterator[None]:
        """Set the engine's truncation/padding for one call and always reset them afterwards,
        holding the instance's lock throughout so no other thread's call sees these settings.
        `specials`: how many special tokens each sequence gets, the least a truncation length can be."""
        strategy, pad_mode = truncation_strategy(truncation), padding_mode(padding)
        length = self.model_max_length if max_length is None else int(max_length)
        check_length(length, strategy, pad_mode, specials, f"{self.cls_token}, {self.sep_token}")
        with self._call_lock, engine_settings(self._backend, strategy, pad_mode, length, stride, pad_to_multiple_of,
                                              self.pad_token_id, self.pad_token):
            yield

    def _specials_added(self, pair: bool, add_special_tokens: bool) -> int:
        return self.num_special_tokens_to_add(pair) if add_special_tokens else 0


__all__ = ["Encoding", "Tokenizer", "BERT_SPECIAL_TOKENS", "CONTINUATION_PREFIX"]
