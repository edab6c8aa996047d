"""A word-for-word toy "language pair" for the translation tests: each English word has one
German word, in the same order, so a tiny model learns it in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LEXICON = {"the": "der", "cat": "Katze", "dog": "Hund", "sees": "sieht", "big": "groß", "small": "klein",
           "red": "rot", "bird": "Vogel", "eats": "frisst", "fish": "Fisch", "runs": "läuft", "home": "Haus"}


def toy_pairs(n: int, seed: int, lexicon: dict[str, str] = LEXICON) -> list[tuple[str, str]]:
    """`n` (English, German) sentences of 2 to 5 words, seeded."""
    rng = np.random.default_rng(seed)
    words = list(lexicon)
    pairs = []
    for _ in range(n):
        source = [words[i] for i in rng.integers(0, len(words), int(rng.integers(2, 6)))]
        pairs.append((" ".join(source), " ".join(lexicon[w] for w in source)))
    return pairs


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
