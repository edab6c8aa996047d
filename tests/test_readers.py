"""Text readers: plain BERT format, wiki-extractor <doc> blocks, JSON lines; errors with positions."""

from __future__ import annotations

import json

import pytest

from hanformer.data.readers import (
    Document,
    detect_format,
    expand_paths,
    iter_documents,
    iter_text_lines,
)
from hanformer.errors import InputError
from hanformer.utils.files import text_size


def test_plain_text_documents_split_on_blank_lines(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text("\ufeff첫 문장입니다.\n둘째 문장.\n\n\n  Second doc line one.  \nline two\n\nthird\n", encoding="utf-8")
    docs = list(iter_documents(p))
    assert docs == [
        Document(str(p), 1, None, ["첫 문장입니다.", "둘째 문장."]),
        Document(str(p), 5, None, ["Second doc line one.", "line two"]),
        Document(str(p), 8, None, ["third"]),
    ]
    assert detect_format(p) == "text"


def test_wiki_blocks_title_and_body(tmp_path):
    p = tmp_path / "wiki_00"
    p.write_text(
        '<doc id="5" url="https://ko.wikipedia.org/wiki?curid=5" title="지미 카터">\n'
        "지미 카터\n\n제임스 얼 카터 주니어는 미국 39대 대통령이다.\n생애.\n</doc>\n"
        '<doc id="6" url="x" title="Stub">\nStub\n\n</doc>\n'
        '<doc id="7" url="x" title="수학">\n수학\n수학은 학문이다.\n</doc>\n',
        encoding="utf-8",
    )
    assert detect_format(p) == "wiki"
    docs = list(iter_documents(p))
    assert [(d.line, d.title, d.lines) for d in docs] == [
        (1, "지미 카터", ["제임스 얼 카터 주니어는 미국 39대 대통령이다.", "생애."]),
        (11, "수학", ["수학은 학문이다."]),
    ]
    # the title-only stub is kept when asked for
    assert len(list(iter_documents(p, skip_empty=False))) == 3
    assert list(iter_text_lines([p])) == [
        "지미 카터", "제임스 얼 카터 주니어는 미국 39대 대통령이다.", "생애.", "Stub", "수학", "수학은 학문이다."]


def test_jsonl_single_and_multiple_fields(tmp_path):
    p = tmp_path / "petitions"
    rows = [{"title": "제목 하나", "content": "본문 첫 줄\n\n본문 둘째 줄", "n": 1},
            {"title": "제목 둘", "content": "내용"}]
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    assert detect_format(p) == "jsonl"
    docs = list(iter_documents(p, text_fields=("title", "content")))
    assert [(d.line, d.title, d.lines) for d in docs] == [
        (1, None, ["제목 하나", "본문 첫 줄", "본문 둘째 줄"]), (2, None, ["제목 둘", "내용"])]
    docs = list(iter_documents(p, text_fields="content"))
    assert [(d.title, d.lines) for d in docs] == [("제목 하나", ["본문 첫 줄", "본문 둘째 줄"]), ("제목 둘", ["내용"])]
    assert list(iter_text_lines(p, text_fields="content", include_titles=False)) == [
        "본문 첫 줄", "본문 둘째 줄", "내용"]


def test_folder_expansion_skips_readme(tmp_path):
    (tmp_path / "README.md").write_text("# not corpus\n")
    (tmp_path / "b.txt").write_text("bee\n")
    (tmp_path / "a.txt").write_text("ay\n")
    assert [p.name for p in expand_paths(tmp_path)] == ["a.txt", "b.txt"]
    assert list(iter_text_lines(tmp_path)) == ["ay", "bee"]


@pytest.mark.parametrize(
    "name,content,kwargs,pattern",
    [
        ("bad.jsonl", '{"text": "ok"}\n{"text": "broken\n', {}, r"bad.jsonl:2: invalid JSON at column \d+"),
        ("list.jsonl", '{"text": "ok"}\n[1, 2]\n', {}, r"list.jsonl:2: expected a JSON object, got list"),
        ("nofield.jsonl", '{"text": "ok"}\n{"body": "x"}\n', {}, r"nofield.jsonl:2: missing text field 'text' \(fields present: body"),
        ("type.jsonl", '{"text": 3}\n', {}, r"type.jsonl:1 \(field 'text'\): expected a string, got int"),
        ("empty.txt", "\n\n  \n", {}, r"empty.txt: no text found"),
        ("open.txt", '<doc id="1" title="A">\nA\nbody\n', {}, r"open.txt:1: <doc> is never closed"),
        ("nested.txt", '<doc id="1" title="A">\nA\n<doc id="2" title="B">\n', {}, r"nested.txt:3: <doc> opened before"),
        ("outside.txt", '<doc id="1" title="A">\nA\nx\n</doc>\nstray text\n', {}, r"outside.txt:5: text outside a <doc"),
        ("fmt.txt", "x\n", {"fmt": "csv"}, r"unknown text format 'csv'"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, name, content, kwargs, pattern):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=pattern):
        list(iter_documents(p, **kwargs))


def test_non_utf8_missing_and_folder_errors(tmp_path):
    p = tmp_path / "cp949.txt"
    p.write_bytes("좋은 줄\n".encode() + "나쁜 줄\n".encode("cp949"))
    with pytest.raises(InputError, match=r"cp949.txt:2: not valid UTF-8 at byte 11"):
        list(iter_documents(p, fmt="text"))
    with pytest.raises(InputError, match="input file not found: .*missing.txt"):
        list(iter_documents(tmp_path / "missing.txt"))
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    with pytest.raises(InputError, match="input folder has no text files"):
        list(iter_text_lines(empty_dir))


def test_real_corpora(shared_data):
    kowiki = shared_data / "kowiki" / "kowiki_AA_part0.txt"
    first = next(iter_documents(kowiki))
    assert (first.line, first.title) == (1, "지미 카터")
    assert first.lines[0].startswith("제임스 얼 카터 주니어")
    petitions = shared_data / "petitions_partial" / "petitions_2017-08.jsonl"
    docs = list(iter_documents(petitions, text_fields=("title", "content")))
    assert len(docs) == 662 and docs[0].lines[0] == "학교는 인력센터, 취업센터가 아닙니다. 정말 간곡히 부탁드립니다."


def test_tsv_columns(tmp_path):
    p = tmp_path / "ratings.txt"
    p.write_text('id\tdocument\tlabel\n1\t아 더빙.. 진짜 짜증나네요\t0\n2\t\t1\n3\t"""인용"""\t1\n4\tbroken\n', encoding="utf-8")
    docs = iter_documents(p, fmt="tsv", text_fields=["document"])
    assert [(d.line, d.lines) for d in (next(docs), next(docs))] == [(2, ["아 더빙.. 진짜 짜증나네요"]), (4, ['"""인용"""'])]
    with pytest.raises(InputError, match=r"ratings.txt:5: 2 tab-separated columns, the header has 3"):
        next(docs)
    with pytest.raises(InputError, match=r"ratings.txt:1: header has no column 'text' \(columns: id, document, label"):
        list(iter_documents(p, fmt="tsv"))


@pytest.mark.parametrize("suffix, opener", [(".gz", "gzip"), (".bz2", "bz2"), (".xz", "lzma")])
def test_compressed_corpora_read_like_plain_text(tmp_path, suffix, opener):
    module = __import__(opener)
    text = "첫 리뷰입니다.\n\n둘째 리뷰\n셋째 줄\n"
    plain = tmp_path / "reviews.txt"
    plain.write_text(text, encoding="utf-8")
    packed = tmp_path / f"reviews.txt{suffix}"
    with module.open(packed, "wb") as f:
        f.write(text.encode("utf-8"))
    assert [d.lines for d in iter_documents(packed)] == [d.lines for d in iter_documents(plain)]
    expected_size = len(text.encode("utf-8")) if suffix == ".gz" else packed.stat().st_size
    assert text_size(packed) == expected_size  # gzip's trailer holds the size; others fall back
    table = tmp_path / f"rows.tsv{suffix}"
    with module.open(table, "wb") as f:
        f.write("id\tdocument\n1\t좋아요\n".encode())
    assert detect_format(table) == "tsv"  # the format is named by the suffix under the compression one


def test_a_broken_compressed_file_is_one_line_naming_it(tmp_path):
    broken = tmp_path / "reviews.txt.gz"
    broken.write_bytes(b"plain text, not gzip\n")
    with pytest.raises(InputError, match=r"reviews\.txt\.gz: cannot be decompressed as \.gz"):
        list(iter_documents(broken))
    bad_utf8 = tmp_path / "cp949.txt.gz"
    with __import__("gzip").open(bad_utf8, "wb") as f:
        f.write("좋아요\n".encode("cp949"))
    with pytest.raises(InputError, match=r"cp949\.txt\.gz:1: not valid UTF-8"):
        list(iter_documents(bad_utf8))
