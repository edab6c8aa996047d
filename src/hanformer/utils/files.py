"""Safe file writing and friendly file reading."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from hanformer.errors import ConfigError, InputError

# Compressed text is read through these, chosen by the file's suffix.
_DECOMPRESSORS: dict[str, Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file next to `path` with the permissions a plain open() would give.

    mkstemp creates files readable by their owner only; outputs (reports, checkpoints) are
    meant to be shared like any other file, so apply the usual umask instead.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temporary file beside `path`, then rename it into place.

    A crash or Ctrl-C in the middle leaves the old file (or nothing), never half a file.
    """
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def atomic_save(path: str | os.PathLike[str], write_fn: Any) -> None:
    """Call `write_fn(tmp_path)` to produce a file, then rename it to `path` atomically.

    For libraries that insist on writing to a path themselves (safetensors, torch.save).
    """
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder (or file) above `path` that exists: where a new file's folders start."""
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def check_output_file(path: str | os.PathLike[str], option: str = "output file", *, overwrite: bool = True,
                      inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Return `path` as a Path, or raise a one-line ConfigError if no file can be written there.

    Refused: a directory, a place under a file or in a folder without write permission, one of
    the `inputs` (writing it would replace what is being read) and, with `overwrite=False`, any
    existing file. Commands call this before they start working, so a bad output path fails at
    once instead of after the work; `atomic_write` and `atomic_save` call it too. `option` names
    the setting in the message (e.g. '--output').
    """
    p = Path(path)
    label = f"{option} {p}"
    if p.is_dir():
        raise ConfigError(f"{label}: is a directory; give a file path, e.g. {p / 'out.json'}")
    if p.exists():
        if any(_same_file(p, Path(i)) for i in inputs if str(i) not in ("", "-")):
            raise ConfigError(f"{label}: is also the input file, which writing would replace; "
                              "choose another output file")
        if not overwrite:
            raise ConfigError(f"{label}: already exists; remove it or choose another name")
    folder = _existing_ancestor(p)
    if not folder.is_dir():
        raise ConfigError(f"{label}: {folder} is a file, not a folder, so nothing can be written under it")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{label}: the folder {folder} is not writable (permissions); choose another place")
    return p


def require_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """Return `path` as a Path, or raise a one-line error if it is not a readable file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found: {p}")
    if p.is_dir():
        raise InputError(f"{what} is a directory, expected a file: {p}")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} is not readable (permissions): {p}")
    return p


def _not_utf8(name: object, line_no: int, byte: int | None = None) -> InputError:
    at = f" at byte {byte}" if byte is not None else ""
    return InputError(f"{name}:{line_no}: not valid UTF-8{at} "
                      f"(re-encode the file as UTF-8, e.g. `iconv -f cp949 -t utf-8`)")


def _decoded_lines(lines: Iterable[bytes | str], name: object) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without newline) of raw lines; bytes are decoded as UTF-8 and
    a bad byte raises an InputError naming `name`, the line and the byte offset."""
    line_no = 0
    offset = 0
    iterator = iter(lines)
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError:  # a text stream that decodes by itself
            raise _not_utf8(name, line_no + 1) from None
        line_no += 1
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _not_utf8(name, line_no, offset + e.start) from None
            offset += len(raw)
        else:
            text = raw
        yield line_no, text.rstrip("\r\n")


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without newline) of a UTF-8 text file, which may be
    compressed (.gz, .bz2, .xz: decompressed as it is read, so a corpus can ship compressed).

    Non-UTF-8 bytes raise an InputError naming the file, line and byte offset.
    """
    p = require_file(path)
    decompress = _DECOMPRESSORS.get(p.suffix.lower())
    if decompress is None:
        with open(p, "rb") as f:
            yield from _decoded_lines(f, p)
        return
    try:
        with decompress(p, "rb") as f:
            yield from _decoded_lines(f, p)
    except (OSError, EOFError, lzma.LZMAError) as e:  # truncated or not really compressed
        raise InputError(f"{p}: cannot be decompressed as {p.suffix} ({e}); "
                         f"check the file, or rename it if it is plain text") from None


def plain_suffix(path: str | os.PathLike[str]) -> str:
    """The suffix that names the text format, under any compression suffix (`a.tsv.gz` -> `.tsv`)."""
    p = Path(path)
    if p.suffix.lower() in _DECOMPRESSORS:
        p = Path(p.stem)
    return p.suffix.lower()


def text_size(path: str | os.PathLike[str]) -> int:
    """Bytes of text `iter_lines` reads from `path`, for progress bars: the file's size, or for a
    gzip file its uncompressed size (the trailer holds it, modulo 4 GiB). For bzip2 and xz,
    whose sizes are not cheap to read, the compressed size: a bar over them runs past 100%."""
    p = Path(path)
    size = p.stat().st_size
    if p.suffix.lower() == ".gz" and size >= 18:
        with open(p, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little") or size
    return size


def iter_stream_lines(stream: IO[Any], name: str = "<stdin>") -> Iterator[tuple[int, str]]:
    """`iter_lines` for an open stream (standard input): its bytes are read and decoded here, so
    non-UTF-8 input is an InputError naming `name` and the line, not a traceback."""
    yield from _decoded_lines(getattr(stream, "buffer", stream), name)
