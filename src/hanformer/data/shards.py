"""Token shards: a tokenized corpus as flat memory-mapped arrays, read without re-tokenizing.

A shard directory holds one folder per split (``train``, ``valid``) with

* ``tokens.bin``      - every sentence's token ids back to back, no special tokens
                        (uint16 when the vocabulary fits, else uint32);
* ``word_starts.bin`` - uint8, 1 where a token begins a whitespace-delimited word (for Korean an
                        eojeol), so whole-word masking can group pieces;
* ``sentences.npy``   - int64 token offsets, ``len = sentences + 1`` (sentence s is
                        ``tokens[sentences[s]:sentences[s+1]]``);
* ``documents.npy``   - int64 sentence offsets, ``len = documents + 1``;

plus ``meta.json`` (format, tokenizer ``vocab_hash`` and special ids, counts, settings),
``token_counts.npy`` (training-split unigram counts, for the unigram baseline) and the
tokenizer files in ``tokenizer/`` so a training run has everything in one place.
Sentences of a document are contiguous, so any run of sentences is one slice of ``tokens``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hanformer.errors import InputError

FORMAT = "hanformer-shards"
FORMAT_VERSION = 1
SPLITS = ("train", "valid")


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.uint32)


class ShardWriter:
    """Appends documents (lists of tokenized sentences) of one split to its files."""

    def __init__(self, directory: str | Path, vocab_size: int) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dtype = token_dtype(vocab_size)
        self._tokens = open(self.dir / "tokens.bin", "wb")
        self._words = open(self.dir / "word_starts.bin", "wb")
        self.sentence_offsets: list[int] = [0]
        self.document_offsets: list[int] = [0]
        self.n_tokens = 0

    def add_document(self, sentences: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """`sentences`: (token ids, word-start flags) per sentence; empty sentences are skipped."""
        sentences = [(ids, ws) for ids, ws in sentences if len(ids)]
        if not sentences:
            return
        ids = np.concatenate([s[0] for s in sentences]).astype(self.dtype, copy=False)
        ws = np.concatenate([s[1] for s in sentences]).astype(np.uint8, copy=False)
        self._tokens.write(ids.tobytes())
        self._words.write(ws.tobytes())
        for s, _ in sentences:
            self.n_tokens += len(s)
            self.sentence_offsets.append(self.n_tokens)
        self.document_offsets.append(len(self.sentence_offsets) - 1)

    @property
    def n_documents(self) -> int:
        return len(self.document_offsets) - 1

    @property
    def n_sentences(self) -> int:
        return len(self.sentence_offsets) - 1

    def close(self) -> dict[str, int]:
        for f in (self._tokens, self._words):
            f.flush()
            os.fsync(f.fileno())
            f.close()
        np.save(self.dir / "sentences.npy", np.asarray(self.sentence_offsets, dtype=np.int64))
        np.save(self.dir / "documents.npy", np.asarray(self.document_offsets, dtype=np.int64))
        return {"documents": self.n_documents, "sentences": self.n_sentences, "tokens": self.n_tokens}


class ShardSplit:
    """One split, memory-mapped: documents -> sentences -> token slices."""

    def __init__(self, directory: str | Path, dtype: np.dtype) -> None:
        self.dir = Path(directory)
        for name in ("tokens.bin", "word_starts.bin", "sentences.npy", "documents.npy"):
            if not (self.dir / name).is_file():
                raise InputError(f"{self.dir}: missing {name}; re-run `hanformer data prepare`")
        self.sentences = np.load(self.dir / "sentences.npy", mmap_mode="r")
        self.documents = np.load(self.dir / "documents.npy", mmap_mode="r")
        n = int(self.sentences[-1])
        self.tokens = (np.memmap(self.dir / "tokens.bin", dtype=dtype, mode="r", shape=(n,))
                       if n else np.zeros(0, dtype=dtype))
        self.word_starts = (np.memmap(self.dir / "word_starts.bin", dtype=np.uint8, mode="r", shape=(n,))
                            if n else np.zeros(0, dtype=np.uint8))

    @property
    def n_documents(self) -> int:
        return len(self.documents) - 1

    @property
    def n_sentences(self) -> int:
        return len(self.sentences) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.sentences[-1])

    def document_sentences(self, d: int) -> range:
        return range(int(self.documents[d]), int(self.documents[d + 1]))

    def sentence(self, s: int) -> np.ndarray:
        return np.asarray(self.tokens[int(self.sentences[s]):int(self.sentences[s + 1])])

    def document_tokens(self, d: int) -> np.ndarray:
        s0, s1 = int(self.documents[d]), int(self.documents[d + 1])
        return np.asarray(self.tokens[int(self.sentences[s0]):int(self.sentences[s1])])


class ShardSet:
    """A prepared shard directory: `meta`, `train`, `valid`, and its tokenizer folder."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        meta_path = self.dir / "meta.json"
        if not meta_path.is_file():
            raise InputError(f"{self.dir} is not a shard directory (no meta.json); "
                             f"create one with `hanformer data prepare --input ... --tokenizer ... --out {self.dir}`")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        if self.meta.get("format") != FORMAT or self.meta.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{meta_path}: unsupported shard format {self.meta.get('format')!r} "
                             f"v{self.meta.get('format_version')}; re-run `hanformer data prepare`")
        self.dtype = np.dtype(self.meta["dtype"])
        self.train = ShardSplit(self.dir / "train", self.dtype)
        self.valid = ShardSplit(self.dir / "valid", self.dtype)

    @property
    def tokenizer_dir(self) -> Path:
        return self.dir / "tokenizer"

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def special_ids(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.meta["special_ids"].items()}

    def token_counts(self) -> np.ndarray:
        return np.load(self.dir / "token_counts.npy")

    def check_tokenizer(self, vocab_hash: str, where: str) -> None:
        """Refuse shards tokenized with another vocabulary (ids would mean other tokens)."""
        if vocab_hash != self.meta["vocab_hash"]:
            raise InputError(
                f"{self.dir}: shards were made with another vocabulary (vocab_hash "
                f"{self.meta['vocab_hash'][:12]}) than {where} ({vocab_hash[:12]}); re-run "
                f"`hanformer data prepare` with this tokenizer, or use the tokenizer in {self.tokenizer_dir}")
