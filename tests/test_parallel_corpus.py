"""Reading line-aligned source/target files: pairs in order, and one-line errors for bad pairs of files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from hanformer.data.parallel import iter_parallel, read_parallel
from hanformer.errors import InputError


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_pairs_in_order_from_plain_and_compressed_files(tmp_path: Path) -> None:
    src = write(tmp_path / "train.ko", ["고양이가 앉았다.", "개가 달린다."])
    tgt = tmp_path / "train.en.gz"
    tgt.write_bytes(gzip.compress(b"The cat sat.\nA dog runs.\n"))
    pairs = read_parallel(src, tgt)
    assert [(p.line, p.source, p.target) for p in pairs] == [(1, "고양이가 앉았다.", "The cat sat."),
                                                             (2, "개가 달린다.", "A dog runs.")]


def test_mismatched_line_counts_name_the_file_and_line(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", ["eins", "zwei", "drei"])
    tgt = write(tmp_path / "a.en", ["one", "two"])
    with pytest.raises(InputError, match=rf"^{src}:3: {tgt} has only 2 lines; the two files must have one line"):
        read_parallel(src, tgt)
    with pytest.raises(InputError, match=rf"^{src}:3: {tgt} has only 2 lines"):
        read_parallel(tgt, src)


def test_empty_lines_are_errors_or_skipped(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", ["eins", "zwei", "drei"])
    tgt = write(tmp_path / "a.en", ["one", "  ", "three"])
    with pytest.raises(InputError, match=rf"^{tgt}:2: empty line \(its pair is {src}:2\)"):
        read_parallel(src, tgt)
    assert [p.line for p in iter_parallel(src, tgt, empty="skip")] == [1, 3]
    write(tmp_path / "e.de", [])
    write(tmp_path / "e.en", [])
    with pytest.raises(InputError, match="no sentence pairs"):
        read_parallel(tmp_path / "e.de", tmp_path / "e.en")


def test_non_utf8_and_missing_files(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", ["eins", "zwei"])
    tgt = tmp_path / "a.en"
    tgt.write_bytes(b"one\ntw\xff\n")
    with pytest.raises(InputError, match=rf"^{tgt}:2: not valid UTF-8"):
        read_parallel(src, tgt)
    with pytest.raises(InputError, match="absent"):
        read_parallel(src, tmp_path / "absent.en")
