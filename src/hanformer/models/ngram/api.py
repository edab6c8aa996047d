"""Train, save, load and use an n-gram model: the functions the `hanformer ngram` commands call.

A trained model is a folder:

    model.arpa     the model itself (ARPA back-off format; KenLM and SRILM read it)
    config.json    order, smoothing, discounts, units, tokenizer reference, vocabulary size, counts
    tokenizer/     a copy of the tokenizer, when the model counts word pieces
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hanformer.errors import CheckpointError, ConfigError, InputError
from hanformer.models.ngram.arpa import read_arpa, write_arpa
from hanformer.models.ngram.config import DEFAULT_K, NgramConfig, check_config
from hanformer.models.ngram.corpus import (
    Paths,
    PieceSplitter,
    Splitter,
    TokenStream,
    WordSplitter,
    read_stream,
)
from hanformer.models.ngram.counts import count_ngrams
from hanformer.models.ngram.model import NgramModel, Scores
from hanformer.models.ngram.smoothing import Estimate, estimate
from hanformer.models.ngram.vocab import UNK, Vocabulary
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.config import load_json_object
from hanformer.utils.corpus import expand_paths
from hanformer.utils.files import atomic_write_json, check_output_file

ARPA_FILE, CONFIG_FILE, TOKENIZER_DIR = "model.arpa", "config.json", "tokenizer"
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    model: NgramModel
    config: dict[str, Any]
    splitter: Splitter
    folder: Path | None  # where it is saved; None for a model only in memory


# ----------------------------------------------------------------------------------- training
def train_ngram(files: Paths, config: NgramConfig, out_dir: str | os.PathLike[str] | None = None) -> LoadedModel:
    """Count `files` and estimate the model; with `out_dir`, save it there (see the module doc)."""
    check_config(config)
    if out_dir is not None:
        check_output_file(Path(out_dir) / CONFIG_FILE, "--output")
    started = time.perf_counter()
    splitter = _splitter(config.tokenizer)
    vocab = Vocabulary()
    splitter.prepare(vocab)
    paths = expand_paths(files)
    stream = read_stream(paths, splitter, vocab, grow=True, fmt=config.input_format)
    _check_long_enough(stream, config.order, paths)
    tables = count_ngrams(stream.ids, config.order, len(vocab))
    k = config.k if config.k is not None else DEFAULT_K
    found = estimate(tables, len(vocab), config.smoothing, k=k, discount=config.discount)
    model = NgramModel(vocab, [t.keys for t in tables], found.logprob, found.backoff)
    record = _record(config, k, found, splitter, stream, [len(t) for t in tables], paths)
    record["training"]["seconds"] = round(time.perf_counter() - started, 3)
    loaded = LoadedModel(model, record, splitter, None)
    if out_dir is not None:
        save_ngram(loaded, out_dir)
    return loaded


def _splitter(tokenizer: str | None) -> Splitter:
    return PieceSplitter(Tokenizer.from_pretrained(tokenizer)) if tokenizer else WordSplitter()


def _check_long_enough(stream: TokenStream, order: int, paths: list[Path]) -> None:
    longest = stream.longest_sentence()
    if longest + 2 < order:
        names = ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
        raise InputError(f"{names}: the longest sentence (line) has {longest} word(s), so with <s> and </s> no "
                         f"sentence holds an {order}-gram; use --order {longest + 2} or less, or more text")


def _record(config: NgramConfig, k: float, found: Estimate, splitter: Splitter, stream: TokenStream,
            ngrams: list[int], paths: list[Path]) -> dict[str, Any]:
    tokenizer = None
    if isinstance(splitter, PieceSplitter):
        tokenizer = {"source": str(config.tokenizer), "vocab_hash": splitter.tokenizer.vocab_hash,
                     "folder": TOKENIZER_DIR}
    return {
        "model_type": "ngram",
        "format_version": FORMAT_VERSION,
        "order": config.order,
        "smoothing": config.smoothing,
        "k": k if config.smoothing == "addk" else None,
        "discounts": {str(i): d for i, d in enumerate(found.discounts, start=1)} if config.smoothing != "addk" else None,
        # Orders whose count-of-counts gave no valid discount: they use KenLM's --discount_fallback
        # (0.5, 1, 1.5; absolute discounting 0.5).
        "discount_fallback_orders": found.fallback_orders,
        "units": splitter.units,
        "tokenizer": tokenizer,
        "vocab_size": ngrams[0],  # every word of the vocabulary is a 1-gram
        "arpa": ARPA_FILE,
        "training": {"files": [str(p) for p in paths], "input_format": config.input_format,
                     "sentences": stream.sentences, "words": stream.words, "tokens": stream.words + stream.sentences,
                     "ngrams": ngrams},
    }


# ------------------------------------------------------------------------------ save and load
def save_ngram(loaded: LoadedModel, out_dir: str | os.PathLike[str]) -> Path:
    """Write the folder; config.json goes last, so a folder with one holds a complete model."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # Retraining into a folder: without its old config.json the folder reads as unfinished
    # until the new one is complete, instead of pairing the old record with the new ARPA file.
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    write_arpa(folder / ARPA_FILE, loaded.model)
    if isinstance(loaded.splitter, PieceSplitter):
        loaded.splitter.tokenizer.save_pretrained(folder / TOKENIZER_DIR)
    atomic_write_json(folder / CONFIG_FILE, loaded.config)
    loaded.folder = folder
    return folder


