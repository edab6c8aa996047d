"""The typed settings of a tokenizer: how text is normalized, split, and how the vocabulary is trained."""

from __future__ import annotations

import dataclasses
from typing import Literal

from hanformer.errors import ConfigError
from hanformer.utils.config import setting

# The five BERT special tokens, in the id order our trained vocabularies use (0..4).
PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
BERT_SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK)

# The trainer reserves memory for every entry up front (10^9 aborts the process), and real BERT
# vocabularies hold 30,000-250,000 tokens: a million leaves ample room.
MAX_VOCAB_SIZE = 1_000_000


@dataclasses.dataclass
class TokenizerConfig:
    """Every choice of the pipeline, recorded in tokenizer_config.json so a load rebuilds it exactly."""

    vocab_size: int = setting(32000, "size of the WordPiece vocabulary to train, special tokens included")
    min_frequency: int = setting(2, "a merge must be seen at least this often to enter the vocabulary")
    limit_alphabet: int = setting(
        6000,
        "keep at most this many distinct characters as base symbols (the most frequent); Korean needs "
        "a few thousand Hangul syllables, rarer characters become [UNK]")
    base_alphabet: Literal["ascii+jamo", "none"] = setting(
        "ascii+jamo",
        "characters always in the vocabulary even if the training text lacks them: printable ASCII and the "
        "Hangul compatibility jamo (ㅋㅋ, ㅠㅠ are everywhere in web text, rare in Wikipedia)")
    complete_alphabet: bool = setting(
        True, "give every base character its ##form too (replacing the rarest merges), so a word made of "
        "known characters never becomes [UNK]")
    unicode_normalization: Literal["nfc", "nfkc", "none"] = setting(
        "nfc", "Unicode normal form applied first; NFC/NFKC keep Hangul syllables whole (NFD would split them into jamo)")
    lowercase: bool = setting(False, "lowercase the text (accents are never stripped, so Hangul stays intact)")
    clean_text: bool = setting(True, "remove control characters and turn all whitespace into plain spaces")
    handle_chinese_chars: bool = setting(True, "put spaces around CJK ideographs (Hanja) so each is its own word")
    morpheme_split: bool = setting(
        False, "split Korean words at morpheme boundaries with Kiwi before WordPiece (needs kiwipiepy; "
        "slower; offsets still point into the original text)")
    max_input_chars_per_word: int = setting(100, "words longer than this many characters become a single [UNK]")
    extra_special_tokens: list[str] = setting([], "more special tokens added after the BERT five, e.g. [ENT],[/ENT]")
    model_max_length: int = setting(512, "longest sequence (in tokens) the model will accept; the default max_length")
    input_format: Literal["auto", "text", "wiki", "jsonl", "tsv"] = setting(
        "auto", "format of the training files: plain text, wiki-extractor <doc> blocks, JSON lines, or TSV with a header")
    text_fields: list[str] = setting(["text"], "JSON-lines fields / TSV columns that hold the text (read in order)")
    max_lines: int | None = setting(None, "train on at most this many lines (the first ones), for quick trials")

    def validate(self) -> None:
        if self.vocab_size < len(BERT_SPECIAL_TOKENS) + len(self.extra_special_tokens) + 1:
            raise ConfigError(f"vocab_size = {self.vocab_size} is too small to hold the special tokens")
        if self.vocab_size > MAX_VOCAB_SIZE:
            raise ConfigError(
                f"vocab_size = {self.vocab_size:,} is too large: at most {MAX_VOCAB_SIZE:,} (BERT vocabularies "
                f"hold 30,000-250,000 tokens, and training reserves memory for every entry); lower --vocab-size")
        if self.min_frequency < 1:
            raise ConfigError(f"min_frequency = {self.min_frequency} must be at least 1")
        if self.limit_alphabet < 1:
            raise ConfigError(f"limit_alphabet = {self.limit_alphabet} must be at least 1")
        if self.max_input_chars_per_word < 1:
            raise ConfigError(f"max_input_chars_per_word = {self.max_input_chars_per_word} must be at least 1")
        if self.max_lines is not None and self.max_lines < 1:
            raise ConfigError(f"max_lines = {self.max_lines} must be at least 1")
        if self.model_max_length < 3:
            raise ConfigError(f"model_max_length = {self.model_max_length} must be at least 3")
        for tok in self.extra_special_tokens:
            if not tok or any(ch.isspace() for ch in tok):
                raise ConfigError(f"extra special token {tok!r} must be non-empty and contain no spaces")
            if tok in BERT_SPECIAL_TOKENS:
                raise ConfigError(f"extra special token {tok!r} is already a BERT special token")
        if len(set(self.extra_special_tokens)) != len(self.extra_special_tokens):
            raise ConfigError(f"extra_special_tokens has duplicates: {self.extra_special_tokens}")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def base_characters(self) -> list[str]:
        if self.base_alphabet == "none":
            return []
        ascii_chars = [chr(c) for c in range(0x21, 0x7F)]
        jamo = [chr(c) for c in range(0x3131, 0x3164)]  # ㄱ..ㅣ
        return ascii_chars + jamo

    @property
    def special_tokens(self) -> list[str]:
        return [*BERT_SPECIAL_TOKENS, *self.extra_special_tokens]
