"""The four stages put together over a vocabulary, and `TokenizerParts`: everything a `Tokenizer`
is made of (the engine, its special tokens, hanformer's own settings), as built here or read from
a folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import tokenizers
from tokenizers import AddedToken, normalizers

from hanformer.tokenization.config import CLS, MASK, PAD, SEP, UNK, TokenizerConfig
from hanformer.tokenization.model import build_wordpiece, check_special_tokens
from hanformer.tokenization.normalizer import build_normalizer
from hanformer.tokenization.post_processor import build_decoder, build_post_processor
from hanformer.tokenization.pre_tokenizer import build_pre_tokenizer
from hanformer.utils.config import config_to_dict


@dataclass
class TokenizerParts:
    """The arguments of `Tokenizer(...)`: the serializable engine (without Kiwi) and the rest."""

    backend: tokenizers.Tokenizer
    model_max_length: int = 512
    morpheme_split: bool = False
    unk_token: str = UNK
    cls_token: str = CLS
    sep_token: str = SEP
    pad_token: str | None = PAD
    mask_token: str | None = MASK
    extra_special_tokens: Sequence[str] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = "tokenizer"


def assemble(vocab: dict[str, int], normalizer: normalizers.Normalizer, special_tokens: Sequence[str],
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


def configured_parts(vocab: dict[str, int], config: TokenizerConfig, source: str,
                     settings: dict[str, Any] | None = None) -> TokenizerParts:
    """Our pipeline (NFC, no accent stripping, BERT split, WordPiece) over `vocab` as `config` sets it."""
    check_special_tokens(vocab, [UNK, CLS, SEP], source)
    backend = assemble(vocab, build_normalizer(config), config.special_tokens, config.max_input_chars_per_word)
    return TokenizerParts(backend, model_max_length=config.model_max_length, morpheme_split=config.morpheme_split,
                          extra_special_tokens=config.extra_special_tokens,
                          settings={"config": config_to_dict(config), **(settings or {})}, source=source)