def load_ngram(model_dir: str | os.PathLike[str]) -> LoadedModel:
    folder = Path(model_dir)
    if not (folder / CONFIG_FILE).is_file():
        raise CheckpointError(f"{folder}: no {CONFIG_FILE}, so not an n-gram model folder "
                              "(make one with `hanformer ngram train ... --output DIR`)")
    config = load_json_object(folder / CONFIG_FILE)
    if config.get("model_type") != "ngram":
        raise CheckpointError(f"{folder / CONFIG_FILE}: model_type is {config.get('model_type')!r}, not 'ngram'")
    model = read_arpa(folder / str(config.get("arpa", ARPA_FILE)))
    for name, actual in (("order", model.order), ("vocab_size", model.vocab_size)):
        if config.get(name) != actual:
            raise CheckpointError(f"{folder / CONFIG_FILE}: {name} is {config.get(name)} but the ARPA file has "
                                  f"{actual}; the folder mixes two models (train it again)")
    splitter = _saved_splitter(folder, config)
    splitter.prepare(model.vocab)
    return LoadedModel(model, config, splitter, folder)


def _saved_splitter(folder: Path, config: dict[str, Any]) -> Splitter:
    reference = config.get("tokenizer")
    if not reference:
        return WordSplitter()
    splitter = PieceSplitter(Tokenizer.from_pretrained(folder / str(reference.get("folder", TOKENIZER_DIR))))
    if splitter.tokenizer.vocab_hash != reference.get("vocab_hash"):
        raise CheckpointError(f"{folder / TOKENIZER_DIR}: this tokenizer is not the one the model was counted "
                              "with (vocab_hash differs); restore the folder or train the model again")
    return splitter


def _model(model: LoadedModel | str | os.PathLike[str]) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_ngram(model)


# ------------------------------------------------------------------------------------- using
def score_files(model: LoadedModel | str | os.PathLike[str], files: Paths, input_format: str = "auto") -> Scores:
    """KenLM-style scores of held-out text (one sentence per non-empty line)."""
    loaded = _model(model)
    paths = expand_paths(files)
    stream = read_stream(paths, loaded.splitter, loaded.model.vocab, grow=False, fmt=input_format)
    if stream.words and stream.oov == stream.words:
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"{names}: all {stream.words} words are unknown to the model (each would be {UNK}), so a "
                         "perplexity would measure nothing but <unk> and </s>; score text in the language and "
                         f"units the model was trained on ({_units(loaded.config)})")
    return loaded.model.score(stream)


def _units(config: dict[str, Any]) -> str:
    tokenizer = config.get("tokenizer")
    return f"word pieces of {tokenizer['source']}" if tokenizer else "whitespace words"


def perplexity(model: LoadedModel | str | os.PathLike[str], files: Paths, input_format: str = "auto") -> dict[str, Any]:
    loaded = _model(model)
    scores = score_files(loaded, files, input_format)
    return {"model": None if loaded.folder is None else str(loaded.folder), "files": [str(p) for p in expand_paths(files)], **scores.summary(),
            "oov_rate": scores.oov / scores.words if scores.words else 0.0}


def sample_sentences(model: LoadedModel | str | os.PathLike[str], num: int = 5, seed: int = 0,
                     max_words: int = 100) -> list[str]:
    if num < 1:
        raise ConfigError(f"--num {num}: ask for at least one sentence")
    if max_words < 1:
        raise ConfigError(f"--max-words {max_words}: must be at least 1")
    loaded = _model(model)
    rng = np.random.default_rng(seed)
    words = loaded.model.vocab.words
    return [loaded.splitter.join([words[i] for i in loaded.model.sample(rng, max_words)]) for _ in range(num)]


def export_arpa(model: LoadedModel | str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    loaded = _model(model)
    check_output_file(path, "--arpa", inputs=[loaded.folder / ARPA_FILE] if loaded.folder else [])
    write_arpa(path, loaded.model)
    return Path(path)


def config_summary(loaded: LoadedModel) -> dict[str, Any]:
    """What `hanformer ngram train` prints."""
    return {key: loaded.config[key] for key in ("order", "smoothing", "k", "discounts", "discount_fallback_orders",
                                                 "units", "vocab_size", "training")}

