"""`prepare_data`: raw text -> sentences -> token ids -> shards (train + held-out valid).

Documents are read with `hanformer.data.readers`, split into sentences (see `sentences.py`;
with `workers > 1` in a process pool, which pays off for the Kiwi splitter), tokenized in
batches by the `tokenizers` engine (parallel in Rust) and appended to the shard files. Which
documents are held out depends only on their content and the seed (a hash of title and first
line), so the split survives reordering or adding input files.

The shards are written to a hidden folder beside the output (`.NAME.partial-PID-*`) that takes the
output's place, by renames, only once complete; a run that is killed leaves that folder behind,
and the next run into the same output removes it (once no process of that number is alive).
"""

from __future__ import annotations

import glob
import hashlib
import multiprocessing
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hanformer.data.prepare_config import PrepareConfig
from hanformer.data.readers import Document, expand_paths, iter_documents
from hanformer.data.sentences import get_splitter, split_document
from hanformer.data.shards import FORMAT, FORMAT_VERSION, ShardWriter, token_dtype
from hanformer.entities.inputs import EntityInputs
from hanformer.entities.tokens import entity_tokenizer
from hanformer.errors import InputError
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.config import config_to_dict
from hanformer.utils.files import atomic_write_json

# Whitespace code points that separate words (eojeol) in running text.
_SPACES = (9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
           *range(0x2000, 0x200B))


def held_out(doc: Document, seed: int, fraction: float) -> bool:
    key = f"{seed}\0{doc.title or ''}\0{doc.lines[0] if doc.lines else ''}".encode()
    u = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") / 2**64
    return u < fraction


def _documents(paths: list[Path], cfg: PrepareConfig) -> Iterator[Document]:
    n = 0
    for p in paths:
        for doc in iter_documents(p, cfg.format, cfg.text_fields):
            yield doc
            n += 1
            if cfg.max_documents and n >= cfg.max_documents:
                return


def _chunks(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    chunk: list[Document] = []
    for d in docs:
        chunk.append(d)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_worker_splitter = None


def _init_worker(name: str) -> None:
    global _worker_splitter  # one splitter per worker process (Kiwi loads once)
    _worker_splitter = get_splitter(name)


def _split_in_worker(lines: list[str]) -> list[str]:
    return split_document(lines, _worker_splitter)  # type: ignore[arg-type]


def encode_sentences(backend: Any, sentences: list[str], entities: EntityInputs | None = None
                     ) -> list[tuple[Any, Any]]:
    """Token ids and word-start flags of each sentence (a token starts a word when it is the
    first of the sentence or follows whitespace in the text), with `entities` marked in the ids
    when given."""
    if not sentences:
        return []
    encs = backend.encode_batch(sentences, add_special_tokens=False)
    pieces = [(e.ids, e.offsets) for e in encs]
    if entities is not None:
        marked = entities.mark(sentences, [i for i, _ in pieces], [o for _, o in pieces])
        pieces = [(m.ids, m.offsets) for m in marked]
    joined = "\n".join(sentences)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    after_space = np.ones(len(codes) + 1, dtype=bool)
    after_space[1:] = np.isin(codes, np.array(_SPACES, dtype=np.uint32))
    out = []
    base = 0
    for sent, (piece_ids, offsets) in zip(sentences, pieces, strict=True):
        ids = np.asarray(piece_ids, dtype=np.int64)
        if len(ids):
            starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(ids))
            ws = after_space[base + starts]
            ws[starts == 0] = True
        else:
            ws = np.zeros(0, dtype=bool)
        out.append((ids, ws))
        base += len(sent) + 1
    return out


