"""Corpus readers: turn corpus files into documents (title + non-empty lines) with positions.

Four formats are common for BERT-style corpora, and every part of hanformer that reads raw
text (tokenizer training, pretraining data, n-gram models, the report) goes through this one
module, which sits with the other file helpers below every layer that reads text
(`hanformer.data.readers` presents the same functions to the data layer):

* ``text``  - the original BERT format: one sentence/paragraph per line, a blank line between
  documents;
* ``wiki``  - WikiExtractor output: ``<doc id=".." title="..">`` ... ``</doc>`` blocks whose first
  line repeats the title;
* ``jsonl`` - JSON lines, one document per line, text in one or more named fields
  (e.g. ``text``, or ``title`` + ``content`` for the petitions corpus);
* ``tsv``   - tab-separated rows under a header line, text in the named column(s), one document
  per row, no quoting (e.g. NSMC's ``id<TAB>document<TAB>label``).

``fmt="auto"`` picks the format from the extension (``.jsonl``/``.json``) or, failing that, from
the first non-blank line. Errors name the file and line so a bad row among millions is easy to fix.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hanformer.errors import InputError
from hanformer.utils.files import iter_lines, plain_suffix, require_file

Format = Literal["auto", "text", "wiki", "jsonl", "tsv"]
FORMATS: tuple[str, ...] = ("auto", "text", "wiki", "jsonl", "tsv")

_DOC_OPEN = re.compile(r"<doc\b([^>]*)>\s*$")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Document:
    """One document of a corpus.

    `line` is the 1-based line where the document starts in `source` (the ``<doc>`` tag, the
    JSON line, or the first text line), so later stages can point users back at their data.
    `lines` holds the non-empty paragraphs/sentences in order, without the title.
    """

    source: str
    line: int
    title: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def detect_format(path: str | os.PathLike[str]) -> str:
    """Guess 'text', 'wiki', 'jsonl' or 'tsv' from the extension, then from the first non-blank line."""
    p = Path(path)
    suffix = plain_suffix(p)
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".tsv":
        return "tsv"
    for _, line in iter_lines(p):
        stripped = line.lstrip("\ufeff").strip()
        if not stripped:
            continue
        if _DOC_OPEN.match(stripped):
            return "wiki"
        if stripped.startswith("{"):
            try:
                if isinstance(json.loads(stripped), dict):
                    return "jsonl"
            except json.JSONDecodeError:
                pass
        return "text"
    return "text"


def iter_documents(
    path: str | os.PathLike[str],
    fmt: str = "auto",
    text_fields: Sequence[str] | str = ("text",),
    *,
    skip_empty: bool = True,
) -> Iterator[Document]:
    """Yield the documents of one file.

    `text_fields` names the JSON-lines field(s) that hold text; several fields are read in order
    (e.g. ``("title", "content")``). With `skip_empty`, documents without any non-empty body
    line (title-only wiki stubs, blank JSON texts) are left out. A file that yields no document
    at all is an error, since training on nothing is never what the user meant.
    """
    p = require_file(path, "input file")
    if fmt not in FORMATS:
        raise InputError(f"unknown text format {fmt!r} for {p}; use one of {', '.join(FORMATS)}")
    if isinstance(text_fields, str):
        text_fields = tuple(f for f in text_fields.split(",") if f)
    if fmt == "auto":
        fmt = detect_format(p)
    readers = {"text": _read_text, "wiki": _read_wiki, "jsonl": _read_jsonl, "tsv": _read_tsv}
    count = 0
    for doc in readers[fmt](p, tuple(text_fields)):
        if skip_empty and not doc.lines:
            continue
        count += 1
        yield doc
    if count == 0:
        raise InputError(f"{p}: no text found (empty file, or every document is empty; format {fmt!r})")


def iter_text_lines(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    fmt: str = "auto",
    text_fields: Sequence[str] | str = ("text",),
    *,
    include_titles: bool = True,
) -> Iterator[str]:
    """Yield every non-empty line of every document of `paths` (files or folders), for
    tokenizer training and statistics. Titles are text too, so they are included by default."""
    for p in expand_paths(paths):
        for doc in iter_documents(p, fmt, text_fields, skip_empty=False):
            if include_titles and doc.title:
                yield doc.title
            yield from doc.lines


def expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; folders become their files in sorted order (recursively), leaving out
    hidden files and Markdown (data folders usually carry a README.md that is not corpus text)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(
                f for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and f.suffix.lower() != ".md"
            )
            if not files:
                raise InputError(f"input folder has no text files: {p}")
            out.extend(files)
        else:
            out.append(require_file(p, "input file"))
    if not out:
        raise InputError("no input files given")
    return out


def _clean(line: str, line_no: int) -> str:
    # A UTF-8 byte-order mark is an editor artefact, never text.
    return (line[1:] if line_no == 1 and line.startswith("\ufeff") else line).strip()


def _read_text(p: Path, _fields: tuple[str, ...]) -> Iterator[Document]:
    doc: Document | None = None
    for line_no, raw in iter_lines(p):
        line = _clean(raw, line_no)
        if not line:
            if doc is not None:
                yield doc
                doc = None
            continue
        if doc is None:
            doc = Document(str(p), line_no)
        doc.lines.append(line)
    if doc is not None:
        yield doc


def _read_wiki(p: Path, _fields: tuple[str, ...]) -> Iterator[Document]:
    doc: Document | None = None
    expect_title = False
    for line_no, raw in iter_lines(p):
        line = _clean(raw, line_no)
        if doc is None:
            if not line:
                continue
            m = _DOC_OPEN.match(line)
            if m is None:
                raise InputError(
                    f"{p}:{line_no}: text outside a <doc ...> block in a wiki-extractor file "
                    f"(read it with format 'text' if it is plain text)"
                )
            attrs = dict(_ATTR.findall(m.group(1)))
            doc = Document(str(p), line_no, attrs.get("title"))
            expect_title = True
            continue
        if line == "</doc>":
            yield doc
            doc = None
            continue
        if _DOC_OPEN.match(line):
            raise InputError(f"{p}:{line_no}: <doc> opened before the <doc> at line {doc.line} was closed")
        if not line:
            continue
        if expect_title:
            expect_title = False
            # WikiExtractor repeats the title as the block's first line; it is not body text.
            if doc.title is None:
                doc.title = line
                continue
            if line == doc.title:
                continue
        doc.lines.append(line)
    if doc is not None:
        raise InputError(f"{p}:{doc.line}: <doc> is never closed (file truncated? add '</doc>')")


def _read_jsonl(p: Path, fields: tuple[str, ...]) -> Iterator[Document]:
    if not fields:
        raise InputError(f"{p}: no JSON text field given (use e.g. --text-fields text)")
    for line_no, raw in iter_lines(p):
        line = _clean(raw, line_no)
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{line_no}: invalid JSON at column {e.colno}: {e.msg}") from None
        if not isinstance(obj, dict):
            raise InputError(f"{p}:{line_no}: expected a JSON object, got {type(obj).__name__}")
        title = obj.get("title")
        # A title that is also read as text is not repeated as metadata (it would count twice).
        doc = Document(str(p), line_no, title if isinstance(title, str) and "title" not in fields else None)
        for name in fields:
            if name not in obj:
                keys = ", ".join(sorted(obj)) or "none"
                raise InputError(
                    f"{p}:{line_no}: missing text field {name!r} (fields present: {keys}; "
                    f"choose them with --text-fields)"
                )
            value = obj[name]
            if value is None:
                continue
            if not isinstance(value, str):
                raise InputError(f"{p}:{line_no} (field {name!r}): expected a string, got {type(value).__name__}")
            doc.lines.extend(s for s in (part.strip() for part in value.splitlines()) if s)
        yield doc


def _read_tsv(p: Path, fields: tuple[str, ...]) -> Iterator[Document]:
    lines = iter_lines(p)
    header_line = next(lines, None)
    if header_line is None:
        return
    header = _clean(header_line[1], 1).split("\t")
    missing = [f for f in fields if f not in header]
    if not fields or missing:
        raise InputError(
            f"{p}:1: header has no column {(missing or ['(none given)'])[0]!r} (columns: {', '.join(header)}; "
            f"choose them with --text-fields)"
        )
    columns = [header.index(f) for f in fields]
    for line_no, raw in lines:
        if not raw.strip():
            continue
        cells = raw.split("\t")
        if len(cells) != len(header):
            raise InputError(f"{p}:{line_no}: {len(cells)} tab-separated columns, the header has {len(header)}")
        doc = Document(str(p), line_no)
        doc.lines.extend(s for s in (cells[i].strip() for i in columns) if s)
        yield doc
