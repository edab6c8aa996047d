"""Tokenizer inputs that used to hang, abort or mislead: over-long words in training, huge
vocabulary sizes, decomposed (NFD) text and its offsets, vocab.txt-only folders, tiny --max-length."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from _tokenizer_corpus import SENTENCES, write_corpus
from hanformer import Tokenizer, TokenizerConfig, train_tokenizer
from hanformer.cli.main import main
from hanformer.errors import ConfigError
from hanformer.tokenization.normalizer import build_normalizer
from hanformer.tokenization.pre_tokenizer import build_pre_tokenizer
from hanformer.tokenization.trainer import _LongWords

REPO = Path(__file__).resolve().parents[1]
NFD = "NFD"


def run_cli(capsys, args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert err.startswith("hanformer: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


ACCENTED = "café naïve résumé Café crème brûlée\n"


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    (root / "accents.txt").write_text(ACCENTED * 4, encoding="utf-8")
    train_tokenizer([write_corpus(root), root / "accents.txt"], TokenizerConfig(vocab_size=600, min_frequency=1),
                    root / "tok", progress=False)
    return root / "tok"


@pytest.fixture(scope="module")
def tok(tok_dir):
    return Tokenizer.from_pretrained(tok_dir)


def assert_offsets_slice_surfaces(tok: Tokenizer, text: str, enc=None) -> None:
    """Every non-special token's offsets slice `text` to exactly the characters it came from."""
    enc = enc or tok.encode(text)
    normalize = tok.backend.normalizer.normalize_str
    assert tok.unk_token not in enc.tokens
    for token, (start, end), special in zip(enc.tokens, enc.offsets, enc.special_tokens_mask, strict=True):
        if not special:
            assert normalize(text[start:end]).strip() == token.removeprefix("##"), (token, text[start:end])


# ---------------------------------------------------------------- 1. over-long words in training
def test_a_million_character_word_trains_at_once_and_changes_nothing(tmp_path):
    """Merging on one huge word took quadratic time (10k chars 0.1 s, 100k chars 4 s, a million
    never finished). Words too long to encode are now left out, so the vocabulary is exactly the
    one of the text without the word."""
    huge = "가나다라마바사아자차" * 100_000
    with_word = tmp_path / "with" / "corpus.txt"
    with_word.parent.mkdir()
    with_word.write_text(SENTENCES + f"긴 단어 {huge} 끝\n" + SENTENCES, encoding="utf-8")
    without = tmp_path / "without" / "corpus.txt"
    without.parent.mkdir()
    without.write_text(SENTENCES + "긴 단어 끝\n" + SENTENCES, encoding="utf-8")
    # In a child process, so that a regression fails after a minute instead of hanging the suite.
    train = ("import sys; from hanformer import TokenizerConfig, train_tokenizer; train_tokenizer(sys.argv[1], "
             "TokenizerConfig(vocab_size=500, min_frequency=1), sys.argv[2], progress=False)")
    subprocess.run([sys.executable, "-c", train, str(with_word), str(tmp_path / "a")], check=True, timeout=60,
                   cwd=REPO, capture_output=True)
    train_tokenizer(without, TokenizerConfig(vocab_size=500, min_frequency=1), tmp_path / "b", progress=False)
    assert (tmp_path / "a" / "vocab.txt").read_text(encoding="utf-8") == (tmp_path / "b" / "vocab.txt").read_text(
        encoding="utf-8")
    assert Tokenizer.from_pretrained(tmp_path / "a").tokenize(huge[:101]) == ["[UNK]"]


