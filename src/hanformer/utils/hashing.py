"""Content hashes used to detect changed inputs and mismatched vocabularies."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_json(obj: Any) -> str:
    """Stable hash of a JSON-serialisable object (keys sorted)."""
    return hash_bytes(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode())


def hash_tree(path: str | os.PathLike[str]) -> str:
    """Hash of every file below `path` (names and contents), for stage caching."""
    root = Path(path)
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(root) if p != root else p.name).encode())
        h.update(hash_file(p).encode())
    return h.hexdigest()
