"""`Tokenizer`: the BERT WordPiece tokenizer every other part of hanformer calls.

It wraps a Hugging Face `tokenizers.Tokenizer` (the Rust engine: fast, parallel batches,
exact character offsets) and adds what a BERT project needs around it: the Hugging Face
folder layout both ways, per-call truncation/padding, tensors for models, special-token ids,
a vocabulary hash for data shards, and the optional Kiwi morpheme pre-tokenizer, which
cannot live in tokenizer.json and is re-attached on load from tokenizer_config.json.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, cast

import tokenizers
from tokenizers import AddedToken, normalizers

from hanformer.errors import ConfigError, InputError
from hanformer.tokenization.config import (
    BERT_SPECIAL_TOKENS,
    CLS,
    MASK,
    PAD,
    SEP,
    UNK,
    TokenizerConfig,
)
from hanformer.tokenization.hf_file import resolve_special_tokens, tokenizer_class
from hanformer.tokenization.model import (
    CONTINUATION_PREFIX,
    build_wordpiece,
    check_special_tokens,
    read_vocab_txt,
    write_vocab_txt,
)
from hanformer.tokenization.normalizer import build_normalizer, decomposes_hangul
from hanformer.tokenization.post_processor import build_decoder, build_post_processor
from hanformer.tokenization.pre_tokenizer import (
    KiwiMorphemeSplitter,
    attach_morpheme_splitter,
    build_pre_tokenizer,
)
from hanformer.utils.config import config_to_dict, load_config
from hanformer.utils.files import atomic_write, atomic_write_json
from hanformer.utils.hashing import hash_json

log = logging.getLogger("hanformer.tokenization")

TextInput = str | Sequence[str]  # a text, or a list of words with is_split_into_words=True
Truncation = bool | Literal["longest_first", "only_first", "only_second", "do_not_truncate"] | None
Padding = bool | Literal["longest", "max_length", "do_not_pad"] | None
ComposingForm = Literal["NFC", "NFKC"]  # the normal forms that compose (what offsets must undo)

_CLEANUP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]


class Alignment:
    """Character positions of a text composed in Python (NFC/NFKC) -> spans of the text the caller
    passed. The engine's composition keeps only the first original character of each composed one
    (NFD `한` = 3 jamo -> offsets (0, 1)), so texts not already in the normalizer's form are composed
    here, where every composed character keeps the span of the characters it came from."""

    __slots__ = ("_starts", "_ends", "_to_composed", "length")

    def __init__(self, starts: list[int], ends: list[int], to_composed: list[int], length: int) -> None:
        self._starts, self._ends, self._to_composed, self.length = starts, ends, to_composed, length

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of composed characters `start:end`."""
        if end > start:
            return self._starts[start], self._ends[end - 1]
        at = self._starts[start] if start < len(self._starts) else self.length
        return at, at

    def composed_index(self, original_index: int) -> int:
        return self._to_composed[original_index] if 0 <= original_index < self.length else original_index


# What one sequence's offsets need: nothing (already in normal form), one Alignment (a text), or
# one per word (with is_split_into_words, whose offsets the engine counts within each word).
SequenceAlignment = Alignment | list[Alignment | None] | None


