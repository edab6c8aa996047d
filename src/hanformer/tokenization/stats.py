"""Measure a tokenizer on real text: [UNK] rate, tokens per word (eojeol), vocabulary facts.

The same numbers serve `hanformer tokenizer stats` and the main-job report, so they are
computed in one place.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from hanformer.errors import InputError
from hanformer.tokenization.model import CONTINUATION_PREFIX
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.corpus import iter_text_lines


@dataclasses.dataclass
class TokenizerStats:
    """What `tokenizer_stats` measured. An eojeol is a whitespace-separated word, the unit Korean
    writing spaces by, so `tokens_per_eojeol` compares tokenizers across languages and options."""

    lines: int
    characters: int
    eojeols: int
    tokens: int
    unk_tokens: int
    unk_rate: float  # [UNK] tokens / all tokens (special tokens not counted)
    eojeols_with_unk: int
    tokens_per_eojeol: float
    characters_per_token: float
    vocab_size: int
    continuation_tokens: int  # vocabulary entries starting with ##
    hangul_tokens: int  # vocabulary entries containing a Hangul syllable
    special_tokens: int
    decomposes_hangul: bool
    morpheme_split: bool
    vocab_hash: str

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def format(self) -> str:
        """A small aligned table for the terminal."""
        rows = [
            ("lines", f"{self.lines:,}"),
            ("eojeols (space-separated words)", f"{self.eojeols:,}"),
            ("tokens (no specials)", f"{self.tokens:,}"),
            ("[UNK] tokens", f"{self.unk_tokens:,}  ({100 * self.unk_rate:.3f}% of tokens)"),
            ("eojeols containing [UNK]", f"{self.eojeols_with_unk:,}  ({100 * self.eojeols_with_unk / max(1, self.eojeols):.3f}%)"),
            ("tokens per eojeol", f"{self.tokens_per_eojeol:.3f}"),
            ("characters per token", f"{self.characters_per_token:.3f}"),
            ("vocabulary size", f"{self.vocab_size:,}"),
            ("  ## continuation entries", f"{self.continuation_tokens:,}"),
            ("  entries with Hangul", f"{self.hangul_tokens:,}"),
            ("  special tokens", f"{self.special_tokens}"),
            ("Hangul decomposed to jamo", "YES (this normalizer strips accents)" if self.decomposes_hangul else "no"),
            ("Kiwi morpheme split", "on" if self.morpheme_split else "off"),
            ("vocab hash", self.vocab_hash[:16]),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def tokenizer_stats(
    tokenizer: Tokenizer | str | os.PathLike[str],
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    texts: Iterable[str] | None = None,
    input_format: str = "auto",
    text_fields: Sequence[str] = ("text",),
    max_lines: int | None = None,
    batch_size: int = 2000,
    progress: bool = False,
) -> TokenizerStats:
    """Encode the lines of `inputs` (files/folders, read like training data) or of `texts`, and count.

    `max_lines` bounds the work on big corpora (the first lines are used, deterministically).
    """
    if not isinstance(tokenizer, Tokenizer):
        tokenizer = Tokenizer.from_pretrained(tokenizer)
    if (inputs is None) == (texts is None):
        raise InputError("give either input files or texts to measure, not both or neither")
    lines: Iterator[str] = iter(texts) if texts is not None else iter_text_lines(
        inputs, input_format, text_fields, include_titles=False)  # type: ignore[arg-type]
    if max_lines is not None:
        lines = islice(lines, max_lines)
    unk = tokenizer.unk_token_id
    n_lines = chars = eojeols = tokens = unks = eojeols_unk = 0
    from tqdm.auto import tqdm

    with tqdm(total=max_lines, unit=" lines", desc="measuring", disable=not progress) as bar:
        while raw := list(islice(lines, batch_size)):
            batch = [t for t in raw if t.strip()]
            encs = tokenizer.encode_batch(batch, add_special_tokens=False)
            for text, enc in zip(batch, encs, strict=True):
                words = text.split()
                n_lines += 1
                chars += len(text)
                eojeols += len(words)
                ids = enc.ids
                tokens += len(ids)
                if unk in ids:
                    unk_ends = {end for tid, (_, end) in zip(ids, enc.offsets, strict=True) if tid == unk}
                    unks += sum(1 for tid in ids if tid == unk)
                    eojeols_unk += _words_hit(text, unk_ends)
            bar.update(len(raw))
    if tokens == 0:
        raise InputError("no text to measure (the inputs are empty)")
    vocab = tokenizer.get_vocab()
    return TokenizerStats(
        lines=n_lines, characters=chars, eojeols=eojeols, tokens=tokens, unk_tokens=unks,
        unk_rate=unks / tokens, eojeols_with_unk=eojeols_unk, tokens_per_eojeol=tokens / max(1, eojeols),
        characters_per_token=chars / tokens, vocab_size=tokenizer.vocab_size,
        continuation_tokens=sum(1 for t in vocab if t.startswith(CONTINUATION_PREFIX)),
        hangul_tokens=sum(1 for t in vocab if any("\uac00" <= c <= "\ud7a3" for c in t)),
        special_tokens=len(tokenizer.all_special_tokens), decomposes_hangul=tokenizer.decomposes_hangul,
        morpheme_split=tokenizer.morpheme_split, vocab_hash=tokenizer.vocab_hash,
    )


def _words_hit(text: str, ends: set[int]) -> int:
    """How many whitespace-separated words of `text` contain one of the character positions `ends`."""
    hit, start = 0, 0
    for word in text.split():
        start = text.index(word, start)
        stop = start + len(word)
        if any(start < e <= stop for e in ends):
            hit += 1
        start = stop
    return hit
