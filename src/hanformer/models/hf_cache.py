"""Model names that are not local folders, found in the Hugging Face cache (never downloaded).

`--model klue/bert-base` works wherever `huggingface_hub` (or `transformers`) has already
downloaded that model. The cache layout is the hub's:

    $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
      models--klue--bert-base/
        refs/main                    the commit hash that `main` points to
        snapshots/<hash>/config.json files (usually links into blobs/)
        blobs/<sha256>

hanformer reads that layout and nothing else: it never opens a network connection, so a model
that is not cached is an error that says how to download it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hanformer.errors import CheckpointError

# The hub's repository ids: "name" or "owner/name" of letters, digits, "-", "_", ".".
_REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def hub_cache_dir() -> Path:
    """Where the hub keeps models, as `huggingface_hub` decides it (HF_HUB_CACHE > HF_HOME > XDG)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def is_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to a true value."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def looks_like_repo_id(name: str) -> bool:
    return bool(_REPO_ID.match(name)) and ".." not in name and "--" not in name and len(name) <= 96 \
        and not name.startswith(("-", ".")) and not name.endswith(("-", "."))


def repo_folder(repo_id: str, cache: Path | None = None) -> Path:
    """The cache folder of a model repository: models--owner--name."""
    return (cache or hub_cache_dir()) / "--".join(["models", *repo_id.split("/")])


def cached_snapshot(repo_id: str, revision: str = "main", cache: Path | None = None) -> Path | None:
    """The snapshot folder of `repo_id` at `revision` (a branch, a tag or a commit hash), or None."""
    if not looks_like_repo_id(repo_id):
        return None
    repo = repo_folder(repo_id, cache)
    ref = repo / "refs" / revision
    commit = revision
    if "/" not in revision and ref.is_file():
        commit = ref.read_text(encoding="utf-8", errors="replace").strip()
    # The ref file's content becomes a path part: only a commit hash may (no "../" tricks).
    if not _COMMIT.match(commit):
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def locate_model(name: str | os.PathLike[str]) -> Path:
    """A local path as given, else the cached snapshot of the hub model of that name.

    Every command that takes a model goes through this, so `--model owner/name` works once the
    model is in the Hugging Face cache. A path that exists is always used as is (a local folder
    named like a hub model wins).
    """
    path = Path(name)
    if path.exists():
        return path
    text = os.fspath(name)
    if not looks_like_repo_id(text):
        raise CheckpointError(f"checkpoint directory not found: {path}")
    snapshot = cached_snapshot(text)
    if snapshot is not None:
        return snapshot
    cache = hub_cache_dir()
    if is_offline():
        how = (f"HF_HUB_OFFLINE is set and hanformer never downloads; download it where the network is "
               f"reachable with `hf download {text}` (into this cache) or pass a folder")
    else:
        how = f"hanformer never downloads; download it with `hf download {text}` or pass a folder"
    raise CheckpointError(f"{text}: not a folder and not in the Hugging Face cache at {repo_folder(text, cache)}; "
                          + how)