class Encoding:
    """One encoded text or text pair: a thin, lazy view of the engine's encoding.

    `offsets` are (start, end) character positions in the *original* text of the sequence the
    token came from ((0, 0) for special tokens); `word_ids` number the pre-tokenized words of each
    sequence (None for special tokens); `sequence_ids` say which sequence (0 or 1) a token belongs to.
    """

    __slots__ = ("_enc", "_alignments")

    def __init__(self, encoding: tokenizers.Encoding,
                 alignments: tuple[SequenceAlignment, SequenceAlignment] | None = None) -> None:
        self._enc = encoding
        self._alignments = alignments  # None: the engine's offsets index the caller's texts already

    ids = property(lambda self: self._enc.ids, doc="token ids")
    tokens = property(lambda self: self._enc.tokens, doc="token strings")
    type_ids = property(lambda self: self._enc.type_ids, doc="segment ids: 0 for A, 1 for B")
    attention_mask = property(lambda self: self._enc.attention_mask, doc="1 for real tokens, 0 for padding")
    word_ids = property(lambda self: self._enc.word_ids, doc="word index of each token (None for specials)")
    sequence_ids = property(lambda self: self._enc.sequence_ids, doc="0/1 sequence of each token (None for specials)")
    special_tokens_mask = property(lambda self: self._enc.special_tokens_mask, doc="1 for special tokens")

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """(start, end) character spans in the input text."""
        engine = self._enc.offsets
        if self._alignments is None:
            return engine
        sequences, words = self._enc.sequence_ids, self._enc.word_ids
        return [self._original_span(span, seq, word) for span, seq, word in zip(engine, sequences, words, strict=True)]

    @property
    def overflowing(self) -> list[Encoding]:
        """The windows cut off by truncation (with `stride` tokens of overlap), for long inputs."""
        return [Encoding(e, self._alignments) for e in self._enc.overflowing]

    def char_to_token(self, char_index: int, sequence_index: int = 0) -> int | None:
        alignment = self._alignments[sequence_index] if self._alignments else None
        if isinstance(alignment, Alignment):
            char_index = alignment.composed_index(char_index)
        return self._enc.char_to_token(char_index, sequence_index)

    def token_to_chars(self, token_index: int) -> tuple[int, int] | None:
        chars = self._enc.token_to_chars(token_index)
        if chars is None or self._alignments is None:
            return chars
        return self.offsets[token_index]

    def _original_span(self, span: tuple[int, int], sequence: int | None, word: int | None) -> tuple[int, int]:
        if sequence is None:  # a special token
            return span
        alignment = self._alignments[sequence]  # type: ignore[index]
        if isinstance(alignment, list):
            alignment = alignment[word] if word is not None else None
        return span if alignment is None else alignment.span(*span)

    def __len__(self) -> int:
        return len(self._enc.ids)

    def __repr__(self) -> str:
        return f"Encoding(tokens={self.tokens!r})"


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
        self._composition = _composing_form(backend.normalizer)
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
        config = config or TokenizerConfig()
        check_special_tokens(vocab, [UNK, CLS, SEP], source)
        backend = _assemble(vocab, build_normalizer(config), config.special_tokens, config.max_input_chars_per_word)
        return cls(backend, model_max_length=config.model_max_length, morpheme_split=config.morpheme_split,
                   extra_special_tokens=config.extra_special_tokens,
                   settings={"config": config_to_dict(config), **(settings or {})}, source=source)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Load a Hugging Face tokenizer folder: ours, or any BERT one (tokenizer.json and/or vocab.txt).

        A foreign tokenizer.json is used exactly as written, so ids equal `BertTokenizerFast`'s
        (check `decomposes_hangul`: uncased English vocabularies turn Hangul into jamo).
        """
        folder = Path(path)
        if folder.is_file() and folder.name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
            folder = folder.parent
        if not folder.is_dir():
            raise InputError(f"tokenizer folder not found: {folder} (expected a folder with tokenizer.json or vocab.txt)")
        cfg = _read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
        hanformer_table = cfg.get("hanformer")
        ours: dict[str, Any] = hanformer_table if isinstance(hanformer_table, dict) else {}
        specials = {name: _token_text(cfg.get(f"{name}_token"), default)
                    for name, default in (("unk", UNK), ("cls", CLS), ("sep", SEP), ("pad", PAD), ("mask", MASK))}
        listed = cfg.get("extra_special_tokens") or cfg.get("additional_special_tokens") or []
        if isinstance(listed, dict):  # some transformers versions save {name: token}
            listed = list(listed.values())
        extras = [t for t in (_token_text(x, "") for x in listed) if t]
        config = None
        if "config" in ours:
            config = load_config(TokenizerConfig, ours["config"], f"{folder / 'tokenizer_config.json'} [hanformer.config]")
        tok_json, vocab_txt = folder / "tokenizer.json", folder / "vocab.txt"
        if tok_json.is_file():
            try:
                backend = tokenizers.Tokenizer.from_file(str(tok_json))
            except Exception as e:  # the engine reports serde errors with line/column
                raise InputError(f"{tok_json}: cannot read tokenizer ({e})") from None
            source = str(tok_json)
            specials = resolve_special_tokens(backend, cfg, specials)  # <s>, </s>, ... of RoBERTa/XLM-R files
        elif vocab_txt.is_file():
            vocab = read_vocab_txt(vocab_txt)
            check_special_tokens(vocab, [specials["unk"], specials["cls"], specials["sep"]], str(vocab_txt))
            if config is not None:
                return cls.build(vocab, config, source=str(vocab_txt), settings=_without(ours, "config"))
            named = [specials[n] for n in ("pad", "unk", "cls", "sep", "mask") if specials[n] in vocab]
            backend = _assemble(vocab, _vocab_txt_normalizer(vocab, cfg), named + extras, 100,
                                specials["unk"], specials["cls"], specials["sep"])
            _warn_if_vocabulary_unreachable(backend, vocab, named + extras, specials["unk"], vocab_txt)
            source = str(vocab_txt)
        else:
            raise InputError(f"{folder}: no tokenizer.json or vocab.txt (is this a tokenizer folder?)")
        vocab = backend.get_vocab(with_added_tokens=True)
        max_len = cfg.get("model_max_length", 512)
        return cls(
            backend,
            model_max_length=max_len if isinstance(max_len, int) and 0 < max_len < 1_000_000 else 512,
            morpheme_split=bool(ours.get("morpheme_split", config.morpheme_split if config else False)),
            unk_token=specials["unk"], cls_token=specials["cls"], sep_token=specials["sep"],
            pad_token=specials["pad"] if specials["pad"] in vocab else None,
            mask_token=specials["mask"] if specials["mask"] in vocab else None,
            extra_special_tokens=extras, settings=ours, source=source,
        )

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json,
        each atomically, in the layout `transformers.BertTokenizerFast.from_pretrained` reads."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / "tokenizer.json") as f:
            f.write(self._base.to_str(pretty=True))
        write_vocab_txt(folder / "vocab.txt", self._base.get_vocab(with_added_tokens=True))
        bert = _bert_normalizer_settings(self._base.normalizer)
        special_map = {f"{n}_token": t for n, t in (("unk", self.unk_token), ("sep", self.sep_token),
                       ("pad", self.pad_token), ("cls", self.cls_token), ("mask", self.mask_token)) if t}
        added = {str(i): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized, "rstrip": t.rstrip,
                          "single_word": t.single_word, "special": t.special}
                 for i, t in sorted(self._base.get_added_tokens_decoder().items())}
        config = {
            "tokenizer_class": tokenizer_class(self._base),
            "do_lower_case": bert.get("lowercase", False),
            "strip_accents": bert.get("strip_accents", False),
            "tokenize_chinese_chars": bert.get("handle_chinese_chars", True),
            "do_basic_tokenize": True,
            "clean_up_tokenization_spaces": False,
            "model_max_length": self.model_max_length,
            **special_map,
            "extra_special_tokens": self.extra_special_tokens,
            "added_tokens_decoder": added,
            # Read only by hanformer: settings tokenizer.json cannot hold (the Kiwi pre-tokenizer).
            "hanformer": {**self._settings, "morpheme_split": self.morpheme_split},
        }
        atomic_write_json(folder / "tokenizer_config.json", config)
        atomic_write_json(folder / "special_tokens_map.json",
                          {**special_map, "additional_special_tokens": self.extra_special_tokens})
        return folder

    # ------------------------------------------------------------------ encoding
    def encode(self, text: TextInput, pair: TextInput | None = None, *, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: Truncation = False, padding: Padding = False,
               stride: int = 0, pad_to_multiple_of: int | None = None, is_split_into_words: bool = False) -> Encoding:
        """Encode one text (or a text pair). No truncation or padding unless asked for."""
        _check_text(text, is_split_into_words, "text")
        if pair is not None:
            _check_text(pair, is_split_into_words, "pair")
        (text, pair), alignments = self._composed(text, pair, is_split_into_words)
        specials = self._specials_added(pair is not None, add_special_tokens)
        with self._settings_for_call(max_length, truncation, padding, stride, pad_to_multiple_of, specials):
            enc = self._run(lambda: self._backend.encode(text, pair, is_pretokenized=is_split_into_words,
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
            encs = self._run(lambda: self._backend.encode_batch(inputs, is_pretokenized=is_split_into_words,
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
            inputs, alignments = self._batch_inputs(batch, pair_batch, is_split_into_words), [None] * len(batch)
        with self._settings_for_call(max_length, truncation, padding, 0, pad_to_multiple_of, specials):
            if return_offsets_mapping:
                run = self._backend.encode_batch
            else:  # skips offset tracking: the fast path for training and inference
                run = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)
            encs = self._run(lambda: run(inputs, is_pretokenized=is_split_into_words,
                                         add_special_tokens=add_special_tokens))
        out: dict[str, Any] = {
            "input_ids": [e.ids for e in encs],
            "token_type_ids": [e.type_ids for e in encs],
            "attention_mask": [e.attention_mask for e in encs],
        }
        if return_offsets_mapping:
            out["offset_mapping"] = [Encoding(e, a).offsets for e, a in zip(encs, alignments, strict=True)]
        if return_tensors is None:
            return out
        if len({len(ids) for ids in out["input_ids"]}) > 1:
            raise ConfigError("texts encode to different lengths: pass padding='longest' (or 'max_length') "
                              "to get tensors, or return_tensors=None for lists")
        import numpy as np

        arrays = {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
        if return_tensors == "np":
            return arrays
        if return_tensors != "pt":
            raise ConfigError(f"return_tensors={return_tensors!r} is not supported: use 'pt', 'np' or None")
        import torch

        return {k: torch.from_numpy(v) for k, v in arrays.items()}

    def tokenize(self, text: str, pair: str | None = None) -> list[str]:
        """The word pieces of `text`, without special tokens."""
        return self.encode(text, pair, add_special_tokens=False).tokens

    def decode(self, ids: Any, skip_special_tokens: bool = True, clean_up_tokenization_spaces: bool = True) -> str:
        """Token ids (a list, a tensor, or an Encoding) back to text: `##` pieces are joined to
        their word; spaces before punctuation are removed unless `clean_up_tokenization_spaces=False`."""
        ids = _as_id_list(ids)
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
        return [self._id_to_token(i) for i in _as_id_list(ids)]

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

    @staticmethod
    def _batch_inputs(texts: Sequence[TextInput], pairs: Sequence[TextInput] | None, split: bool) -> list[Any]:
        if isinstance(texts, str):
            raise InputError("encode_batch expects a list of texts, got one string (use encode for a single text)")
        for i, t in enumerate(texts):
            _check_text(t, split, f"texts[{i}]")
        if pairs is None:
            return list(texts)
        if len(pairs) != len(texts):
            raise InputError(f"got {len(texts)} texts but {len(pairs)} pairs; give one pair per text")
        for i, p in enumerate(pairs):
            _check_text(p, split, f"pairs[{i}]")
        return list(zip(texts, pairs, strict=True))

    def _composed(self, text: TextInput, pair: TextInput | None, split: bool,
                  ) -> tuple[tuple[TextInput, TextInput | None], tuple[SequenceAlignment, SequenceAlignment] | None]:
        """The text (and pair) as the engine should see them, and the alignments that take its
        offsets back to the caller's text (None when nothing had to be composed)."""
        if self._composition is None:
            return (text, pair), None
        text, text_alignment = self._composed_sequence(text, split)
        pair, pair_alignment = (pair, None) if pair is None else self._composed_sequence(pair, split)
        if text_alignment is None and pair_alignment is None:
            return (text, pair), None
        return (text, pair), (text_alignment, pair_alignment)

    def _composed_sequence(self, text: TextInput, split: bool) -> tuple[TextInput, SequenceAlignment]:
        form = self._composition
        assert form is not None
        if not split:
            return compose(text, form)  # type: ignore[arg-type]
        words = [compose(word, form) for word in text]
        if all(alignment is None for _, alignment in words):
            return text, None
        return [word for word, _ in words], [alignment for _, alignment in words]

    def _composed_batch(self, texts: Sequence[TextInput], pairs: Sequence[TextInput] | None, split: bool,
                        ) -> tuple[list[Any], list[tuple[SequenceAlignment, SequenceAlignment] | None]]:
        inputs = self._batch_inputs(texts, pairs, split)
        if self._composition is None:
            return inputs, [None] * len(inputs)
        composed, alignments = [], []
        for item in inputs:
            text, pair = item if pairs is not None else (item, None)
            (text, pair), alignment = self._composed(text, pair, split)
            composed.append((text, pair) if pairs is not None else text)
            alignments.append(alignment)
        return composed, alignments

    @contextlib.contextmanager
    def _settings_for_call(self, max_length: int | None, truncation: Truncation, padding: Padding,
                           stride: int, pad_to_multiple_of: int | None, specials: int = 0) -> Iterator[None]:
        """Set the engine's truncation/padding for one call and always reset them afterwards,
        holding the instance's lock throughout so no other thread's call sees these settings.
        `specials`: how many special tokens each sequence gets, the least a truncation length can be."""
        strategy = {True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
                    "only_second": "only_second", False: None, None: None, "do_not_truncate": None}.get(truncation, "?")
        if strategy == "?":
            raise ConfigError(f"truncation={truncation!r}: use True/'longest_first', 'only_first', 'only_second' or False")
        pad_mode = {True: "longest", "longest": "longest", "max_length": "max_length", False: None, None: None,
                    "do_not_pad": None}.get(padding, "?")
        if pad_mode == "?":
            raise ConfigError(f"padding={padding!r}: use True/'longest', 'max_length' or False")
        length = self.model_max_length if max_length is None else int(max_length)
        if strategy and length < specials:
            # The engine would silently give up truncating and return the whole text.
            raise ConfigError(
                f"max_length = {length} is too small: the special tokens ({self.cls_token}, {self.sep_token}) "
                f"take {specials} positions, so the minimum is {specials} (only those tokens) and {specials + 1} "
                f"keeps text")
        if (strategy or pad_mode == "max_length") and length < 1:
            raise ConfigError(f"max_length = {length} must be at least 1")
        with self._call_lock, self._engine_settings(strategy, pad_mode, length, stride, pad_to_multiple_of):
            yield

    @contextlib.contextmanager
    def _engine_settings(self, strategy: str | None, pad_mode: str | None, length: int, stride: int,
                         pad_to_multiple_of: int | None) -> Iterator[None]:
        try:
            if strategy:
                self._backend.enable_truncation(length, stride=stride, strategy=strategy)
            if pad_mode:
                if self.pad_token_id is None:
                    raise ConfigError("padding needs a [PAD] token, and this vocabulary has none")
                self._backend.enable_padding(pad_id=self.pad_token_id, pad_token=self.pad_token, pad_type_id=0,
                                             length=length if pad_mode == "max_length" else None,
                                             pad_to_multiple_of=pad_to_multiple_of)
            yield
        finally:
            self._backend.no_truncation()
            self._backend.no_padding()

    def _specials_added(self, pair: bool, add_special_tokens: bool) -> int:
        return self.num_special_tokens_to_add(pair) if add_special_tokens else 0

    @staticmethod
    def _run(fn: Any) -> Any:
        try:
            return fn()
        except Exception as e:  # the engine raises plain Exceptions for impossible requests
            msg = str(e)
            if "Truncation error" in msg:
                raise ConfigError(f"cannot truncate as asked: {msg} (raise max_length or change the strategy)") from None
            raise


