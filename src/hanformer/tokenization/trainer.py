"""Train a WordPiece vocabulary from corpus files (plain text, wiki-extractor, JSON lines, TSV).

The counting and merging run in the `tokenizers` engine (Rust, all cores); Python only reads
the files (through `hanformer.utils.corpus`, so errors name file and line) and, with
`morpheme_split`, pre-splits Korean words with Kiwi so the vocabulary is learned on exactly the
pieces encoding will produce.

Training is deterministic: the same text and settings give the same vocabulary, run after run.
The engine alone does not: it numbers `##c` symbols in hash-map order as it meets them, and those
numbers break ties between merges of equal count, and its `limit_alphabet` cut breaks ties between
equally frequent characters arbitrarily. So a first, cheap pass counts the characters here, the
alphabet is chosen with a fixed tie-break, and every `##c` is numbered before the engine starts.

Words longer than `max_input_chars_per_word` are left out of training: encoding turns them into a
single [UNK] whatever the vocabulary holds, so counting them is wasted, and the engine's merging
takes quadratic time on one very long word (a million characters would never finish).
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import string
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import tokenizers
from tokenizers import trainers

from hanformer.errors import ConfigError, InputError
from hanformer.tokenization.config import UNK, TokenizerConfig
from hanformer.tokenization.model import CONTINUATION_PREFIX, build_wordpiece
from hanformer.tokenization.normalizer import build_normalizer
from hanformer.tokenization.pre_tokenizer import KiwiMorphemeSplitter, build_pre_tokenizer
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.corpus import expand_paths, iter_text_lines
from hanformer.utils.files import text_size


def train_tokenizer(
    files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    config: TokenizerConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
) -> Tokenizer:
    """Train a vocabulary on `files` (files or folders) and return the tokenizer; with `out_dir`,
    also save it there in the Hugging Face layout. Shows a progress bar over the input bytes."""
    config = config or TokenizerConfig()
    paths = expand_paths(files)
    total_bytes = sum(text_size(p) for p in paths)
    started = time.perf_counter()

    backend = tokenizers.Tokenizer(build_wordpiece({UNK: 0}, UNK, config.max_input_chars_per_word))
    backend.normalizer = build_normalizer(config)
    backend.pre_tokenizer = build_pre_tokenizer()

    def read_lines(counter: dict[str, int], desc: str) -> Iterator[str]:
        lines: Iterator[str] = iter_text_lines(paths, config.input_format, config.text_fields)
        if config.max_lines is not None:
            lines = itertools.islice(lines, config.max_lines)
        return _counted(lines, counter, total_bytes, progress, desc)

    long_words = _LongWords(config.max_input_chars_per_word)
    # With Kiwi, morphemes (not whitespace words) are what must fit, so the cut waits for the split.
    lines_with_long_words = None if config.morpheme_split else long_words
    alphabet, continuations, shortened = _choose_alphabet(
        read_lines({"lines": 0, "bytes": 0}, "counting characters"), backend.normalizer, config,
        lines_with_long_words)
    trainer = trainers.WordPieceTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=config.special_tokens + continuations,
        limit_alphabet=len(alphabet),
        initial_alphabet=alphabet,  # exactly these: the engine's own cut is not deterministic
        continuing_subword_prefix=CONTINUATION_PREFIX,
        # The engine's own bars cover counting and merging; ours covers reading.
        show_progress=progress and sys.stderr.isatty(),
    )
    counter = {"lines": 0, "bytes": 0}
    texts: Iterator[str] = read_lines(counter, "reading text")
    if config.morpheme_split:
        splitter = KiwiMorphemeSplitter()
        normalizer = backend.normalizer
        # Kiwi sees normalized text, exactly as it does when encoding.
        texts = map(long_words.drop, splitter.split_texts(normalizer.normalize_str(t) for t in texts))
    else:
        texts = long_words.drop_from_lines(texts, shortened)
    backend.train_from_iterator(texts, trainer=trainer)
    if counter["lines"] == 0:
        raise InputError(f"no text in {', '.join(map(str, paths))}")

    vocab = backend.get_vocab(with_added_tokens=True)
    if len(vocab) > config.vocab_size:
        raise ConfigError(
            f"vocab_size = {config.vocab_size} is smaller than the alphabet: the text has "
            f"{len(vocab) - len(config.special_tokens)} distinct base symbols (characters and ##characters) "
            f"plus {len(config.special_tokens)} special tokens; raise --vocab-size above {len(vocab)} "
            f"or lower --limit-alphabet{' (or pass --base-alphabet none)' if config.base_characters else ''}"
        )
    if config.complete_alphabet:
        vocab = _complete_alphabet(vocab, config)
    vocab = _canonical_ids(vocab, config.special_tokens)
    seconds = time.perf_counter() - started
    training = {"files": [p.name for p in paths], "bytes": counter["bytes"], "lines": counter["lines"],
                "seconds": round(seconds, 2)}
    tokenizer = Tokenizer.build(vocab, config, source="trained vocabulary", settings={"training": training})
    if out_dir is not None:
        tokenizer.save_pretrained(Path(out_dir))
    return tokenizer


class _LongWords:
    """Removes the words that encoding would turn into a single [UNK] for being longer than
    `max_input_chars_per_word` (counted, as the engine does, in characters of the normalized word
    that BERT's pre-tokenizer cuts at whitespace and at each punctuation character).

    Regular expressions find them in linear time: the engine's own pre-tokenizer costs about a
    second per million characters from Python, too slow to run on every long line."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._long_run = _long_run_pattern(limit)

    def drop(self, normalized: str) -> str:
        """`normalized` with each over-long word replaced by a space."""
        if len(normalized) <= self.limit:
            return normalized
        return self._long_run.sub(self._cut_run, normalized)

    def _cut_run(self, run: re.Match[str]) -> str:
        """A run of non-space characters longer than the limit, without its over-long words."""
        text = run.group()
        punctuation = "".join(sorted(c for c in set(text) if _is_punctuation(c)))
        if not punctuation:
            return " "
        return re.sub(f"[^{re.escape(punctuation)}]{{{self.limit + 1},}}", " ", text)

    def drop_from_lines(self, lines: Iterable[str], shortened: dict[int, str]) -> Iterator[str]:
        """The lines as read, except those numbered in `shortened` (by `_choose_alphabet`), which
        are given normalized and without their long words; normalizing again in the engine changes
        nothing, so their other words are counted exactly as before."""
        if not shortened:
            yield from lines
            return
        for number, line in enumerate(lines):
            yield shortened.get(number, line)


@functools.lru_cache(maxsize=4)
def _long_run_pattern(limit: int) -> re.Pattern[str]:
    # The characters Rust's `char::is_whitespace` (the pre-tokenizer's split) counts as spaces.
    spaces = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
    return re.compile(f"[^{spaces}]{{{limit + 1},}}")


def _choose_alphabet(lines: Iterable[str], normalizer: tokenizers.normalizers.Normalizer,
                     config: TokenizerConfig, long_words: _LongWords | None = None,
                     ) -> tuple[list[str], list[str], dict[int, str]]:
    """The base characters, and the `##c` symbols to hand the engine up front so that it numbers
    them in this fixed order instead of in hash-map order; and, with `long_words`, the lines that
    held words too long to encode, by number, normalized and without them (those words' characters
    are not counted either).

    The alphabet: the configured base characters, then the most frequent characters of the
    normalized text up to `limit_alphabet`, ties broken by code point (the engine's choice, minus
    its arbitrary tie-break). The `##c` symbols: every alphabet character seen inside a
    whitespace-separated word, most frequent first, punctuation excepted (the pre-tokenizer makes
    it a word of its own; ideographs the normalizer already spaced out). At most half of the room
    the alphabet leaves, as `_complete_alphabet` allows; beyond that, on tiny vocabularies, ties
    may still be broken differently from run to run."""
    counts: Counter[str] = Counter()
    initial: Counter[str] = Counter()
    shortened: dict[int, str] = {}
    for number, line in enumerate(lines):
        text = normalizer.normalize_str(line)
        if long_words is not None:
            shorter = long_words.drop(text)
            if shorter != text:
                shortened[number] = text = shorter
        counts.update(text)
        initial.update(word[0] for word in text.split())
    base = sorted({c for c in map(normalizer.normalize_str, config.base_characters) if len(c) == 1})
    rest = sorted((c for c in counts if c not in base and not c.isspace()), key=lambda c: (-counts[c], c))
    alphabet = sorted((base + rest)[:config.limit_alphabet])
    inside = {c: counts[c] - initial[c] for c in alphabet if counts[c] > initial[c] and not _is_punctuation(c)}
    room = (config.vocab_size - len(config.special_tokens) - len(alphabet)) // 2
    continuations = sorted(inside, key=lambda c: (-inside[c], c))[:max(0, room)]
    return alphabet, [f"{CONTINUATION_PREFIX}{c}" for c in continuations], shortened


def _is_punctuation(char: str) -> bool:
    """Punctuation as BERT's pre-tokenizer sees it: Unicode P* plus every ASCII symbol."""
    return unicodedata.category(char).startswith("P") or (ord(char) < 128 and char in string.punctuation)


def _complete_alphabet(vocab: dict[str, int], config: TokenizerConfig) -> dict[str, int]:
    """Add `##c` for every base character `c` that only has its word-initial form.

    Without it, `싫` known only at word starts makes `안싫어` a whole-word [UNK]. Room is made by
    dropping the last merges the trainer made (the engine numbers merged tokens in merge order,
    so the highest ids are the least frequent pieces)."""
    specials = set(config.special_tokens)
    missing = [f"{CONTINUATION_PREFIX}{t}" for t in sorted(vocab)
               if len(t) == 1 and t not in specials and f"{CONTINUATION_PREFIX}{t}" not in vocab]
    if not missing:
        return vocab
    merged = sorted((t for t in vocab if len(t.removeprefix(CONTINUATION_PREFIX)) > 1), key=vocab.__getitem__)
    # Best effort on tiny vocabularies: never give up more than half of the merged pieces.
    room = max(0, config.vocab_size - len(vocab)) + len(merged) // 2
    missing = missing[:room]
    drop = max(0, len(vocab) + len(missing) - config.vocab_size)
    dropped = set(merged[len(merged) - drop:])
    kept = [t for t in sorted(vocab, key=vocab.__getitem__) if t not in dropped]
    return {t: i for i, t in enumerate(kept + missing)}


def _canonical_ids(vocab: dict[str, int], specials: list[str]) -> dict[str, int]:
    """Renumber the vocabulary in a fixed order: special tokens, characters, ##characters, then
    longer pieces by text. The engine numbers tokens in hash-map order, which changes from run
    to run; WordPiece only matches strings, so a canonical numbering loses nothing and makes the
    same vocabulary always get the same ids."""
    def key(token: str) -> tuple[bool, bool, str]:
        body = token.removeprefix(CONTINUATION_PREFIX)
        return len(body) > 1, token.startswith(CONTINUATION_PREFIX), body

    rest = sorted((t for t in vocab if t not in specials), key=key)
    return {t: i for i, t in enumerate([*specials, *rest])}


def _counted(lines: Iterable[str], counter: dict[str, int], total_bytes: int, progress: bool,
             desc: str) -> Iterator[str]:
    from tqdm.auto import tqdm

    with tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
              disable=not progress, mininterval=0.5) as bar:
        pending = 0
        for line in lines:
            counter["lines"] += 1
            size = len(line.encode("utf-8")) + 1
            counter["bytes"] += size
            pending += size
            if pending > 1 << 20:  # update every MiB: tqdm calls cost more than counting
                bar.update(pending)
                pending = 0
            yield line
        bar.update(pending)
