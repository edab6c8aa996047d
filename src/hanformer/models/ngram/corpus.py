"""Text to token ids: every non-empty line (paragraph) of the input is one sentence.

Files are read with the project's readers (plain text, WikiExtractor `<doc>` files, JSON lines,
TSV), split into whitespace words or into the word pieces of a trained tokenizer, mapped to
vocabulary ids and laid out back to back, each sentence framed by `<s>` ... `</s>`. Batches of
sentences are turned into one int32 array each, so a 100 MB corpus costs ~4 bytes a token.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hanformer.errors import InputError, where
from hanformer.models.ngram.vocab import BOS, BOS_ID, EOS, EOS_ID, UNK, UNK_ID, Vocabulary
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.corpus import detect_format, expand_paths, iter_documents

BATCH_SENTENCES = 8192

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


class Splitter(Protocol):
    """Turns texts into the units the model counts."""

    units: str

    def split(self, texts: Sequence[str]) -> list[list[str]]: ...

    def join(self, tokens: Sequence[str]) -> str:
        """Tokens (a sampled sentence) back to text."""
        ...

    def prepare(self, vocab: Vocabulary) -> None:
        """Teach `vocab` the splitter's own names for its words (once, before splitting)."""
        ...


class WordSplitter:
    """Whitespace-separated words (Korean eojeol), as KenLM's lmplz reads its input."""

    units = "words"

    def split(self, texts: Sequence[str]) -> list[list[str]]:
        return [t.split() for t in texts]

    def join(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)

    def prepare(self, vocab: Vocabulary) -> None:
        pass  # a literal "<unk>" in the text already is the model's <unk>


class PieceSplitter:
    """The word pieces of a hanformer (or any BERT) tokenizer, `##` continuation marks kept."""

    units = "wordpiece"

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def split(self, texts: Sequence[str]) -> list[list[str]]:
        return [e.tokens for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def join(self, tokens: Sequence[str]) -> str:
        pieces = [self.tokenizer.unk_token if t == UNK else t for t in tokens]
        return self.tokenizer.decode(self.tokenizer.convert_tokens_to_ids(pieces), skip_special_tokens=False)

    def prepare(self, vocab: Vocabulary) -> None:
        """The tokenizer's unknown piece is the model's `<unk>`."""
        vocab.alias(self.tokenizer.unk_token, UNK)


@dataclass
class TokenStream:
    """Sentences as one id array: `<s> w1 ... wn </s> <s> ...` (int32)."""

    ids: np.ndarray
    sentences: int
    words: int  # tokens between the boundaries
    oov: int  # words that are `<unk>` in the vocabulary

    def longest_sentence(self) -> int:
        """Words in the longest sentence."""
        bounds = np.append(np.flatnonzero(self.ids == BOS_ID), len(self.ids))
        return int(np.max(np.diff(bounds))) - 2


@dataclass
class _Located:
    source: str
    line: int
    exact: bool  # `line` is the sentence's own line, not the start of its document
    text: str


def iter_sentences(paths: Paths, fmt: str = "auto") -> Iterator[_Located]:
    for path in expand_paths(paths):
        # In plain text a document is a run of consecutive non-empty lines, so its i-th
        # sentence is on line start + i; other formats only tell where a document starts.
        plain = (detect_format(path) if fmt == "auto" else fmt) == "text"
        for doc in iter_documents(path, fmt):
            for i, text in enumerate(doc.lines):
                yield _Located(doc.source, doc.line + i if plain else doc.line, plain, text)


def read_stream(paths: Paths, splitter: Splitter, vocab: Vocabulary, *, grow: bool, fmt: str = "auto") -> TokenStream:
    """The token stream of `paths`; `grow=True` adds new words to `vocab` (training), otherwise
    unknown words become `<unk>` (scoring)."""
    chunks: list[np.ndarray] = []
    batch: list[_Located] = []
    for located in iter_sentences(paths, fmt):
        batch.append(located)
        if len(batch) == BATCH_SENTENCES:
            chunks.append(_encode_batch(batch, splitter, vocab, grow))
            batch = []
    if batch:
        chunks.append(_encode_batch(batch, splitter, vocab, grow))
    ids = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
    sentences = int(np.count_nonzero(ids == BOS_ID))
    words = len(ids) - 2 * sentences
    oov = int(np.count_nonzero(ids == UNK_ID))
    return TokenStream(ids, sentences, words, oov)


def _encode_batch(batch: list[_Located], splitter: Splitter, vocab: Vocabulary, grow: bool) -> np.ndarray:
    pieces = splitter.split([s.text for s in batch])
    lengths = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
    flat_tokens = [t for p in pieces for t in p]
    flat = np.asarray(vocab.add_all(flat_tokens) if grow else vocab.ids(flat_tokens), dtype=np.int32)
    _refuse_boundary_words(flat, lengths, batch)
    return frame(flat, lengths)


def frame(flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sentences given as their ids back to back (`flat`) and their `lengths`, with `<s>` and
    `</s>` around each."""
    total = len(flat) + 2 * len(lengths)
    bos = np.cumsum(lengths + 2) - (lengths + 2)
    eos = bos + lengths + 1
    out = np.empty(total, np.int32)
    inner = np.ones(total, bool)
    inner[bos] = inner[eos] = False
    out[bos], out[eos] = BOS_ID, EOS_ID
    out[inner] = flat
    return out


def _refuse_boundary_words(flat: np.ndarray, lengths: np.ndarray, batch: list[_Located]) -> None:
    # A literal <s> or </s> would be read as a sentence boundary and corrupt every count around it.
    hits = np.flatnonzero((flat == BOS_ID) | (flat == EOS_ID))
    if len(hits) == 0:
        return
    sentence = int(np.searchsorted(np.cumsum(lengths), hits[0], side="right"))
    located = batch[sentence]
    place = "this line" if located.exact else "the document starting here"
    raise InputError(f"{where(located.source, located.line)}: {place} contains the word {BOS!r} or {EOS!r}, "
                     "which the model reserves for sentence boundaries; remove or replace it "
                     "(e.g. with sed 's/<\\/\\?s>/ /g')")