def _assemble(vocab: dict[str, int], normalizer: normalizers.Normalizer, special_tokens: Sequence[str],
              max_input_chars_per_word: int, unk: str = UNK, cls: str = CLS, sep: str = SEP) -> tokenizers.Tokenizer:
    """The four stages put together over a vocabulary."""
    backend = tokenizers.Tokenizer(build_wordpiece(vocab, unk, max_input_chars_per_word))
    backend.normalizer = normalizer
    backend.pre_tokenizer = build_pre_tokenizer()
    # Special tokens typed in the text ("[CLS]", "[ENT]") are matched whole, never split into pieces.
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    backend.post_processor = build_post_processor(cls, vocab[cls], sep, vocab[sep])
    backend.decoder = build_decoder()
    return backend


def _normalizer_steps(normalizer: normalizers.Normalizer | None) -> list[dict[str, Any]]:
    """The serialized steps of `normalizer`, in order, with Sequences flattened."""
    if normalizer is None:
        return []
    holder = tokenizers.Tokenizer(build_wordpiece({UNK: 0}, UNK))
    holder.normalizer = normalizer
    steps, stack = [], [json.loads(holder.to_str())["normalizer"]]
    while stack:
        item = stack.pop()
        if item.get("type") == "Sequence":
            stack.extend(reversed(item.get("normalizers", [])))
        else:
            steps.append(item)
    return steps


