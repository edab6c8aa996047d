"""Stage 2, pre-tokenization: split normalized text into words before WordPiece sees it.

The default is BERT's rule (whitespace, then every punctuation character on its own). With
`morpheme_split`, Korean words are first cut at Kiwi's morpheme boundaries, so `학교에서` becomes
`학교` + `에서` and particles/endings are learned once instead of glued to every stem.

The Kiwi step is Python code, which `tokenizer.json` cannot store. So the saved file keeps
the BERT pre-tokenizer (any `tokenizers`/`transformers` loader can read it), the option is
recorded in tokenizer_config.json, and `hanformer.Tokenizer` re-attaches Kiwi on load.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator
from typing import Any, cast

from tokenizers import NormalizedString, PreTokenizedString, pre_tokenizers

from hanformer.errors import ConfigError
from hanformer.tokenization.hf_file import word_split_after_morphemes

# Kiwi is given bounded pieces of text: its cost grows with the length of what it analyses.
_CHUNK_CHARS = 2000


def build_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """The serializable part: BERT's whitespace + punctuation split."""
    return pre_tokenizers.BertPreTokenizer()


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"


def _chunks(text: str, size: int = _CHUNK_CHARS) -> Iterator[tuple[int, str]]:
    """(start, piece) pieces of at most about `size` characters, cut at whitespace when possible."""
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut + 1 if cut > 0 else end
        yield start, text[start:end]
        start = end


class KiwiMorphemeSplitter:
    """Finds morpheme boundaries with Kiwi and serves both as a `tokenizers` pre-tokenizer
    (`pre_tokenize`) and as a text pre-splitter for training (`split_texts`), so the vocabulary
    is trained on exactly the pieces that encoding will later produce."""

    def __init__(self) -> None:
        self._analyser: tuple[Any, threading.Lock] | None = None

    @property
    def kiwi(self) -> Any:
        if self._analyser is None:
            self._analyser = _load_kiwi()
        return self._analyser[0]

    def boundaries(self, text: str) -> list[int]:
        """Character positions inside a word (no whitespace either side, Hangul on at least one
        side) where Kiwi puts a morpheme boundary."""
        cuts: set[int] = set()
        kiwi = self.kiwi
        with self._analyser[1]:  # type: ignore[index]  # the engine may call us from several threads
            for offset, piece in _chunks(text):
                for tok in kiwi.tokenize(piece):
                    cuts.add(offset + tok.start)
                    cuts.add(offset + tok.start + tok.len)
        return [
            i for i in sorted(cuts)
            if 0 < i < len(text) and not text[i - 1].isspace() and not text[i].isspace()
            and (_is_hangul(text[i - 1]) or _is_hangul(text[i]))
        ]

    def split_text(self, text: str) -> str:
        """`text` with a space inserted at each morpheme boundary (used to train the vocabulary)."""
        out, last = [], 0
        for cut in self.boundaries(text):
            out.append(text[last:cut])
            last = cut
        out.append(text[last:])
        return " ".join(out)

    def split_texts(self, texts: Iterable[str]) -> Iterator[str]:
        for text in texts:
            yield self.split_text(text)

    # -- the `tokenizers` custom pre-tokenizer protocol --
    def _split(self, _index: int, normalized: NormalizedString) -> list[NormalizedString]:
        text = str(normalized)
        edges = [0, *self.boundaries(text), len(text)]
        # Slicing a NormalizedString keeps the alignment to the original text, so offsets stay exact.
        # A slice is None only out of range; these lie inside the text.
        return cast(list[NormalizedString],
                    [normalized[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a])

    def pre_tokenize(self, pretok: PreTokenizedString) -> None:
        pretok.split(self._split)


@functools.lru_cache(maxsize=1)
def _load_kiwi() -> tuple[Any, threading.Lock]:
    """The analyser's model takes seconds and a few hundred MB to load and is read-only, so one
    instance (with one lock) serves every tokenizer in the process."""
    try:
        from kiwipiepy import Kiwi
    except ImportError:
        raise ConfigError(
            "morpheme_split needs the Korean analyser kiwipiepy: pip install 'hanformer[korean]'"
        ) from None
    return Kiwi(), threading.Lock()


def attach_morpheme_splitter(backend: Any, splitter: KiwiMorphemeSplitter) -> None:
    """Run Kiwi first on the whole normalized text (it needs context), then the tokenizer's own
    word split (BERT's for our files; byte-level or metaspace for BPE and Unigram ones)."""
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.PreTokenizer.custom(splitter), word_split_after_morphemes(backend, build_pre_tokenizer())])