def test_long_word_removal_agrees_with_the_pre_tokenizer():
    """The regular-expression cut keeps exactly the pre-tokenizer's words that fit the limit."""
    normalizer, pre_tokenizer = build_normalizer(TokenizerConfig()), build_pre_tokenizer()
    alphabet = list("가나다ab.,!-]^\\「」…·") + [" ", "\u3000", "\u00a0", "\t"]
    rng = random.Random(1)
    for limit in (1, 3, 5):
        cut = _LongWords(limit)
        for _ in range(400):
            text = normalizer.normalize_str("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))))
            kept = [w for w, _ in pre_tokenizer.pre_tokenize_str(text) if len(w) <= limit]
            assert [w for w, _ in pre_tokenizer.pre_tokenize_str(cut.drop(text))] == kept, (text, limit)
    assert _LongWords(4).drop("abcd abcde a.bcdef") == "abcd   a. "


# ---------------------------------------------------------------- 2. vocabulary size bound
def test_huge_vocab_size_is_a_one_line_error(tmp_path, capsys):
    """--vocab-size 1000000000 made the engine abort the process (exit 134)."""
    corpus = write_corpus(tmp_path)
    code, _, err = run_cli(capsys, ["tokenizer", "train", "--input", str(corpus), "--vocab-size", "1000000000",
                                    "--quiet", "--out", str(tmp_path / "tok")])
    assert_one_line_error(code, err, "vocab_size = 1,000,000,000 is too large: at most 1,000,000")
    (tmp_path / "tok.toml").write_text("[tokenizer]\nvocab_size = 1e9\n", encoding="utf-8")
    code, _, err = run_cli(capsys, ["tokenizer", "train", "--input", str(corpus), "--config",
                                    str(tmp_path / "tok.toml"), "--quiet", "--out", str(tmp_path / "tok")])
    assert_one_line_error(code, err, "at most 1,000,000")
    assert not (tmp_path / "tok").exists()
    with pytest.raises(ConfigError, match="too large"):
        TokenizerConfig(vocab_size=1_000_001)
    assert TokenizerConfig(vocab_size=1_000_000).vocab_size == 1_000_000


# ---------------------------------------------------------------- 3. offsets of decomposed text
def test_nfd_hangul_offsets_index_the_original_text(tok):
    """The engine composes NFD to NFC but keeps only the first jamo's position: '한국' came out as
    (0, 4) of 6 characters, so offsets sliced text ending mid-syllable."""
    text = unicodedata.normalize(NFD, "한국어 위키백과")
    enc = tok.encode(text, add_special_tokens=False)
    assert enc.ids == tok.encode("한국어 위키백과", add_special_tokens=False).ids
    assert enc.tokens[:2] == ["한국", "##어"] and enc.offsets[:2] == [(0, 6), (6, 8)]
    assert enc.offsets[-1][1] == len(text)
    assert_offsets_slice_surfaces(tok, text)


def test_mixed_nfc_nfd_and_accents(tok):
    mixed = "서울은 " + unicodedata.normalize(NFD, "한국의") + " 수도 café Cafe\u0301."
    assert_offsets_slice_surfaces(tok, mixed)
    enc = tok.encode(mixed, add_special_tokens=False)
    start, end = enc.offsets[enc.tokens.index("한국")]
    assert mixed[start:end] == unicodedata.normalize(NFD, "한국")
    # char_to_token / token_to_chars speak of the same original positions
    assert enc.char_to_token(start + 4) == enc.tokens.index("한국")
    assert enc.token_to_chars(enc.tokens.index("한국")) == (start, end)


def test_offsets_of_pairs_batches_words_windows_and_tensors(tok):
    a, b = unicodedata.normalize(NFD, "대한민국은 민주 공화국이다."), unicodedata.normalize(NFD, "수도는 서울")
    enc = tok.encode(a, b)
    for token, (start, end), seq in zip(enc.tokens, enc.offsets, enc.sequence_ids, strict=True):
        if seq is not None:
            source = a if seq == 0 else b
            assert tok.backend.normalizer.normalize_str(source[start:end]) == token.removeprefix("##")
    batch = tok.encode_batch([a, "서울", b], [b, "x", a])
    assert [e.offsets for e in batch] == [tok.encode(x, y).offsets for x, y in ((a, b), ("서울", "x"), (b, a))]
    assert tok([a, b], return_offsets_mapping=True, return_tensors=None, padding=False)["offset_mapping"] == [
        tok.encode(a).offsets, tok.encode(b).offsets]
    words = [unicodedata.normalize(NFD, "한국어"), "위키", unicodedata.normalize(NFD, "백과")]
    enc = tok.encode(words, is_split_into_words=True, add_special_tokens=False)
    for (start, end), w in zip(enc.offsets, enc.word_ids, strict=True):
        assert 0 <= start < end <= len(words[w])
    assert enc.offsets[0] == (0, 6)  # 한국 of the first word, in that word's characters
    long = tok.encode(a, max_length=6, truncation=True, stride=1)
    for window in long.overflowing:
        assert all(e <= len(a) for _, e in window.offsets)
        assert_offsets_slice_surfaces(tok, a, window)


def test_nfkc_and_lowercase_tokenizers(tmp_path):
    corpus = write_corpus(tmp_path)
    nfkc = train_tokenizer(corpus, TokenizerConfig(vocab_size=600, min_frequency=1, unicode_normalization="nfkc",
                                                   lowercase=True), progress=False)
    # compatibility jamo compose under NFKC (ㄱㅏ -> 가); full-width letters and the ﬁ ligature expand
    # (one character may then give two tokens, each with that character's span)
    for text in ["ㅎㅏㄴ국 서울", "ＳＥＯＵＬ ﬁne", unicodedata.normalize(NFD, "한국어") + " THE", "İstanbul"]:
        enc = nfkc.encode(text)
        for token, (start, end), special in zip(enc.tokens, enc.offsets, enc.special_tokens_mask, strict=True):
            if not special and token != "[UNK]":
                assert token.removeprefix("##") in nfkc.backend.normalizer.normalize_str(text[start:end])
    enc = nfkc.encode("ㅎㅏ국", add_special_tokens=False)  # the engine alone said (0, 1) for 하
    assert enc.tokens[0] == "하" and enc.offsets[0] == (0, 2)


def test_cli_encode_json_offsets_of_nfd_text(tok_dir, capsys):
    text = unicodedata.normalize(NFD, "한국어 위키백과")
    code, out, _ = run_cli(capsys, ["tokenizer", "encode", "--tokenizer", str(tok_dir), "--json", text])
    row = json.loads(out)
    assert code == 0 and row["offsets"][1] == [0, 6]
    assert [text[s:e] for s, e in row["offsets"][1:-1]] == [unicodedata.normalize(NFD, p) for p in
                                                            ("한국", "어", "위", "키", "백", "과")]


# ---------------------------------------------------------------- 4. folders with only vocab.txt
def test_vocab_txt_only_folder_keeps_korean(tok, tok_dir, tmp_path):
    """A vocab.txt alone meant transformers' defaults (lowercase + strip accents), which take
    Hangul apart into jamo: every Korean word was [UNK], silently."""
    folder = tmp_path / "vocab-only"
    folder.mkdir()
    (folder / "vocab.txt").write_bytes((tok_dir / "vocab.txt").read_bytes())
    alone = Tokenizer.from_pretrained(folder)
    text = "대한민국은 동아시아의 한반도 남부에 위치한 민주 공화국이다. Seoul is the capital."
    assert not alone.decomposes_hangul
    assert alone.encode(text).ids == tok.encode(text).ids and "[UNK]" not in alone.tokenize(text)
    assert alone.tokenize("Seoul") == tok.tokenize("Seoul")  # A-Z in the vocabulary: cased
    assert alone.vocab_hash == tok.vocab_hash  # the same pipeline as the full folder
    assert alone.encode(unicodedata.normalize(NFD, text)).ids == tok.encode(text).ids
    # saved again, the settings are written down for transformers too
    cfg = json.loads((alone.save_pretrained(tmp_path / "saved") / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert cfg["do_lower_case"] is False and cfg["strip_accents"] is False


def test_vocab_txt_only_english_uncased_keeps_transformers_defaults(tmp_path):
    letters = "abcdefghijklmnopqrstuvwxyz"
    folder = tmp_path / "uncased"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters), "seoul", "cafe"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    uncased = Tokenizer.from_pretrained(folder)
    assert uncased.tokenize("Seoul Café") == ["seoul", "cafe"]  # lowercased, accents stripped
    assert uncased.decomposes_hangul


def test_vocab_txt_with_settings_that_break_it_warns(tok_dir, tmp_path, caplog):
    folder = tmp_path / "wrong-settings"
    folder.mkdir()
    (folder / "vocab.txt").write_bytes((tok_dir / "vocab.txt").read_bytes())
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "strip_accents": True}))
    with caplog.at_level(logging.WARNING, logger="hanformer.tokenization"):
        wrong = Tokenizer.from_pretrained(folder)
    assert wrong.tokenize("한국어") == ["[UNK]"]  # what the user asked for, as transformers does it
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "vocab.txt" in message and "encode to [UNK]" in message and '"strip_accents": false' in message
    caplog.clear()
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "strip_accents": False}))
    with caplog.at_level(logging.WARNING, logger="hanformer.tokenization"):
        assert "[UNK]" not in Tokenizer.from_pretrained(folder).tokenize("한국어")
    assert not caplog.records


