"""Property tests: arbitrary Unicode (emoji, NUL, combining marks, huge lines) never breaks
encoding, offsets always point at the text a token came from, covered text round-trips."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tokenizer_corpus import write_corpus
from hanformer import Tokenizer, TokenizerConfig, train_tokenizer

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JAMO = {chr(c) for c in range(0x1100, 0x1200)} | {chr(c) for c in range(0x3131, 0x318F)}
SPECIAL = ["\x00", "\u0301", "\u0308", "\u200b", "\u200d", "😀", "👍", "\U0001F3FD", "\U0001F1F0", "\U0001F1F7", "\ufeff", "\t", "\n", "\r", "\u3000",
           "한", "국", "어", "é", "e", "東", "京", ".", ",", "!", "[", "]", "#", " ", "a", "Z", "7", "\U0001F600"]

any_text = st.text(alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIAL)), max_size=80)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    return train_tokenizer(write_corpus(root), TokenizerConfig(vocab_size=400, min_frequency=1), progress=False)


def _normalized(tok: Tokenizer, text: str) -> str:
    return tok.backend.normalizer.normalize_str(text)


def check_offsets(tok: Tokenizer, text: str) -> None:
    enc = tok.encode(text)
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    previous_end = 0
    for token, (start, end), special in zip(enc.tokens, enc.offsets, enc.special_tokens_mask, strict=True):
        if special:
            assert (start, end) == (0, 0)
            continue
        assert 0 <= start < end <= len(text)
        assert start >= previous_end
        previous_end = end
        if token != tok.unk_token:
            # the token is the normalized form of exactly the characters it claims to come from
            assert _normalized(tok, text[start:end]).replace(" ", "") == token.removeprefix("##")
    # Hangul in, Hangul out: no syllable is ever broken into jamo
    if not any(ch in JAMO for ch in text):
        assert not any(ch in JAMO for t in enc.tokens for ch in t)


@FUZZ
@given(text=any_text)
def test_any_text_gives_valid_offsets(tok, text):
    check_offsets(tok, text)


@FUZZ
@given(a=any_text, b=any_text)
def test_any_pair_is_framed(tok, a, b):
    enc = tok.encode(a, b, max_length=24, truncation="longest_first")
    assert len(enc) <= 24
    assert enc.tokens.count("[SEP]") == 2 and enc.tokens[0] == "[CLS]"
    n_a = enc.tokens.index("[SEP]")
    assert enc.type_ids == [0] * (n_a + 1) + [1] * (len(enc) - n_a - 1)
    for (_, end), seq in zip(enc.offsets, enc.sequence_ids, strict=True):
        if seq is not None:
            assert end <= len(a if seq == 0 else b)


def covered_text(tok: Tokenizer) -> st.SearchStrategy[str]:
    """Text made only of characters the vocabulary has both as a word start and as ##piece."""
    vocab = tok.get_vocab()
    chars = sorted(c for c in vocab if len(c) == 1 and f"##{c}" in vocab and c.isalnum())
    assert len(chars) > 30
    return st.text(alphabet=st.sampled_from([*chars, " ", " ", ".", ",", "!"]), max_size=120)


@pytest.fixture(scope="module")
def covered(tok):
    return covered_text(tok)


def test_round_trip_on_covered_text(tok, covered):
    @FUZZ
    @given(text=covered)
    def run(text):
        ids = tok.encode(text).ids
        assert tok.unk_token_id not in ids
        assert "".join(tok.decode(ids).split()) == "".join(unicodedata.normalize("NFC", text).split())

    run()


@pytest.mark.slow
def test_one_megabyte_single_line(tok):
    vocab = tok.get_vocab()
    syllables = [c for c in vocab if len(c) == 1 and "\uac00" <= c <= "\ud7a3" and f"##{c}" in vocab]
    words = ["".join(syllables[(i * 7 + k) % len(syllables)] for k in range(1 + i % 6)) for i in range(997)]
    text = " ".join(words[i % len(words)] for i in range(200_000))[: 1 << 20]
    text = text + " 😀\x00e\u0301 끝"
    enc = tok.encode(text)
    assert len(enc) > 200_000
    assert enc.offsets[-2][1] == len(text)
    assert tok.decode(enc.ids).replace(" ", "").startswith(text[:1000].replace(" ", ""))
    check_offsets(tok, text[:5000] + " 😀\x00e\u0301 끝")
