"""Stage 3, the model: WordPiece (greedy longest-match-first with `##` continuation pieces),
and the vocab.txt file that stores it (one token per line, line number - 1 = id)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tokenizers import models

from hanformer.errors import InputError
from hanformer.utils.files import atomic_write, iter_lines

CONTINUATION_PREFIX = "##"


def build_wordpiece(vocab: Mapping[str, int], unk_token: str, max_input_chars_per_word: int = 100) -> models.WordPiece:
    return models.WordPiece(dict(vocab), unk_token=unk_token, continuing_subword_prefix=CONTINUATION_PREFIX,
                            max_input_chars_per_word=max_input_chars_per_word)


def read_vocab_txt(path: str | os.PathLike[str]) -> dict[str, int]:
    """vocab.txt -> {token: id}; a duplicate token or an empty file is an error naming the line."""
    vocab: dict[str, int] = {}
    for line_no, token in iter_lines(path):
        if token in vocab:
            raise InputError(f"{path}:{line_no}: token {token!r} repeats line {vocab[token] + 1} (each token once)")
        vocab[token] = line_no - 1
    if not vocab:
        raise InputError(f"{path}: vocabulary file is empty")
    return vocab


def write_vocab_txt(path: str | os.PathLike[str], vocab: Mapping[str, int]) -> None:
    tokens = sorted(vocab, key=vocab.__getitem__)
    ids = [vocab[t] for t in tokens]
    if ids != list(range(len(ids))):
        raise InputError(f"cannot write {Path(path).name}: token ids are not 0..{len(ids) - 1} without gaps")
    with atomic_write(path) as f:
        for tok in tokens:
            f.write(tok + "\n")


def check_special_tokens(vocab: Mapping[str, int], required: Sequence[str], source: str) -> None:
    """Every BERT model needs [UNK], [CLS] and [SEP] (and usually [PAD], [MASK]) in its vocabulary."""
    missing = [tok for tok in required if tok not in vocab]
    if missing:
        raise InputError(
            f"{source}: vocabulary is missing the special token{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (add {'them' if len(missing) > 1 else 'it'} to the vocabulary, "
            f"or name the right tokens in tokenizer_config.json)"
        )