# ---------------------------------------------------------------- 5. --max-length below the frame
@pytest.mark.parametrize("max_length", ["0", "1"])
def test_cli_max_length_below_the_special_tokens(tok_dir, capsys, max_length):
    """--max-length 0 and 1 were ignored: the whole text came back."""
    code, out, err = run_cli(capsys, ["tokenizer", "encode", "--tokenizer", str(tok_dir), "--max-length", max_length,
                                      "한국어 위키백과"])
    assert_one_line_error(code, err, f"max_length = {max_length} is too small", "the minimum is 2")
    assert out == ""


def test_cli_max_length_of_the_special_tokens_only(tok_dir, capsys):
    code, out, err = run_cli(capsys, ["tokenizer", "encode", "--tokenizer", str(tok_dir), "--max-length", "2",
                                      "한국어 위키백과"])
    assert code == 0 and out.strip() == "2 tokens: [CLS]:2 [SEP]:3"
    assert "leaves room for the 2 special tokens only" in err
    code, _, err = run_cli(capsys, ["tokenizer", "encode", "--tokenizer", str(tok_dir), "--max-length", "2",
                                    "--pair", "둘째", "한국어 위키백과"])
    assert_one_line_error(code, err, "max_length = 2 is too small", "the minimum is 3")
    code, out, err = run_cli(capsys, ["tokenizer", "encode", "--tokenizer", str(tok_dir), "--max-length", "1",
                                      "--no-special-tokens", "한국어 위키백과"])
    assert code == 0 and out.strip() == "1 tokens: 한국:" + str(Tokenizer.from_pretrained(tok_dir).encode(
        "한국", add_special_tokens=False).ids[0]) and err == ""


def test_api_max_length_below_the_special_tokens(tok):
    with pytest.raises(ConfigError, match="the minimum is 2"):
        tok.encode("한국어 위키백과", max_length=1, truncation=True)
    with pytest.raises(ConfigError, match="the minimum is 3"):
        tok.encode_batch(["한국어"], ["위키백과"], max_length=2, truncation=True)
    with pytest.raises(ConfigError, match="the minimum is 2"):
        tok(["한국어 위키백과"], max_length=1)
    assert tok.encode("한국어 위키백과", max_length=2, truncation=True).tokens == ["[CLS]", "[SEP]"]
    assert len(tok.encode("한국어 위키백과", max_length=1, truncation=True, add_special_tokens=False)) == 1
    assert tok.num_special_tokens_to_add() == 2 and tok.num_special_tokens_to_add(pair=True) == 3
