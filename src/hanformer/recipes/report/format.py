"""Numbers and tables as the report shows them: percentages, spreads, durations, HTML tables."""

from __future__ import annotations

import html
from typing import Any

from hanformer.recipes.report.metric_names import FRACTION_METRICS, is_fraction

TFIDF = "TF-IDF"  # the classic baseline's name in the tables and the figure


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(value: Any, metric: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if (metric in FRACTION_METRICS or metric.endswith(("accuracy", "_f1", "_rate"))) and abs(value) <= 1:
            return f"{100 * value:.2f}%"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return esc(value)


def fmt_spread(value: Any, std: Any, metric: str) -> str:
    """`value ± std` (std in the value's units: points for percentages) when runs were repeated."""
    shown = fmt(value, metric)
    if not isinstance(std, float) or not isinstance(value, float):
        return shown
    return shown + (f" ± {100 * std:.2f}" if shown.endswith("%") else f" ± {std:.2g}")


def fmt_seconds(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "–"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {s % 60:04.1f} s"


def html_table(headers: list[str], rows: list[list[str]], num_cols: tuple[int, ...] = ()) -> str:
    head = "".join(f'<th class="num">{h}</th>' if i in num_cols else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>"
                         for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def xy(rows: list[dict[str, Any]], key: str | None) -> dict[str, list[Any]]:
    """One curve for `plots.line_panels`: the steps and values of `key` where it was logged."""
    pts = [(r["step"], r[key]) for r in rows if key is not None and key in r]
    return {"x": [p[0] for p in pts], "y": [p[1] for p in pts]}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def gap(d: float, metric: str, *values: Any, unit: str = "pts") -> str:
    """A difference of two scores: in points for percentages."""
    return f"{100 * d:+.2f} {unit}" if is_fraction(metric, *values) else f"{d:+.4g}"


def diff_cell(a: Any, b: Any, metric: str) -> str:
    if not (is_number(a) and is_number(b)):
        return ""
    d = a - b
    return f'<span class="{"good" if d > 0 else "bad" if d < 0 else ""}">{gap(d, metric, a, b)}</span>'
