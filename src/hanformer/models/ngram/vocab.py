"""The vocabulary of an n-gram model: words (or word pieces) to dense integer ids.

Ids 0, 1 and 2 are always `<unk>`, `<s>` and `</s>`, as in KenLM, so the counting arrays and
the ARPA tables agree on them without a lookup; the words of the training text follow in the
order they were first seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = (UNK, BOS, EOS)


class Vocabulary:
    """Words <-> ids. `add_all` grows it (training); `ids` maps unknown words to `<unk>` (scoring)."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        self._words: list[str] = list(SPECIALS)
        self._index: dict[str, int] = {w: i for i, w in enumerate(SPECIALS)}
        for word in words:
            if word not in self._index:
                self._index[word] = len(self._words)
                self._words.append(word)

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: str) -> bool:
        return word in self._index

    @property
    def words(self) -> list[str]:
        return self._words

    @property
    def index(self) -> dict[str, int]:
        """word -> id (aliases included); read-only by convention, for fast bulk lookups."""
        return self._index

    def alias(self, word: str, target: str) -> None:
        """Read `word` as `target` (a tokenizer's '[UNK]' as '<unk>'), without a word of its own."""
        self._index[word] = self._index[target]

    def add_all(self, tokens: Sequence[str]) -> list[int]:
        """Ids of `tokens`, giving new words the next free ids."""
        index, words = self._index, self._words
        out = []
        for token in tokens:
            i = index.get(token)
            if i is None:
                i = index[token] = len(words)
                words.append(token)
            out.append(i)
        return out

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of `tokens`; words the model never saw become `<unk>`."""
        get = self._index.get
        return [get(t, UNK_ID) for t in tokens]

    def id_of(self, word: str) -> int | None:
        return self._index.get(word)

    def words_of(self, ids: np.ndarray | Sequence[int]) -> list[str]:
        words = self._words
        return [words[i] for i in np.asarray(ids).tolist()]
