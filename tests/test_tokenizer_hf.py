"""Hugging Face interop both ways, and parity with `transformers.BertTokenizerFast` on real text."""

from __future__ import annotations

import itertools
import json

import pytest

from _tokenizer_corpus import SENTENCES, write_corpus
from hanformer import Tokenizer, TokenizerConfig, train_tokenizer
from hanformer.data.readers import iter_text_lines

transformers = pytest.importorskip("transformers")

PARITY_LINES = 10_000


def _hf(path):
    return transformers.BertTokenizerFast.from_pretrained(str(path))


def _lines(path, n, skip=0):
    return list(itertools.islice(iter_text_lines(path, include_titles=False), skip, skip + n))


def _assert_parity(ours: Tokenizer, theirs, texts, pairs=None):
    """ids, token type ids and character offsets equal, text by text."""
    mine = ours.encode_batch(texts, pairs)
    ref = theirs(texts, pairs, return_offsets_mapping=True, truncation=False, padding=False)
    for i, enc in enumerate(mine):
        assert enc.ids == ref["input_ids"][i], texts[i]
        assert enc.type_ids == ref["token_type_ids"][i], texts[i]
        assert [tuple(o) for o in enc.offsets] == [tuple(o) for o in ref["offset_mapping"][i]], texts[i]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return Tokenizer.from_pretrained(minilm_dir), _hf(minilm_dir)


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["enwiki_sample", "kowiki"])
def test_parity_with_bert_tokenizer_fast_on_wikipedia(shared_data, minilm, corpus):
    ours, theirs = minilm
    texts = _lines(sorted((shared_data / corpus).glob("*.txt"))[0], PARITY_LINES)
    assert len(texts) == PARITY_LINES
    _assert_parity(ours, theirs, texts)
    # pairs, and the truncation strategies the models use (short first sequences, so that
    # only_second can always cut enough)
    firsts = [t for t in texts if len(t) < 100 and len(ours.tokenize(t)) < 40][:300]
    seconds = texts[-len(firsts):]
    _assert_parity(ours, theirs, firsts, seconds)
    for strategy in ("longest_first", "only_second"):
        mine = ours.encode_batch(firsts, seconds, max_length=64, truncation=strategy)
        ref = theirs(firsts, seconds, max_length=64, truncation=strategy, return_offsets_mapping=True)
        assert [e.ids for e in mine] == ref["input_ids"]
        assert [e.type_ids for e in mine] == ref["token_type_ids"]
        assert [[tuple(o) for o in e.offsets] for e in mine] == [[tuple(o) for o in r] for r in ref["offset_mapping"]]


def test_minilm_vocab_txt_only_matches(shared_data, minilm_dir, tmp_path):
    """A folder with only vocab.txt + tokenizer_config.json: we assemble the pipeline ourselves."""
    folder = tmp_path / "minilm-vocab"
    folder.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_bytes((minilm_dir / name).read_bytes())
    ours = Tokenizer.from_pretrained(folder)
    assert ours.decomposes_hangul  # an uncased English BERT strips accents: Hangul becomes jamo
    texts = _lines(shared_data / "kowiki" / "kowiki_AA_part0.txt", 1000) + _lines(
        shared_data / "enwiki_sample" / "enwiki_AA_part0.txt", 1000)
    _assert_parity(ours, _hf(folder), texts)


def test_minilm_tensors_match(minilm):
    ours, theirs = minilm
    texts = ["Hello world!", "The quick brown fox jumps over the lazy dog.", "안녕하세요"]
    mine = ours(texts, ["A pair.", "B", "C c c"], max_length=8, truncation="longest_first", padding="max_length")
    ref = theirs(texts, ["A pair.", "B", "C c c"], max_length=8, truncation="longest_first", padding="max_length",
                 return_tensors="pt")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert mine[key].tolist() == ref[key].tolist()
    ids = ours.encode("Hello, world! It's nice.").ids
    assert ours.decode(ids) == "hello, world! it's nice."
    assert theirs.decode(ids, skip_special_tokens=True).replace(" ", "") == ours.decode(ids).replace(" ", "")


@pytest.fixture(scope="module")
def korean_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ko")
    config = TokenizerConfig(vocab_size=400, min_frequency=1, extra_special_tokens=["[ENT]", "[/ENT]"])
    train_tokenizer(write_corpus(root), config, root / "tok", progress=False)
    return root / "tok"


def test_bert_tokenizer_fast_loads_ours(korean_dir):
    ours, theirs = Tokenizer.from_pretrained(korean_dir), _hf(korean_dir)
    assert theirs.vocab_size == ours.vocab_size
    assert (theirs.cls_token_id, theirs.sep_token_id, theirs.pad_token_id, theirs.mask_token_id, theirs.unk_token_id) == (
        ours.cls_token_id, ours.sep_token_id, ours.pad_token_id, ours.mask_token_id, ours.unk_token_id)
    texts = SENTENCES.splitlines() + ["[ENT]세종대왕[/ENT]은 훈민정음을 창제하였다.", "Ünïcödé café 東京 😀"]
    _assert_parity(ours, theirs, texts)
    _assert_parity(ours, theirs, texts, texts[::-1])
    for text in texts:
        assert theirs.decode(theirs(text)["input_ids"], skip_special_tokens=True).replace(" ", "") == \
            ours.decode(ours.encode(text).ids).replace(" ", "")


def test_parity_of_our_korean_vocabulary_on_kowiki(shared_data, tmp_path):
    """Our pipeline (NFC + BERT normalizer without accent stripping) against transformers reading
    the same folder, on real Korean Wikipedia text the vocabulary was not trained on."""
    kowiki = shared_data / "kowiki" / "kowiki_AA_part0.txt"
    train_text = tmp_path / "train.txt"
    train_text.write_text("\n".join(_lines(kowiki, 3000)) + "\n", encoding="utf-8")
    train_tokenizer(train_text, TokenizerConfig(vocab_size=6000), tmp_path / "tok", progress=False)
    ours = Tokenizer.from_pretrained(tmp_path / "tok")
    assert not ours.decomposes_hangul
    texts = _lines(shared_data / "kowiki" / "kowiki_AA_part3.txt", 2000)
    _assert_parity(ours, _hf(tmp_path / "tok"), texts)


def test_hf_saved_folder_loads_in_ours(minilm_dir, tmp_path):
    """What transformers writes with save_pretrained, we read (and get the same ids)."""
    theirs = _hf(minilm_dir)
    theirs.save_pretrained(str(tmp_path / "saved"))
    ours = Tokenizer.from_pretrained(tmp_path / "saved")
    text = "Tokenizers split words into smaller pieces, don't they?"
    assert ours.encode(text, "Second.").ids == theirs(text, "Second.")["input_ids"]
    # and our save of a foreign tokenizer keeps its (uncased) behaviour for transformers too
    ours.save_pretrained(tmp_path / "resaved")
    cfg = json.loads((tmp_path / "resaved" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert cfg["do_lower_case"] is True
    assert _hf(tmp_path / "resaved")(text)["input_ids"] == ours.encode(text).ids
