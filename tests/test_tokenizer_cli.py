"""`hanformer tokenizer train|encode|decode|stats` end to end on tiny data, and their errors."""

from __future__ import annotations

import json

import pytest

from _tokenizer_corpus import write_corpus
from hanformer import Tokenizer, tokenizer_stats
from hanformer.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    corpus = write_corpus(root)
    jsonl = root / "rows.jsonl"
    jsonl.write_text('{"title": "제목", "content": "세종대왕은 훈민정음을 창제하였다."}\n', encoding="utf-8")
    out = root / "tok"
    assert main(["tokenizer", "train", "--input", str(corpus), str(jsonl), "--text-fields", "title,content",
                 "--vocab-size", "600", "--min-frequency", "1", "--extra-special-tokens", "[ENT],[/ENT]",
                 "--out", str(out), "--quiet"]) == 0
    return root, out


def test_train_writes_a_loadable_tokenizer(trained, capsys):
    _, out = trained
    tok = Tokenizer.from_pretrained(out)
    assert tok.vocab_size == 600 and tok.extra_special_tokens == ["[ENT]", "[/ENT]"]
    assert tok.settings["training"]["files"] == ["corpus.txt", "rows.jsonl"]
    assert tok.settings["config"]["text_fields"] == ["title", "content"]


def test_encode_human_and_json(trained, capsys):
    _, out = trained
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "서울은 수도", "--pair", "Seoul"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split(" ")[1:3] == ["tokens:", "[CLS]:2"]
    assert "[SEP]:3" in line
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--json", "--max-length", "4", "서울은 한국의 수도이다"]) == 0
    row = json.loads(capsys.readouterr().out)
    tok = Tokenizer.from_pretrained(out)
    expected = tok.encode("서울은 한국의 수도이다", max_length=4, truncation=True)
    assert row["ids"] == expected.ids and len(row["ids"]) == 4
    assert row["offsets"] == [list(o) for o in expected.offsets] and row["word_ids"] == expected.word_ids


def test_encode_tab_pairs_from_file(trained, capsys):
    root, out = trained
    pairs = root / "pairs.tsv"
    pairs.write_text("서울\tSeoul\n\n부산\tBusan\n", encoding="utf-8")
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--input", str(pairs), "--tab-pairs", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["text"], r["pair"]) for r in rows] == [("서울", "Seoul"), ("부산", "Busan")]
    assert all(1 in r["type_ids"] for r in rows)
    pairs.write_text("서울 Seoul\n", encoding="utf-8")
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--input", str(pairs), "--tab-pairs"]) == 2
    assert "pairs.tsv:1: no tab in this line" in capsys.readouterr().err


def test_decode(trained, capsys):
    _, out = trained
    ids = Tokenizer.from_pretrained(out).encode("서울은 한국의 수도이다.").ids
    assert main(["tokenizer", "decode", "--tokenizer", str(out), *map(str, ids)]) == 0
    assert capsys.readouterr().out.strip() == "서울은 한국의 수도이다."


def test_stats_cli_and_api_agree(trained, capsys):
    root, out = trained
    sample = root / "reviews.txt"
    sample.write_text("id\tdocument\tlabel\n1\t영화 정말 재미있어요\t1\n2\t배우들의 연기가 훌륭했습니다 ♥♥\t1\n3\t\t0\n",
                      encoding="utf-8")
    assert main(["tokenizer", "stats", "--tokenizer", str(out), "--input", str(sample), "--input-format", "tsv",
                 "--text-fields", "document", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    stats = tokenizer_stats(out, texts=["영화 정말 재미있어요", "배우들의 연기가 훌륭했습니다 ♥♥"])
    assert figures == stats.to_dict()
    tok = Tokenizer.from_pretrained(out)
    tokens = [tok.tokenize(t) for t in ("영화 정말 재미있어요", "배우들의 연기가 훌륭했습니다 ♥♥")]
    n_tokens = sum(map(len, tokens))
    n_unk = sum(t.count("[UNK]") for t in tokens)
    assert (stats.lines, stats.eojeols, stats.tokens, stats.unk_tokens) == (2, 7, n_tokens, n_unk)
    assert n_unk >= 1  # ♥ is neither in the training text nor in the base alphabet
    assert stats.eojeols_with_unk == 1
    assert stats.tokens_per_eojeol == pytest.approx(n_tokens / 7)
    assert stats.unk_rate == pytest.approx(n_unk / n_tokens)
    assert not stats.decomposes_hangul and stats.vocab_size == 600
    assert main(["tokenizer", "stats", "--tokenizer", str(out), "--input", str(sample), "--input-format", "tsv",
                 "--text-fields", "document"]) == 0
    assert "tokens per eojeol" in capsys.readouterr().out


def test_cli_errors_are_one_line(trained, tmp_path, capsys):
    _, out = trained
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe broken\n")
    assert main(["tokenizer", "train", "--input", str(bad), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hanformer: error: ") and "bad.txt:2: not valid UTF-8" in err and err.count("\n") == 1
    assert main(["tokenizer", "train", "--input", str(write_corpus(tmp_path)), "--vocab-size", "30",
                 "--out", str(tmp_path / "y"), "--quiet"]) == 2
    assert "smaller than the alphabet" in capsys.readouterr().err
    assert main(["tokenizer", "encode", "--tokenizer", str(tmp_path / "missing"), "x"]) == 2
    assert "tokenizer folder not found" in capsys.readouterr().err
    assert main(["tokenizer", "encode", "--tokenizer", str(out)]) == 2
    assert "give texts as arguments or with --input" in capsys.readouterr().err
    assert main(["tokenizer", "decode", "--tokenizer", str(out), "99999"]) == 2
    assert "outside the vocabulary" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["tokenizer", "train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--input", "--out", "--vocab-size", "--min-frequency", "--limit-alphabet", "--lowercase",
                 "--morpheme-split", "--extra-special-tokens", "--input-format", "--text-fields",
                 "--unicode-normalization", "--max-input-chars-per-word"):
        assert flag in text