def _bert_normalizer_settings(normalizer: normalizers.Normalizer | None) -> dict[str, Any]:
    """lowercase/strip_accents/handle_chinese_chars of the BertNormalizer inside `normalizer`."""
    for step in _normalizer_steps(normalizer):
        if step.get("type") == "BertNormalizer":
            return {k: step[k] for k in ("lowercase", "strip_accents", "handle_chinese_chars")}
    return {"lowercase": False, "strip_accents": False, "handle_chinese_chars": False}


def _composing_form(normalizer: normalizers.Normalizer | None) -> ComposingForm | None:
    """"NFC" or "NFKC" when `normalizer` composes characters (whose offsets the engine gets wrong)."""
    forms = [step["type"] for step in _normalizer_steps(normalizer) if step.get("type") in ("NFC", "NFKC")]
    return forms[0] if forms else None


def compose(text: str, form: ComposingForm) -> tuple[str, Alignment | None]:
    """`text` in normal form `form` ("NFC" or "NFKC") and the alignment back to `text`; None when
    `text` is in that form already (the usual case, checked in C)."""
    if unicodedata.is_normalized(form, text):
        return text, None
    whole = unicodedata.normalize(form, text)
    spans = [span for m in _RUNS.finditer(text) for span in _composition_units(text, m.start(), m.end(), form)]
    pieces = [text[a:b] if same else unicodedata.normalize(form, text[a:b]) for a, b, same in spans]
    if "".join(pieces) != whole:  # a composition across our cuts: one unit, coarse but true
        spans, pieces = [(0, len(text), False)], [whole]
    starts: list[int] = []
    ends: list[int] = []
    to_composed: list[int] = []
    for (a, b, _), piece in zip(spans, pieces, strict=True):
        if piece == text[a:b]:
            to_composed.extend(range(len(starts), len(starts) + b - a))
            starts.extend(range(a, b))
            ends.extend(range(a + 1, b + 1))
        else:  # every composed character spans all the characters it came from
            to_composed.extend([len(starts)] * (b - a))
            starts.extend([a] * len(piece))
            ends.extend([b] * len(piece))
    return whole, Alignment(starts, ends, to_composed, len(text))


