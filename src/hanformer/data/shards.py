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

Opening a shard directory checks it (cheaply, so big shards open at once): ``meta.json`` has every
key with the right type, each file's size and each index's shape agree with the counts in
``meta.json``, the indexes start at 0 and never decrease (one vectorised pass), and the largest
token id, recorded when the shard was written, is inside the vocabulary. Anything wrong is an
`InputError` naming the file. `ShardSplit.check_token_ids` reads every id, for a full check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from hanformer.errors import HanformerError, InputError, where
from hanformer.utils.config import load_json_object

FORMAT = "hanformer-shards"
FORMAT_VERSION = 1
SPLITS = ("train", "valid")
_REDO = "re-run `hanformer data prepare`"
_COUNTS = ("documents", "sentences", "tokens")
_CHUNK = 1 << 22  # entries per vectorised pass over an index or the tokens (32 MiB of int64)


class SplitCounts(TypedDict):
    """What a split holds, as meta.json records it (`max_id`: None for a split without tokens)."""

    documents: int
    sentences: int
    tokens: int
    max_id: int | None


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
        self.max_id: int | None = None  # recorded in meta.json: readers check it against the vocabulary

    def add_document(self, sentences: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """`sentences`: (token ids, word-start flags) per sentence; empty sentences are skipped."""
        sentences = [(ids, ws) for ids, ws in sentences if len(ids)]
        if not sentences:
            return
        ids = np.concatenate([s[0] for s in sentences]).astype(self.dtype, copy=False)
        ws = np.concatenate([s[1] for s in sentences]).astype(np.uint8, copy=False)
        self._tokens.write(ids.tobytes())
        top = int(ids.max())
        self.max_id = top if self.max_id is None else max(self.max_id, top)
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

    def close(self) -> SplitCounts:
        for f in (self._tokens, self._words):
            f.flush()
            os.fsync(f.fileno())
            f.close()
        np.save(self.dir / "sentences.npy", np.asarray(self.sentence_offsets, dtype=np.int64))
        np.save(self.dir / "documents.npy", np.asarray(self.document_offsets, dtype=np.int64))
        return {"documents": self.n_documents, "sentences": self.n_sentences, "tokens": self.n_tokens,
                "max_id": self.max_id}


class ShardSplit:
    """One split, memory-mapped: documents -> sentences -> token slices.

    `counts` (from meta.json: documents, sentences, tokens, max_id) and `vocab_size`, when given,
    are checked against the files; without them the files are checked against each other."""

    def __init__(self, directory: str | Path, dtype: np.dtype, *, counts: dict[str, Any] | None = None,
                 vocab_size: int | None = None) -> None:
        self.dir = Path(directory)
        for name in ("tokens.bin", "word_starts.bin", "sentences.npy", "documents.npy"):
            if not (self.dir / name).is_file():
                raise InputError(f"{self.dir}: missing {name}; {_REDO}")
        self.sentences = _load_offsets(self.dir / "sentences.npy")
        self.documents = _load_offsets(self.dir / "documents.npy")
        n = int(self.sentences[-1])
        _check_offsets(self.sentences, self.dir / "sentences.npy")
        _check_offsets(self.documents, self.dir / "documents.npy")
        if int(self.documents[-1]) != self.n_sentences:
            raise InputError(f"{self.dir / 'documents.npy'}: its documents end at sentence {int(self.documents[-1])}, "
                             f"but sentences.npy holds {self.n_sentences}; {_REDO}")
        _check_size(self.dir / "tokens.bin", n, np.dtype(dtype))
        _check_size(self.dir / "word_starts.bin", n, np.dtype(np.uint8))
        if counts is not None:
            self._check_counts(counts)
        self.tokens = (np.memmap(self.dir / "tokens.bin", dtype=dtype, mode="r", shape=(n,))
                       if n else np.zeros(0, dtype=dtype))
        self.word_starts = (np.memmap(self.dir / "word_starts.bin", dtype=np.uint8, mode="r", shape=(n,))
                            if n else np.zeros(0, dtype=np.uint8))
        if vocab_size is not None:
            recorded = None if counts is None else counts.get("max_id")
            # Shards from before max_id was recorded are read once, in vectorised chunks.
            self.check_token_ids(vocab_size, recorded_max=recorded if isinstance(recorded, int) else None)

    def _check_counts(self, counts: dict[str, Any]) -> None:
        found = {"documents": self.n_documents, "sentences": self.n_sentences, "tokens": self.n_tokens}
        for key, value in found.items():
            if counts[key] != value:
                source = {"documents": "documents.npy", "sentences": "sentences.npy", "tokens": "sentences.npy"}[key]
                raise InputError(f"{self.dir / source}: holds {value:,} {key}, but meta.json says {counts[key]:,} "
                                 f"(the shard was changed or only partly copied); {_REDO}")

    def check_token_ids(self, vocab_size: int, recorded_max: int | None = None) -> None:
        """Refuse token ids outside the vocabulary. With `recorded_max` (meta.json's max_id) this
        costs nothing; without it every id is read, in chunks."""
        largest = recorded_max if recorded_max is not None else self._largest_id()
        if largest is not None and largest >= vocab_size:
            raise InputError(f"{self.dir / 'tokens.bin'}: token id {largest} is outside the vocabulary of "
                             f"{vocab_size:,} tokens (ids 0..{vocab_size - 1}); the shard was made with another "
                             f"tokenizer or is damaged; {_REDO}")

    def _largest_id(self) -> int | None:
        if self.n_tokens == 0:
            return None
        return max(int(np.max(self.tokens[i:i + _CHUNK])) for i in range(0, self.n_tokens, _CHUNK))

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
        self.meta: dict[str, Any] = read_meta(self.dir)
        self.dtype = np.dtype(self.meta["dtype"])
        splits = self.meta["splits"]
        self.train = ShardSplit(self.dir / "train", self.dtype, counts=splits["train"], vocab_size=self.vocab_size)
        self.valid = ShardSplit(self.dir / "valid", self.dtype, counts=splits["valid"], vocab_size=self.vocab_size)

    @property
    def vocab_hash(self) -> str:
        """The `Tokenizer.vocab_hash` of the tokenizer these shards were made with."""
        return str(self.meta["vocab_hash"])

    @property
    def tokenizer_dir(self) -> Path:
        return self.dir / "tokenizer"

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def special_ids(self) -> dict[str, int]:
        """Special-token ids by name (pad, unk, cls, sep, mask); a token the vocabulary lacks is None."""
        return {k: None if v is None else int(v) for k, v in self.meta["special_ids"].items()}  # type: ignore[misc]

    def token_counts(self) -> np.ndarray:
        """Unigram counts of the training split, one per vocabulary id."""
        path = self.dir / "token_counts.npy"
        counts = _load_array(path, mmap=False)
        if counts.shape != (self.vocab_size,) or counts.dtype.kind not in "iu":
            raise InputError(f"{path}: expected {self.vocab_size:,} integer counts (one per token id), found "
                             f"shape {counts.shape} of {counts.dtype}; {_REDO}")
        return counts

    def unigram_log_probs(self) -> np.ndarray:
        """`unigram_log_probs` of the training split's token counts."""
        return unigram_log_probs(self.token_counts())

    def check_tokenizer(self, vocab_hash: str, where: str) -> None:
        """Refuse shards tokenized with another vocabulary (ids would mean other tokens)."""
        if vocab_hash != self.vocab_hash:
            raise InputError(
                f"{self.dir}: shards were made with another vocabulary (vocab_hash "
                f"{self.meta['vocab_hash'][:12]}) than {where} ({vocab_hash[:12]}); re-run "
                f"`hanformer data prepare` with this tokenizer, or use the tokenizer in {self.tokenizer_dir}")


def shard_vocab_hash(directory: str | Path) -> str:
    """The vocab hash a shard directory was made with (compare it with `Tokenizer.vocab_hash`),
    read from its meta.json alone, which is checked as `ShardSet` checks it."""
    return str(read_meta(Path(directory))["vocab_hash"])


def read_meta(directory: Path) -> dict[str, Any]:
    """meta.json of a shard directory, with every key `ShardSet` relies on checked."""
    path = directory / "meta.json"
    if not path.is_file():
        raise InputError(f"{directory} is not a shard directory (no meta.json); "
                         f"create one with `hanformer data prepare --input ... --tokenizer ... --out {directory}`")
    try:
        meta = load_json_object(path)
    except HanformerError as e:
        raise InputError(f"{e}; {_REDO}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: unsupported shard format {meta.get('format')!r} "
                         f"v{meta.get('format_version')}; {_REDO}")
    vocab_size = _meta_field(meta, path, "vocab_size", _is_count, "a positive integer")
    if vocab_size < 1:
        raise InputError(f"{where(path, field='vocab_size')}: must be at least 1, got {vocab_size}; {_REDO}")
    _meta_field(meta, path, "vocab_hash", lambda v: isinstance(v, str) and v != "", "a non-empty string")
    dtype = _meta_field(meta, path, "dtype", lambda v: v in ("uint16", "uint32"), "'uint16' or 'uint32'")
    if dtype != token_dtype(vocab_size).name:
        raise InputError(f"{where(path, field='dtype')}: {dtype} does not fit a vocabulary of {vocab_size:,} tokens "
                         f"(expected {token_dtype(vocab_size).name}); {_REDO}")
    specials = _meta_field(meta, path, "special_ids", lambda v: isinstance(v, dict), "an object of token ids")
    for name, value in specials.items():
        if value is not None and not (_is_count(value) and value < vocab_size):
            raise InputError(f"{where(path, field='special_ids.' + str(name))}: expected a token id in "
                             f"0..{vocab_size - 1} or null, got {value!r}; {_REDO}")
    splits = _meta_field(meta, path, "splits", lambda v: isinstance(v, dict), "an object with train and valid")
    for split in SPLITS:
        counts = splits.get(split)
        if not isinstance(counts, dict):
            raise InputError(f"{where(path, field='splits.' + split)}: missing or not an object; {_REDO}")
        for key in (*_COUNTS, "max_id"):
            value = counts.get(key)
            if not _is_count(value) and not (key == "max_id" and value is None):
                raise InputError(f"{where(path, field=f'splits.{split}.{key}')}: expected a non-negative integer, "
                                 f"got {value!r}; {_REDO}")
    return meta


def _meta_field(meta: dict[str, Any], path: Path, key: str, valid: Any, expected: str) -> Any:
    if key not in meta:
        raise InputError(f"{where(path, field=key)}: missing; {_REDO}")
    if not valid(meta[key]):
        raise InputError(f"{where(path, field=key)}: expected {expected}, got {meta[key]!r}; {_REDO}")
    return meta[key]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _load_array(path: Path, mmap: bool = True) -> np.ndarray:
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":  # numpy would call anything else "pickled data"
            raise InputError(f"{path}: not a readable .npy array (no .npy header: the file is damaged); {_REDO}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # a bad header, a truncated body, pickled objects
        reason = str(e).split(". ")[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: not a readable .npy array ({reason}); {_REDO}") from None


def _load_offsets(path: Path) -> np.ndarray:
    """An index file: a 1-D array of integer offsets that starts at 0."""
    offsets = _load_array(path)
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or len(offsets) == 0:
        raise InputError(f"{path}: expected a non-empty 1-D integer array of offsets, found shape {offsets.shape} "
                         f"of {offsets.dtype}; {_REDO}")
    if int(offsets[0]) != 0:
        raise InputError(f"{path}: offsets must start at 0, found {int(offsets[0])}; {_REDO}")
    return offsets


def _check_offsets(offsets: np.ndarray, path: Path) -> None:
    """Offsets never decrease (checked in chunks: big indexes are memory-mapped)."""
    for start in range(0, len(offsets) - 1, _CHUNK):
        steps = np.diff(np.asarray(offsets[start:start + _CHUNK + 1]))
        if (steps < 0).any():
            at = start + int(np.argmax(steps < 0)) + 1
            raise InputError(f"{path}: offset {at} ({int(offsets[at])}) is smaller than the one before it "
                             f"({int(offsets[at - 1])}); {_REDO}")


def _check_size(path: Path, entries: int, dtype: np.dtype) -> None:
    expected = entries * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise InputError(f"{path}: {size:,} bytes, but the index says {entries:,} {dtype.name} entries "
                         f"({expected:,} bytes): the file is {'truncated' if size < expected else 'too long'}; {_REDO}")


def unigram_log_probs(counts: np.ndarray) -> np.ndarray:
    """Log frequencies of tokens from their counts, add-half smoothed so that a token never seen
    in training has a finite cost: the unigram floor every language-model objective reports (so
    the floors compare), and the masked-LM bias's starting point."""
    smoothed = counts.astype(np.float64) + 0.5
    return np.log(smoothed / smoothed.sum())
