"""The report's figures, drawn with matplotlib and returned as embeddable SVG text.

SVG keeps text as text (`svg.fonttype = "none"`), so Hangul tokens are drawn by the reader's
browser with its own Korean fonts instead of being baked in as missing-glyph boxes by a
plotting machine that has none. Every function takes plain numbers (lists, dicts) and returns
an SVG string, so the figures are easy to test and to reuse.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

# One colour per model initialisation, used in every figure so the reader learns it once.
COLORS = {"pretrained": "#1f6feb", "scratch": "#d97706", "train": "#1f6feb", "eval": "#b91c1c",
          "TF-IDF": "#4b5563", "majority": "#c4c9d0"}
FONT_STACK = ["DejaVu Sans", "Noto Sans CJK KR", "NanumGothic", "Malgun Gothic", "Apple SD Gothic Neo",
              "sans-serif"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _drawing(**overrides: Any) -> Iterator[Any]:
    """pyplot with the report's style. Text stays text in the SVG, so a missing Korean font on
    the drawing machine only affects label measurement: its warnings are noise here."""
    plt = _pyplot()
    with plt.rc_context({**_style(), **overrides}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        yield plt


def _style() -> dict[str, Any]:
    return {
        "svg.fonttype": "none",
        "font.family": "sans-serif",
        "font.sans-serif": FONT_STACK,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.25,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "legend.frameon": False,
    }


def _svg(fig: Any) -> str:
    plt = _pyplot()
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    # Drop the XML prolog and DOCTYPE: the SVG is inlined into HTML.
    return text[text.index("<svg"):]


def _finite(xs: Sequence[Any], ys: Sequence[Any]) -> tuple[list[float], list[float]]:
    px, py = [], []
    for x, y in zip(xs, ys, strict=True):
        if isinstance(y, (int, float)) and not isinstance(y, bool) and math.isfinite(y):
            px.append(float(x))
            py.append(float(y))
    return px, py


def line_panels(panels: list[dict[str, Any]], columns: int = 2, width: float = 9.5,
                height: float = 2.6) -> str:
    """A grid of line charts.

    Each panel: {"title", "xlabel", "ylabel", "series": [{"label", "x", "y", "color"?, "style"?}],
    "percent"?: bool, "logy"?: bool}. Panels with no finite points say "no data".
    """
    with _drawing() as plt:
        rows = max(1, math.ceil(len(panels) / columns))
        fig, axes = plt.subplots(rows, columns, figsize=(width, height * rows), squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i >= len(panels):
                ax.set_visible(False)
                continue
            panel = panels[i]
            drawn = 0
            for s in panel.get("series", []):
                x, y = _finite(s["x"], s["y"])
                if not y:
                    continue
                if panel.get("percent"):
                    y = [100 * v for v in y]
                marker = "o" if len(y) <= 12 else None
                ax.plot(x, y, label=s.get("label"), color=s.get("color"), linestyle=s.get("style", "-"),
                        marker=marker, markersize=3, linewidth=1.4)
                drawn += 1
            if not drawn:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="#888")
            ax.set_title(panel.get("title", ""))
            ax.set_xlabel(panel.get("xlabel", "step"))
            ax.set_ylabel(panel.get("ylabel", "") + (" (%)" if panel.get("percent") else ""))
            if panel.get("logy") and drawn:
                ax.set_yscale("log")
            if drawn > 1 or any(s.get("label") for s in panel.get("series", [])[:1]) and drawn:
                ax.legend(fontsize=8)
        fig.tight_layout()
        return _svg(fig)


def confusion_matrices(labels: list[str], matrices: dict[str, list[list[int]]]) -> str:
    """Side-by-side confusion matrices (rows = gold, columns = predicted), one per model."""
    with _drawing(**{"axes.grid": False}) as plt:
        n = len(matrices)
        size = min(4.2, 1.6 + 0.45 * len(labels))
        fig, axes = plt.subplots(1, n, figsize=(size * n + 0.4, size), squeeze=False)
        for ax, (name, matrix) in zip(axes.flat, matrices.items(), strict=False):
            total = max(1, sum(sum(r) for r in matrix))
            ax.imshow(matrix, cmap="Blues")
            high = max(max(r) for r in matrix) if matrix else 0
            for i, row in enumerate(matrix):
                for j, v in enumerate(row):
                    ax.text(j, i, f"{v}\n{100 * v / total:.1f}%", ha="center", va="center", fontsize=8,
                            color="white" if v > high * 0.6 else "#111")
            ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 3 else 0)
            ax.set_yticks(range(len(labels)), labels)
            ax.set_xlabel("predicted")
            ax.set_ylabel("gold")
            ax.set_title(name, color=COLORS.get(name, "#111"))
        fig.tight_layout()
        return _svg(fig)


def bar_comparison(metric: str, values: dict[str, float], percent: bool = True, label_format: str | None = None) -> str:
    """One bar per model (pretrained, scratch, the TF-IDF and majority baselines) for the task's main
    metric, or any other value per model; `label_format` (e.g. "{:,.1f}") writes the value above each bar."""
    with _drawing() as plt:
        fig, ax = plt.subplots(figsize=(1.3 + 1.1 * len(values), 2.4))
        names = list(values)
        ys = [100 * values[n] if percent else values[n] for n in names]
        bars = ax.bar(range(len(names)), ys, width=0.6, color=[COLORS.get(n, "#888") for n in names])
        for b, v in zip(bars, ys, strict=True):
            label = label_format.format(v) if label_format else f"{v:.1f}" if percent else f"{v:.3f}"
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), label,
                    ha="center", va="bottom", fontsize=9, fontweight="bold")
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(metric + (" (%)" if percent else ""))
        ax.grid(axis="x", visible=False)
        if percent:
            ax.set_ylim(0, 100)
        fig.tight_layout()
        return _svg(fig)


def attention_heads(tokens: list[str], layer_heads: list[list[list[float]]], layer: int) -> str:
    """One layer's attention: the mean over heads (large, labelled) and every head (small).

    `layer_heads[h][i][j]`: how much token i attends to token j in head h.
    """
    heads = len(layer_heads)
    seq = len(tokens)
    mean = [[sum(layer_heads[h][i][j] for h in range(heads)) / heads for j in range(seq)] for i in range(seq)]
    with _drawing(**{"axes.grid": False}) as plt:
        big = min(6.0, 1.8 + 0.26 * seq)
        cols = min(heads, 4)
        rows = math.ceil(heads / cols)
        small = big / max(rows, 2) * 0.95
        fig = plt.figure(figsize=(big + cols * small + 0.6, max(big, rows * small) + 0.4))
        grid = fig.add_gridspec(rows, 1 + cols, width_ratios=[big] + [small] * cols)
        ax = fig.add_subplot(grid[:, 0])
        ax.imshow(mean, cmap="viridis", vmin=0, vmax=max(max(r) for r in mean) or 1)
        ax.set_xticks(range(seq), tokens, rotation=90, fontsize=8)
        ax.set_yticks(range(seq), tokens, fontsize=8)
        ax.set_title(f"layer {layer + 1}, mean over {heads} heads")
        ax.set_xlabel("attended to")
        ax.set_ylabel("attending token")
        for h in range(heads):
            sub = fig.add_subplot(grid[h // cols, 1 + h % cols])
            # Each head on its own scale: a diffuse head is still readable next to a sharp one.
            sub.imshow(layer_heads[h], cmap="viridis", vmin=0, vmax=max(max(r) for r in layer_heads[h]) or 1)
            sub.set_xticks([])
            sub.set_yticks([])
            sub.set_title(f"head {h + 1}", fontsize=8, fontweight="normal")
        fig.tight_layout()
        return _svg(fig)


def alignment_heatmap(source_tokens: list[str], output_tokens: list[str], weights: list[list[float]],
                      title: str) -> str:
    """Cross-attention of one translation: rows are output tokens, columns source tokens.

    `weights[i][j]`: how much output token i attended to source token j (each row sums to 1).
    """
    rows, cols = len(output_tokens), len(source_tokens)
    with _drawing(**{"axes.grid": False}) as plt:
        fig, ax = plt.subplots(figsize=(min(9.0, 1.6 + 0.32 * cols), min(9.0, 1.2 + 0.28 * rows)))
        ax.imshow(weights, cmap="Blues", vmin=0, vmax=max((max(r) for r in weights if r), default=1) or 1,
                  aspect="auto")
        ax.set_xticks(range(cols), source_tokens, rotation=90, fontsize=8)
        ax.set_yticks(range(rows), output_tokens, fontsize=8)
        ax.set_xlabel("source token")
        ax.set_ylabel("output token")
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        return _svg(fig)