# Whitespace never composes with its neighbours, so runs between spaces are normalized on their own.
_RUNS = re.compile(r"\s+|\S+")


def _composition_units(text: str, start: int, end: int, form: ComposingForm) -> Iterator[tuple[int, int, bool]]:
    """(start, end, unchanged) spans of text[start:end] that the normal form changes independently:
    a run already in normal form is one unchanged span; otherwise each span is a character with
    what composes with it (combining marks, Hangul vowel and final jamo)."""
    if unicodedata.is_normalized(form, text[start:end]):
        yield start, end, True
        return
    unit_start = start
    for i in range(start + 1, end):
        unit, ch = text[unit_start:i], text[i]
        joins = unicodedata.combining(ch) or (
            unicodedata.normalize(form, unit + ch) != unicodedata.normalize(form, unit) + unicodedata.normalize(form, ch))
        if not joins:
            yield unit_start, i, False
            unit_start = i
    yield unit_start, end, False


def _vocab_txt_normalizer(vocab: dict[str, int], cfg: dict[str, Any]) -> normalizers.Normalizer:
    """The normalizer of a folder with vocab.txt and no tokenizer.json: the settings that
    tokenizer_config.json gives, as transformers' BertTokenizer applies them (identical ids on NFC
    text), and those it leaves out (or sets to null) read off the vocabulary instead of assumed.

    BertTokenizer assumes an uncased English model (lowercase, strip accents). Stripping accents
    decomposes Hangul into jamo, so on a vocabulary of Hangul syllables every Korean word would be
    [UNK]. A vocabulary that holds characters with accents or Hangul syllables was therefore made
    without stripping (the text is then composed to NFC first, as our own pipeline does); one that
    holds the capital letters A-Z is cased. An uncased English vocabulary has neither, and gets
    BertTokenizer's defaults."""
    lowercase = cfg.get("do_lower_case")
    if not isinstance(lowercase, bool):
        lowercase = not any(letter in vocab for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    strip_accents = cfg.get("strip_accents")  # null means "follow do_lower_case", like absent
    if not isinstance(strip_accents, bool) and _has_composed_characters(vocab):
        strip_accents = False
    bert = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=bool(cfg.get("tokenize_chinese_chars", True)),
                                      strip_accents=strip_accents, lowercase=lowercase)
    keeps_accents = strip_accents is False or (strip_accents is None and not lowercase)
    return normalizers.Sequence([normalizers.NFC(), bert]) if keeps_accents else bert


