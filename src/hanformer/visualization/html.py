"""One self-contained HTML file with the attention views (no CDN, no notebook; opens offline).

The CSS and JavaScript come from `visualization/assets/` and are inlined, together with the
attention data as JSON. The web app (`hanformer serve`) serves the very same two asset files,
so the offline file and the page always show the same views.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from hanformer.errors import ConfigError
from hanformer.utils.files import atomic_write
from hanformer.visualization.config import Mode, View

ASSETS_DIR = Path(__file__).parent / "assets"


class ViewData(Protocol):
    """What the page reads of `attention.AttentionData`. Named here rather than imported, so
    that `AttentionData._repr_html_` can render through this module without an import cycle."""

    tokens: list[str]
    text: str
    pair: str | None

    @property
    def num_layers(self) -> int: ...

    @property
    def num_heads(self) -> int: ...

    def to_dict(self, packed: bool = False, decimals: int = 4) -> dict[str, Any]: ...


@cache
def asset_text(name: str) -> str:
    """The text of one file in `visualization/assets/` (the JS and CSS shared with the web app)."""
    return (ASSETS_DIR / name).read_text(encoding="utf-8")


def view_options(data: ViewData, layer: int | None = None, heads: Sequence[int] | None = None,
                 mode: Mode = "heads", view: View = "head") -> dict[str, Any]:
    """Check the initial view settings against the model's shape; the page starts from these."""
    if layer is not None and not -data.num_layers <= layer < data.num_layers:
        raise ConfigError(f"--layer {layer} is out of range: the model has {data.num_layers} layers "
                          f"(0..{data.num_layers - 1}; -1 is the last)")
    bad = [h for h in (heads or []) if not 0 <= h < data.num_heads]
    if bad:
        raise ConfigError(f"--heads {','.join(map(str, bad))} out of range: the model has "
                          f"{data.num_heads} heads per layer (0..{data.num_heads - 1})")
    if mode not in ("heads", "mean", "rollout"):
        raise ConfigError(f"mode {mode!r} is not one of 'heads', 'mean', 'rollout'")
    if view not in ("head", "model"):
        raise ConfigError(f"view {view!r} is not one of 'head', 'model'")
    if layer is None:
        layer = data.num_layers - 1
    return {"layer": layer % data.num_layers, "heads": sorted(set(heads)) if heads else None,
            "mode": mode, "view": view}


def _json_for_script(obj: Any) -> str:
    # Inside <script> only "<" can end the element early ("</script>", "<!--"); escape them all.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def render_attention_html(data: ViewData, *, layer: int | None = None,
                          heads: Sequence[int] | None = None, mode: Mode = "heads",
                          view: View = "head", title: str | None = None,
                          model_name: str | None = None) -> str:
    """The HTML text of the attention views of `data` (head view, model view, aggregates)."""
    options = view_options(data, layer, heads, mode, view)
    sentence = data.text if data.pair is None else f"{data.text} / {data.pair}"
    heading = title or "Attention"
    meta = f"{len(data.tokens)} tokens · {data.num_layers} layers × {data.num_heads} heads"
    if model_name:
        meta = f"{model_name} · {meta}"
    values = {
        "TITLE": html.escape(f"{heading}: {sentence}" if sentence else heading),
        "HEADING": html.escape(heading),
        "META": html.escape(f"“{sentence}” · {meta}" if sentence else meta),
        "CSS": asset_text("attention.css"),
        "JS": asset_text("attention.js"),
        "DATA": _json_for_script({"data": data.to_dict(packed=True), "options": options}),
    }
    # One pass, so placeholders that happen to appear inside the user's text stay as typed.
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: values[m.group(1)], asset_text("view.html"))


def write_attention_html(data: ViewData, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write `render_attention_html(data, **options)` to `path` atomically; returns the path."""
    path = Path(path)
    text = render_attention_html(data, **options)
    with atomic_write(path) as f:
        f.write(text)
    path.chmod(0o644)  # a page to open and share, not a private temp file
    return path
