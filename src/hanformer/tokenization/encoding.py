"""`Encoding`: one encoded text or text pair, the engine's encoding with offsets that index the
caller's text (through the alignments of text the tokenizer composed in Python)."""

from __future__ import annotations

import tokenizers

from hanformer.tokenization.alignment import Alignment, PairAlignment


class Encoding:
    """One encoded text or text pair: a thin, lazy view of the engine's encoding.

    `offsets` are (start, end) character positions in the *original* text of the sequence the
    token came from ((0, 0) for special tokens); `word_ids` number the pre-tokenized words of each
    sequence (None for special tokens); `sequence_ids` say which sequence (0 or 1) a token belongs to.
    """

    __slots__ = ("_enc", "_alignments")

    def __init__(self, encoding: tokenizers.Encoding, alignments: PairAlignment = None) -> None:
        self._enc = encoding
        self._alignments = alignments  # None: the engine's offsets index the caller's texts already

    ids = property(lambda self: self._enc.ids, doc="token ids")
    tokens = property(lambda self: self._enc.tokens, doc="token strings")
    type_ids = property(lambda self: self._enc.type_ids, doc="segment ids: 0 for A, 1 for B")
    attention_mask = property(lambda self: self._enc.attention_mask, doc="1 for real tokens, 0 for padding")
    word_ids = property(lambda self: self._enc.word_ids, doc="word index of each token (None for specials)")
    sequence_ids = property(lambda self: self._enc.sequence_ids, doc="0/1 sequence of each token (None for specials)")
    special_tokens_mask = property(lambda self: self._enc.special_tokens_mask, doc="1 for special tokens")

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """(start, end) character spans in the input text."""
        engine = self._enc.offsets
        if self._alignments is None:
            return engine
        sequences, words = self._enc.sequence_ids, self._enc.word_ids
        return [self._original_span(span, seq, word) for span, seq, word in zip(engine, sequences, words, strict=True)]

    @property
    def overflowing(self) -> list[Encoding]:
        """The windows cut off by truncation (with `stride` tokens of overlap), for long inputs."""
        return [Encoding(e, self._alignments) for e in self._enc.overflowing]

    def char_to_token(self, char_index: int, sequence_index: int = 0) -> int | None:
        alignment = self._alignments[sequence_index] if self._alignments else None
        if isinstance(alignment, Alignment):
            char_index = alignment.composed_index(char_index)
        return self._enc.char_to_token(char_index, sequence_index)

    def token_to_chars(self, token_index: int) -> tuple[int, int] | None:
        chars = self._enc.token_to_chars(token_index)
        if chars is None or self._alignments is None:
            return chars
        return self.offsets[token_index]

    def _original_span(self, span: tuple[int, int], sequence: int | None, word: int | None) -> tuple[int, int]:
        if sequence is None:  # a special token
            return span
        alignment = self._alignments[sequence]  # type: ignore[index]
        if isinstance(alignment, list):
            alignment = alignment[word] if word is not None else None
        return span if alignment is None else alignment.span(*span)

    def __len__(self) -> int:
        return len(self._enc.ids)

    def __repr__(self) -> str:
        return f"Encoding(tokens={self.tokens!r})"