def prepare_data(files: str | Path | Iterable[str | Path], tokenizer_dir: str | Path, out_dir: str | Path,
                 config: PrepareConfig | None = None) -> dict[str, Any]:
    """Tokenize `files` (files or folders) with the tokenizer in `tokenizer_dir` into shards in
    `out_dir` (replaced atomically when it already holds shards). Returns a summary dict."""
    cfg = config or PrepareConfig()
    cfg.validate()
    paths = expand_paths(files)
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir)
    entities = None
    if cfg.entity.enabled:  # the markers join the vocabulary; the shards' tokenizer records how they were found
        tokenizer = entity_tokenizer(tokenizer, cfg.entity)
        entities = EntityInputs(cfg.entity, tokenizer.backend)
    out = Path(out_dir)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / "meta.json").is_file())):
        raise InputError(f"output {out} exists and is not a shard directory; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out)
    tmp = _partial_dir(out)
    started = time.perf_counter()
    try:
        writers = {s: ShardWriter(tmp / s, tokenizer.vocab_size) for s in ("train", "valid")}
        # The engine's offsets are off at the ends of composed characters (NFD input), never at
        # their starts, which are all the word-start flags use.
        backend = tokenizer.backend
        pool = None
        splitter = get_splitter(cfg.splitter) if cfg.workers == 1 else None
        if cfg.workers > 1:
            pool = multiprocessing.get_context("spawn").Pool(cfg.workers, _init_worker, (cfg.splitter,))
        bar = tqdm(unit="doc", desc="prepare", disable=not cfg.progress, dynamic_ncols=True)
        pending: list[tuple[Any, Any]] | None = None  # the last train doc, written late
        n_read = n_tokens = 0
        try:
            for chunk in _chunks(_documents(paths, cfg), cfg.batch_documents):
                bodies = [([d.title] if cfg.include_titles and d.title else []) + d.lines for d in chunk]
                if pool is not None:
                    sentences = pool.map(_split_in_worker, bodies, chunksize=max(1, len(bodies) // (4 * cfg.workers)))
                else:
                    sentences = [split_document(b, splitter) for b in bodies]  # type: ignore[arg-type]
                flat = [s for doc in sentences for s in doc]
                encoded = encode_sentences(backend, flat, entities)
                pos = 0
                for doc, sents in zip(chunk, sentences, strict=True):
                    enc = [e for e in encoded[pos:pos + len(sents)] if len(e[0])]
                    pos += len(sents)
                    if not enc:
                        continue
                    n_tokens += sum(len(e[0]) for e in enc)
                    if held_out(doc, cfg.seed, cfg.valid_fraction):
                        writers["valid"].add_document(enc)
                    else:
                        if pending is not None:
                            writers["train"].add_document(pending)
                        pending = enc
                n_read += len(chunk)
                bar.update(len(chunk))
                bar.set_postfix(tokens=f"{n_tokens:,}", refresh=False)
        finally:
            bar.close()
            if pool is not None:
                pool.close()
                pool.join()
        if pending is not None:
            # Guarantee a held-out document even for tiny corpora.
            target = "valid" if writers["valid"].n_documents == 0 and writers["train"].n_documents > 0 else "train"
            writers[target].add_document(pending)
        counts = {s: w.close() for s, w in writers.items()}
        total_docs = counts["train"]["documents"] + counts["valid"]["documents"]
        if counts["train"]["documents"] < 1 or counts["valid"]["documents"] < 1:
            raise InputError(
                f"corpus too small: {n_read} documents read, {total_docs} with text, {n_tokens} tokens in "
                f"{', '.join(map(str, paths))}; pretraining needs at least 2 documents (one is held out "
                f"for evaluation), and in practice thousands")
        train_tokens = np.memmap(tmp / "train" / "tokens.bin", dtype=token_dtype(tokenizer.vocab_size), mode="r")
        counts_arr = np.bincount(train_tokens, minlength=tokenizer.vocab_size).astype(np.int64)
        del train_tokens
        np.save(tmp / "token_counts.npy", counts_arr)
        tokenizer.save_pretrained(tmp / "tokenizer")
        elapsed = time.perf_counter() - started
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "vocab_hash": tokenizer.vocab_hash, "vocab_size": tokenizer.vocab_size,
            "dtype": token_dtype(tokenizer.vocab_size).name,
            "special_ids": {"pad": tokenizer.pad_token_id, "unk": tokenizer.unk_token_id,
                            "cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id,
                            "mask": tokenizer.mask_token_id},
            "all_special_ids": tokenizer.all_special_ids,
            "splits": counts, "documents_read": n_read,
            "inputs": [str(p) for p in paths], "config": config_to_dict(cfg),
            "seconds": round(elapsed, 2),
        }
        atomic_write_json(tmp / "meta.json", meta)
        _replace(out, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out_dir": str(out), "documents_read": n_read, "splits": counts, "seconds": round(elapsed, 2),
            "tokens_per_s": round(n_tokens / max(elapsed, 1e-9))}


_PARTIAL = "partial"


def _partial_dir(out: Path) -> Path:
    """A new hidden folder beside `out`, named with this process's id so that a later run can
    tell whether the run that made it is still alive."""
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.{_PARTIAL}-{os.getpid()}-", dir=out.parent))


def remove_stale_partials(out: Path) -> list[Path]:
    """Remove the hidden folders that killed runs into `out` left beside it; returns them.
    Folders of a run still in progress (its process is alive) are left alone."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.{_PARTIAL}-(\d+)-[^/]+")
    removed = []
    for path in sorted(out.parent.glob(f".{glob.escape(out.name)}.{_PARTIAL}-*")):
        match = pattern.fullmatch(path.name)
        if match is None or not path.is_dir() or _process_alive(int(match.group(1))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own earlier run in this process finished or failed: its folder is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def _replace(out: Path, complete: Path) -> None:
    """Put the complete folder `complete` in the place of `out` by renames only: `out` is at every
    moment the old shards, absent, or the new ones, never half of either. The old shards go
    to a partial folder first, so a kill before they are deleted leaves them to the next run's
    clean-up."""
    trash = None
    if out.exists():
        trash = _partial_dir(out)
        out.rename(trash / out.name)
    complete.rename(out)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def describe(summary: dict[str, Any]) -> str:
    s = summary["splits"]
    return (f"wrote {summary['out_dir']}: train {s['train']['documents']:,} documents / "
            f"{s['train']['sentences']:,} sentences / {s['train']['tokens']:,} tokens; held out "
            f"{s['valid']['documents']:,} documents / {s['valid']['tokens']:,} tokens "
            f"({summary['seconds']} s, {summary['tokens_per_s']:,} tokens/s)")


__all__ = ["PrepareConfig", "describe", "prepare_data"]
