"""Text to one stream of token ids, laid out as the GPT causal-LM path lays out its shards.

`doc₀ [SEP] doc₁ [SEP] doc₂ [SEP] ...`: every document's tokens back to back (its lines in order,
the title left out, as `hanformer data prepare` does by default), each followed by the separator.
The same tokenizer folder and the same layout make the RNN's perplexity per token comparable
with GPT's (`hanformer pretrain --objective clm`) and with an n-gram model counted on the same
word pieces. Shards made by `hanformer data prepare` give exactly GPT's stream (`shard_stream`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from hanformer.data.shards import ShardSplit
from hanformer.errors import InputError
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.corpus import Document, expand_paths, iter_documents

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
_BATCH_DOCUMENTS = 512  # documents tokenized per call of the (parallel) tokenizer engine


@dataclass
class TokenStream:
    ids: np.ndarray  # int64, separators included
    documents: int
    sources: list[str]

    def require(self, minimum: int, what: str) -> None:
        """Refuse a stream too short to predict anything from (one line, naming the files)."""
        if len(self.ids) < minimum:
            names = ", ".join(self.sources[:3]) + (" ..." if len(self.sources) > 3 else "")
            raise InputError(f"{names}: the {what} text has {len(self.ids)} token(s) with separators; "
                             f"it needs at least {minimum}")


def separator_of(tokenizer: Tokenizer) -> int:
    sep = tokenizer.sep_token_id
    if sep is None:
        raise InputError("the tokenizer has no separator token ([SEP]), which marks where a document ends")
    return int(sep)


def text_stream(paths: Paths, tokenizer: Tokenizer, fmt: str = "auto") -> TokenStream:
    """The token stream of text files or folders (an empty file is a one-line InputError)."""
    files = expand_paths(paths)
    if not files:
        raise InputError(f"no input files in {paths}")
    separator = separator_of(tokenizer)
    chunks: list[np.ndarray] = []
    documents = 0
    for batch in _batches(doc for f in files for doc in iter_documents(f, fmt)):
        lines = [line for doc in batch for line in doc.lines]
        encodings = tokenizer.encode_batch(lines, add_special_tokens=False)
        at = 0
        for doc in batch:
            pieces = [enc.ids for enc in encodings[at:at + len(doc.lines)]]
            at += len(doc.lines)
            doc_ids = [i for p in pieces for i in p]
            if doc_ids:  # a document that tokenizes to nothing is left out, as `data prepare` does
                chunks.append(np.asarray([*doc_ids, separator], dtype=np.int64))
                documents += 1
    ids = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
    return TokenStream(ids, documents, [str(f) for f in files])


def _batches(docs: Iterator[Document]) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == _BATCH_DOCUMENTS:
            yield batch
            batch = []
    if batch:
        yield batch


def shard_stream(split: ShardSplit, separator: int) -> TokenStream:
    """GPT's packed stream of one shard split (`data/clm.py`), whole: a separator after every document."""
    tokens = np.asarray(split.tokens, dtype=np.int64)
    ends = np.asarray(split.sentences[np.asarray(split.documents[1:])], dtype=np.int64)
    return TokenStream(np.insert(tokens, ends, separator), split.n_documents, [str(split.dir)])
