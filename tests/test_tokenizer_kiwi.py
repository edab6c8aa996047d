"""Morpheme-aware pre-tokenization with Kiwi: splits, exact offsets, re-attached on load,
and a saved folder that transformers still reads (without the morpheme step)."""

from __future__ import annotations

import json

import pytest

from _tokenizer_corpus import write_corpus
from hanformer import Tokenizer, TokenizerConfig, train_tokenizer

pytest.importorskip("kiwipiepy")
# Loading the analyser's model takes seconds; these run in CI all the same.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kiwi_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("kiwi")
    config = TokenizerConfig(vocab_size=800, min_frequency=1, morpheme_split=True)
    train_tokenizer(write_corpus(root), config, root / "tok", progress=False)
    return root / "tok"


@pytest.fixture(scope="module")
def kiwi_tok(kiwi_dir):
    return Tokenizer.from_pretrained(kiwi_dir)


def test_words_are_split_at_morphemes_with_exact_offsets(kiwi_tok):
    assert kiwi_tok.morpheme_split
    text = "나는 오늘 학교에 갔다. 😀 Seoul에서"
    enc = kiwi_tok.encode(text)
    surfaces = [text[s:e] for (s, e), m in zip(enc.offsets, enc.special_tokens_mask, strict=True) if not m]
    assert "학교" in surfaces and "에" in surfaces  # 학교/NNG + 에/JKB
    # a particle after a Latin word is a word of its own
    seoul, eseo = text.index("Seoul"), text.index("에서")
    words_of = {w for w, (s, _) in zip(enc.word_ids, enc.offsets, strict=True) if w is not None and seoul <= s < eseo}
    assert words_of and enc.word_ids[enc.char_to_token(eseo)] not in words_of
    for token, (s, e), m in zip(enc.tokens, enc.offsets, enc.special_tokens_mask, strict=True):
        if not m and token != "[UNK]":
            assert text[s:e] == token.removeprefix("##")
    # each morpheme is a word of its own for word_ids (whole-word masking masks morphemes)
    i, j = enc.tokens.index("학교"), enc.tokens.index("에")
    assert enc.word_ids[i] != enc.word_ids[j]


def test_kiwi_option_is_recorded_and_reattached(kiwi_tok, kiwi_dir, tmp_path):
    spec = json.loads((kiwi_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert spec["pre_tokenizer"] == {"type": "BertPreTokenizer"}  # what any loader can read
    cfg = json.loads((kiwi_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert cfg["hanformer"]["morpheme_split"] is True
    kiwi_tok.save_pretrained(tmp_path / "again")
    again = Tokenizer.from_pretrained(tmp_path / "again")
    text = "서울은 한국의 수도이고, 부산은 두 번째로 큰 도시이다."
    assert again.morpheme_split and again.encode(text).ids == kiwi_tok.encode(text).ids
    plain = Tokenizer.build(kiwi_tok.get_vocab(), TokenizerConfig(vocab_size=800))
    assert plain.vocab_hash != kiwi_tok.vocab_hash
    assert plain.tokenize("학교에") != kiwi_tok.tokenize("학교에")


def test_batches_and_long_text_match_single_encoding(kiwi_tok):
    texts = ["나는 오늘 학교에 갔다.", "친구들과 점심을 먹었다.", "이 영화 정말 재미있어요!"]
    assert [e.ids for e in kiwi_tok.encode_batch(texts)] == [kiwi_tok.encode(t).ids for t in texts]
    long = " ".join(texts * 400)  # longer than the analyser's chunk: cut at spaces, offsets kept
    enc = kiwi_tok.encode(long)
    assert enc.offsets[-2][1] == len(long)
    assert sum(1 for t in enc.tokens if t == "학교") == 400


def test_transformers_reads_the_folder_without_the_morpheme_step(kiwi_dir):
    transformers = pytest.importorskip("transformers")
    theirs = transformers.BertTokenizerFast.from_pretrained(str(kiwi_dir))
    plain = Tokenizer.build(Tokenizer.from_pretrained(kiwi_dir).get_vocab(), TokenizerConfig(vocab_size=800))
    text = "세종대왕은 훈민정음을 창제하였다."
    assert theirs(text)["input_ids"] == plain.encode(text).ids
