"""Tokenizer: training, the pipeline stages, encoding options, saving/loading, errors."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import torch

from _tokenizer_corpus import SENTENCES, write_corpus
from hanformer import Tokenizer, TokenizerConfig, train_tokenizer
from hanformer.errors import ConfigError, InputError
from hanformer.tokenization.config import BERT_SPECIAL_TOKENS


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    corpus = write_corpus(root)
    config = TokenizerConfig(vocab_size=600, min_frequency=1, extra_special_tokens=["[ENT]", "[/ENT]"])
    train_tokenizer(corpus, config, root / "out", progress=False)
    return root / "out"


@pytest.fixture(scope="module")
def tok(tok_dir):
    return Tokenizer.from_pretrained(tok_dir)


def test_trained_layout_and_special_ids(tok, tok_dir):
    assert sorted(p.name for p in tok_dir.iterdir()) == [
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    vocab_lines = (tok_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab_lines[:7] == [*BERT_SPECIAL_TOKENS, "[ENT]", "[/ENT]"]
    assert len(vocab_lines) == tok.vocab_size == len(tok) == 600
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert any(t.startswith("##") for t in vocab_lines)
    cfg = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert cfg["strip_accents"] is False and cfg["do_lower_case"] is False
    assert cfg["hanformer"]["config"]["vocab_size"] == 600
    assert cfg["hanformer"]["training"]["lines"] == len(SENTENCES.splitlines()) * 4
    assert tok.settings["config"]["extra_special_tokens"] == ["[ENT]", "[/ENT]"]


def test_hangul_is_never_decomposed_even_when_lowercasing(tmp_path):
    corpus = write_corpus(tmp_path)
    lower = train_tokenizer(corpus, TokenizerConfig(vocab_size=1000, min_frequency=1, lowercase=True), progress=False)
    assert not lower.decomposes_hangul
    assert lower.tokenize("Seoul 서울") == ["seoul", "서울"]
    jamo = {chr(c) for c in range(0x1100, 0x1200)}
    assert not any(ch in jamo for t in lower.get_vocab() for ch in t)


def test_nfc_normalization_and_control_characters(tok):
    composed = "한국어 위키백과"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert tok.encode(decomposed).ids == tok.encode(composed).ids
    # control characters are removed, any whitespace is a separator
    assert tok.tokenize("서울\x00은\u200b\t수도") == tok.tokenize("서울은 수도")
    assert "[UNK]" not in tok.tokenize(composed)


def test_single_and_pair_framing(tok):
    enc = tok.encode("서울은 한국의 수도", "Seoul is the capital")
    n_a = len(tok.tokenize("서울은 한국의 수도"))
    assert enc.tokens[0] == "[CLS]" and enc.tokens[n_a + 1] == "[SEP]" and enc.tokens[-1] == "[SEP]"
    assert enc.type_ids == [0] * (n_a + 2) + [1] * (len(enc) - n_a - 2)
    assert enc.attention_mask == [1] * len(enc)
    assert enc.special_tokens_mask[0] == 1 and enc.special_tokens_mask[1] == 0
    assert enc.sequence_ids[1] == 0 and enc.sequence_ids[-2] == 1
    assert enc.word_ids[0] is None and enc.word_ids[-1] is None


def test_offsets_and_word_ids_point_into_the_text(tok):
    text = "나는 오늘 학교에 갔다. Seoul!"
    enc = tok.encode(text)
    pieces = [(t, text[s:e]) for t, (s, e), m in zip(enc.tokens, enc.offsets, enc.special_tokens_mask, strict=True) if not m]
    for token, surface in pieces:
        assert token.removeprefix("##") == surface
    words = text.replace(".", " .").replace("!", " !").split()
    by_word: dict[int, str] = {}
    for w, (s, e) in zip(enc.word_ids, enc.offsets, strict=True):
        if w is not None:
            by_word[w] = by_word.get(w, "") + text[s:e]
    assert [by_word[i] for i in sorted(by_word)] == words
    first = enc.char_to_token(text.index("학교"))
    assert enc.offsets[first][0] == text.index("학교") and enc.token_to_chars(first) == enc.offsets[first]


def test_split_into_words_for_label_alignment(tok):
    enc = tok.encode(["서울은", "수도", "Seoul"], is_split_into_words=True)
    assert sorted({w for w in enc.word_ids if w is not None}) == [0, 1, 2]
    batch = tok(["서울은", "수도"], is_split_into_words=True)
    assert batch["input_ids"].shape[0] == 1


def test_truncation_strategies(tok):
    a, b = "대한민국은 동아시아의 한반도 남부에 위치한 민주 공화국이다", "Seoul is the capital"
    la, lb = len(tok.tokenize(a)), len(tok.tokenize(b))
    assert la > 8 and lb > 3
    longest = tok.encode(a, b, max_length=12, truncation="longest_first")
    assert len(longest) == 12
    assert longest.type_ids.count(1) == min(lb, 4) + 1  # the longer side gives way first
    only_second = tok.encode(a, "Seoul is the capital of South Korea", max_length=la + 5, truncation="only_second")
    assert len(only_second) == la + 5 and only_second.tokens[1:la + 1] == tok.tokenize(a)
    only_first = tok.encode(a, b, max_length=lb + 6, truncation="only_first")
    assert only_first.tokens[-lb - 1:-1] == tok.tokenize(b)
    # stride: the cut-off part comes back as overlapping windows
    windows = tok.encode(a, max_length=6, truncation=True, stride=2)
    assert len(windows.overflowing) >= 1
    # truncation never leaks into later calls
    assert len(tok.encode(a)) == la + 2
    with pytest.raises(ConfigError, match="cannot truncate as asked"):
        tok.encode(a, b, max_length=4, truncation="only_second")
    with pytest.raises(ConfigError, match="truncation='shortest'"):
        tok.encode(a, truncation="shortest")


def test_padding_and_tensors(tok):
    texts = ["서울", "대한민국은 동아시아의 한반도 남부에 위치한 민주 공화국이다"]
    out = tok(texts)
    assert set(out) == {"input_ids", "token_type_ids", "attention_mask"}
    assert out["input_ids"].dtype == torch.int64 and out["input_ids"].shape[0] == 2
    n_short = len(tok.tokenize("서울")) + 2
    assert out["attention_mask"][0].tolist() == [1] * n_short + [0] * (out["input_ids"].shape[1] - n_short)
    assert out["input_ids"][0, n_short:].eq(tok.pad_token_id).all()
    fixed = tok(texts, max_length=16, padding="max_length")
    assert fixed["input_ids"].shape == (2, 16)
    multiple = tok.encode_batch(texts, padding=True, pad_to_multiple_of=8)
    assert len(multiple[0]) == len(multiple[1]) and len(multiple[0]) % 8 == 0
    pairs = tok(["서울", "부산"], ["Seoul", "Busan is big"], return_tensors="np", return_offsets_mapping=True)
    assert pairs["token_type_ids"][1].max() == 1 and pairs["offset_mapping"].shape[-1] == 2
    lists = tok(texts, return_tensors=None, padding=False)
    assert [len(x) for x in lists["input_ids"]] == [n_short, len(tok.tokenize(texts[1])) + 2]
    with pytest.raises(ConfigError, match="different lengths"):
        tok(texts, padding=False)
    single = tok("서울은 수도")
    assert single["input_ids"].shape == (1, len(tok.tokenize("서울은 수도")) + 2)


def test_batch_equals_single(tok):
    texts = SENTENCES.splitlines()
    batch = tok.encode_batch(texts, texts[::-1])
    for text, pair, enc in zip(texts, texts[::-1], batch, strict=True):
        one = tok.encode(text, pair)
        assert (one.ids, one.type_ids, one.offsets, one.word_ids) == (enc.ids, enc.type_ids, enc.offsets, enc.word_ids)


def test_decode_and_vocabulary_lookups(tok):
    text = "서울은 한국의 수도이다."
    ids = tok.encode(text).ids
    assert tok.decode(ids) == text
    assert tok.decode(torch.tensor(ids)) == text
    assert tok.decode(ids, skip_special_tokens=False).startswith("[CLS]")
    assert tok.decode_batch(torch.tensor([ids, ids])) == [text, text]
    assert tok.convert_ids_to_tokens(ids) == tok.encode(text).tokens
    assert tok.convert_ids_to_tokens(2) == "[CLS]"
    assert tok.convert_tokens_to_ids(["[CLS]", "없는토큰"]) == [2, tok.unk_token_id]
    with pytest.raises(InputError, match="outside the vocabulary"):
        tok.convert_ids_to_tokens([10**6])


def test_extra_special_tokens_stay_whole(tok):
    enc = tok.encode("[ENT]세종대왕[/ENT]은 훈민정음을 창제하였다")
    assert enc.tokens[1] == "[ENT]" and "[/ENT]" in enc.tokens
    assert "[ENT]" in tok.all_special_tokens and 5 in tok.all_special_ids
    assert "[ENT]" not in tok.decode(enc.ids)


def test_save_load_round_trip_and_vocab_hash(tok, tmp_path):
    tok.save_pretrained(tmp_path / "copy")
    again = Tokenizer.from_pretrained(tmp_path / "copy")
    assert again.vocab_hash == tok.vocab_hash
    text = "이 영화 정말 재미있어요! The quick brown fox."
    assert again.encode(text).ids == tok.encode(text).ids
    # a folder with only vocab.txt + tokenizer_config.json rebuilds the same pipeline
    (tmp_path / "copy" / "tokenizer.json").unlink()
    rebuilt = Tokenizer.from_pretrained(tmp_path / "copy")
    assert rebuilt.encode(text).ids == tok.encode(text).ids and rebuilt.vocab_hash == tok.vocab_hash


def test_vocab_hash_tracks_what_changes_ids(tmp_path):
    corpus = write_corpus(tmp_path)
    a = train_tokenizer(corpus, TokenizerConfig(vocab_size=1000, min_frequency=1), progress=False)
    same = Tokenizer.build(a.get_vocab(), TokenizerConfig(**a.settings["config"]))
    assert same.vocab_hash == a.vocab_hash
    c = train_tokenizer(corpus, TokenizerConfig(vocab_size=400, min_frequency=1), progress=False)
    d = train_tokenizer(corpus, TokenizerConfig(vocab_size=1000, min_frequency=1, lowercase=True), progress=False)
    assert len({a.vocab_hash, c.vocab_hash, d.vocab_hash}) == 3


def test_trained_ids_are_canonical():
    from hanformer.tokenization.trainer import _canonical_ids

    shuffled = {"##a": 0, "ab": 1, "[CLS]": 2, "b": 3, "a": 4, "##bc": 5, "[UNK]": 6, "##b": 7}
    assert list(_canonical_ids(shuffled, ["[UNK]", "[CLS]"])) == ["[UNK]", "[CLS]", "a", "b", "##a", "##b", "ab", "##bc"]


def test_training_twice_gives_the_same_vocabulary():
    # 5,000 real reviews: enough merges of equal count that the engine alone breaks ties
    # differently from run to run (it numbers ##c symbols in hash-map order).
    sample = Path(__file__).resolve().parents[1] / "data" / "nsmc-sample" / "pretrain.txt"
    config = TokenizerConfig(vocab_size=3000, limit_alphabet=1000, max_lines=10_000)
    vocabularies = [train_tokenizer([sample], config, progress=False).get_vocab() for _ in range(3)]
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]
    assert len(vocabularies[0]) == 3000


def test_max_input_chars_per_word(tmp_path):
    corpus = write_corpus(tmp_path)
    short = train_tokenizer(corpus, TokenizerConfig(vocab_size=450, min_frequency=1, max_input_chars_per_word=4),
                            progress=False)
    assert short.tokenize("대한민국은 the") == ["[UNK]", "the"]


# ---------------------------------------------------------------------------------------- errors

def test_vocab_smaller_than_alphabet_is_explained(tmp_path):
    corpus = write_corpus(tmp_path)
    with pytest.raises(ConfigError, match=r"vocab_size = 50 is smaller than the alphabet: .*raise --vocab-size above"):
        train_tokenizer(corpus, TokenizerConfig(vocab_size=50), progress=False)
    with pytest.raises(ConfigError, match="too small to hold the special tokens"):
        TokenizerConfig(vocab_size=4)
    with pytest.raises(ConfigError, match="already a BERT special token"):
        TokenizerConfig(extra_special_tokens=["[CLS]"])


def test_training_input_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty.txt: no text found"):
        train_tokenizer(empty, TokenizerConfig(vocab_size=100), progress=False)
    bad = tmp_path / "cp949.txt"
    bad.write_bytes("첫 줄\n".encode() + "둘째 줄\n".encode("cp949"))
    with pytest.raises(InputError, match=r"cp949.txt:2: not valid UTF-8 at byte \d+"):
        train_tokenizer(bad, TokenizerConfig(vocab_size=100), progress=False)
    with pytest.raises(InputError, match="input file not found: .*nothing.txt"):
        train_tokenizer(tmp_path / "nothing.txt", progress=False)
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"text": "좋아요"}\n{"body": "없음"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"rows.jsonl:2: missing text field 'text'"):
        train_tokenizer(jsonl, TokenizerConfig(vocab_size=100), progress=False)


@pytest.mark.parametrize("missing", ["[UNK]", "[CLS]", "[SEP]"])
def test_vocabulary_missing_special_token(tmp_path, missing):
    folder = tmp_path / "tok"
    folder.mkdir()
    tokens = [t for t in [*BERT_SPECIAL_TOKENS, "서울", "##은"] if t != missing]
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"vocab.txt: vocabulary is missing the special token \{missing[:-1]}\]"):
        Tokenizer.from_pretrained(folder)


def test_tokenizer_json_missing_special_token(tok, tmp_path):
    tok.save_pretrained(tmp_path / "t")
    spec = json.loads((tmp_path / "t" / "tokenizer.json").read_text(encoding="utf-8"))
    spec["model"]["vocab"].pop("[SEP]")
    spec["added_tokens"] = [a for a in spec["added_tokens"] if a["content"] != "[SEP]"]
    spec["post_processor"] = None
    (tmp_path / "t" / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(InputError, match=r"tokenizer.json: vocabulary is missing the special token \[SEP\]"):
        Tokenizer.from_pretrained(tmp_path / "t")


def test_bad_tokenizer_folders(tmp_path):
    with pytest.raises(InputError, match="tokenizer folder not found"):
        Tokenizer.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no tokenizer.json or vocab.txt"):
        Tokenizer.from_pretrained(tmp_path / "empty")
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[UNK]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"vocab.txt:5: token '\[UNK\]' repeats line 2"):
        Tokenizer.from_pretrained(dup)
    badcfg = tmp_path / "badcfg"
    badcfg.mkdir()
    (badcfg / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n", encoding="utf-8")
    (badcfg / "tokenizer_config.json").write_text('{"do_lower_case": tru}', encoding="utf-8")
    with pytest.raises(InputError, match=r"tokenizer_config.json:1: invalid JSON at column"):
        Tokenizer.from_pretrained(badcfg)
    badjson = tmp_path / "badjson"
    badjson.mkdir()
    (badjson / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="tokenizer.json: cannot read tokenizer"):
        Tokenizer.from_pretrained(badjson)


def test_wrong_argument_types_are_clear(tok):
    with pytest.raises(InputError, match="expected a string, got int"):
        tok.encode(5)
    with pytest.raises(InputError, match="got one string"):
        tok.encode_batch("서울")
    with pytest.raises(InputError, match="2 texts but 1 pairs"):
        tok.encode_batch(["a", "b"], ["c"])


def test_base_alphabet_and_completed_alphabet(tok):
    vocab = tok.get_vocab()
    # jamo emoticons and ASCII symbols are known even though the corpus has none
    assert tok.tokenize("ㅋㅋㅋ ㅠㅠ <b>") == ["ㅋ", "##ㅋ", "##ㅋ", "ㅠ", "##ㅠ", "<", "b", ">"]
    # every base character also has its ##form: words of known characters are never [UNK]
    singles = [t for t in vocab if len(t) == 1]
    assert all(f"##{c}" in vocab for c in singles)
    assert "[UNK]" not in tok.tokenize("민주공화국서울대한")