def _has_composed_characters(vocab: dict[str, int]) -> bool:
    """True when some single-character token is one that accent stripping would take apart (é, 한)."""
    return any(unicodedata.normalize("NFD", body) != body
               for body in (token.removeprefix(CONTINUATION_PREFIX) for token in vocab) if len(body) == 1)


def _warn_if_vocabulary_unreachable(backend: tokenizers.Tokenizer, vocab: dict[str, int], specials: list[str],
                                    unk: str, source: Path) -> None:
    """Warn when the settings turn many of the vocabulary's own characters into [UNK]: then
    tokenizer_config.json does not describe this vocabulary (e.g. strip_accents on Hangul)."""
    characters = sorted({body for body in (t.removeprefix(CONTINUATION_PREFIX) for t in vocab if t not in specials)
                         if len(body) == 1 and not body.isspace()})
    if not characters:
        return
    encoded = backend.encode_batch(characters, add_special_tokens=False)
    lost = [c for c, enc in zip(characters, encoded, strict=True) if unk in enc.tokens]
    if len(lost) > max(10, len(characters) // 20):
        log.warning("%s: %d of the vocabulary's %d characters encode to %s with the settings of "
                    "tokenizer_config.json (do_lower_case, strip_accents), e.g. %s: they do not fit this "
                    "vocabulary; for Korean set \"strip_accents\": false", source, len(lost), len(characters),
                    unk, " ".join(lost[:5]))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: invalid JSON at column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def _token_text(value: Any, default: str) -> str:
    if isinstance(value, dict):  # AddedToken serialised as {"content": ...}
        value = value.get("content")
    return value if isinstance(value, str) and value else default


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _check_text(text: Any, split: bool, name: str) -> None:
    if split:
        if isinstance(text, str) or not all(isinstance(w, str) for w in text):
            raise InputError(f"{name}: with is_split_into_words=True give a list of words (strings)")
    elif not isinstance(text, str):
        raise InputError(f"{name}: expected a string, got {type(text).__name__}")


def _as_id_list(ids: Any) -> list[int]:
    if isinstance(ids, Encoding):
        return list(ids.ids)
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    return [int(i) for i in ids]


__all__ = ["Encoding", "Tokenizer", "BERT_SPECIAL_TOKENS", "CONTINUATION_PREFIX"]
