"""A task's section of the report: the scores of every model side by side, the gaps, the
baselines, the fine-tuning curves, the confusion matrix and example predictions."""

from __future__ import annotations

from typing import Any

from hanformer.recipes import plots
from hanformer.recipes.report.format import (
    TFIDF,
    diff_cell,
    esc,
    fmt,
    fmt_seconds,
    fmt_spread,
    gap,
    html_table,
    is_number,
    xy,
)
from hanformer.recipes.report.metric_names import PRIMARY_METRICS, first_key, is_fraction

# The scores a task's comparison row holds: key, name in the figure, name in the sentence.
COMPARED = (("pretrained", "pretrained", "pretrained"), ("scratch", "scratch", "from scratch"),
             ("tfidf", TFIDF, TFIDF), ("majority", "majority", "majority class"))
COMPARED_KEYS = {key for key, _, _ in COMPARED}
_GAINS = (("gain", "from scratch"), ("gain_over_tfidf", TFIDF), ("gain_over_majority", "majority class"))


def task_section(name: str, entry: dict[str, Any], comparison: dict[str, Any]) -> str:
    runs = entry["runs"]
    out = [f"<h2>Task: {esc(name)}</h2>"]
    desc = []
    if entry.get("task") and entry.get("task") != name:
        desc.append(f"task <b>{esc(entry['task'])}</b>")
    if entry.get("data"):
        desc.append(f"held-out file <code>{esc(entry['data'])}</code>")
    if entry.get("n"):
        desc.append(f"{entry['n']:,} examples")
    seeds = next((r["seeds"] for r in runs.values() if r.get("seeds")), None)
    if seeds:
        desc.append(f"each model fine-tuned with seeds {', '.join(map(str, seeds))}: mean ± standard deviation")
    if desc:
        out.append(f'<p class="lead">{", ".join(desc)}.</p>')

    # Final numbers side by side.
    baseline = entry.get("tfidf_baseline")
    table = _scores_table(runs, baseline)
    comp = comparison.get(name)
    bars = {label: comp[key] for key, label, _ in _compared(comp)
            if isinstance(comp.get(key), (int, float))} if comp else {}
    if comp and len(bars) >= 2:
        svg = plots.bar_comparison(comp["metric"], bars, is_fraction(comp["metric"], *bars.values()))
        table = f'<div class="row"><div>{table}</div><div class="fig">{svg}</div></div>'
    out.append(table)
    if comp:
        out.append(_gaps_sentence(comp))
    out.append(_baseline_note(baseline, entry.get("tfidf_baseline_absent")))
    out.append(_majority_note(next(iter(runs.values()))))
    out.append(_answer_types_note(runs))

    # Curves: training loss and the validation metric, both initialisations on one axis.
    loss_series, eval_series = [], []
    eval_key = None
    for init, run in runs.items():
        train = run.get("curves", {}).get("train", [])
        evals = run.get("curves", {}).get("eval", [])
        color = plots.COLORS.get(init)
        loss_series.append({"label": init, "color": color, **xy(train, "loss")})
        eval_key = eval_key or first_key(evals, PRIMARY_METRICS)
        eval_series.append({"label": init, "color": color, **xy(evals, eval_key)})
    panels: list[dict[str, Any]] = [{"title": "training loss", "series": loss_series}]
    if eval_key:
        panels.append({"title": f"validation {eval_key}", "ylabel": eval_key,
                       "percent": is_fraction(eval_key, *(v for s in eval_series for v in s["y"])),
                       "series": eval_series})
    out.append("<h3>Fine-tuning curves</h3>")
    out.append(f'<div class="fig">{plots.line_panels(panels)}</div>')

    confusions = {i: r["confusion"] for i, r in runs.items() if r.get("confusion")}
    if confusions and entry.get("labels"):
        out.append("<h3>Confusion matrix (held-out)</h3>")
        out.append(f'<div class="fig">{plots.confusion_matrices([str(x) for x in entry["labels"]], confusions)}</div>')

    for init, run in runs.items():
        examples = run.get("examples") or []
        if not examples:
            continue
        out.append(f'<h3>Example predictions — <span class="{"pre" if init == "pretrained" else "scr"}">{esc(init)}</span></h3>')
        rows_html = []
        for ex in examples:
            ok = ex.get("correct")
            mark = '<span class="tag ok">right</span>' if ok else '<span class="tag no">wrong</span>'
            prob = ex.get("probability")
            text = esc(ex.get("text", ""))
            if ex.get("text_pair"):
                text += f'<br><span class="note">{esc(ex["text_pair"])}</span>'
            rows_html.append(
                f'<tr class="{"" if ok else "wrong"}"><td>{mark}</td><td>{text}</td><td>{esc(ex.get("gold", ""))}</td>'
                f'<td>{esc(ex.get("prediction", ""))}</td><td class="num">{fmt(prob, "accuracy") if isinstance(prob, float) else "–"}</td></tr>')
        out.append("<table><thead><tr><th></th><th>text</th><th>gold</th><th>predicted</th>"
                   '<th class="num">confidence</th></tr></thead><tbody>' + "".join(rows_html) + "</tbody></table>")
    return "\n".join(out)


def _compared(comp: dict[str, Any]) -> list[tuple[str, str, str]]:
    """COMPARED with each variant's model after the recipe's pretrained one."""
    variants = [(v, v, f"variant {v}") for v in comp.get("variants", [])]
    return [COMPARED[0], *variants, *COMPARED[1:]]


def _column_name(column: str) -> str:
    css = {"pretrained": "pre", "scratch": "scr"}.get(column, "base")
    return f'<span class="{css}">{esc(column)}</span>'


def _scores_table(runs: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """Every score of the models (mean ± std over seeds) and of the TF-IDF baseline, and the
    pretrained model's lead over the others."""
    columns: dict[str, dict[str, Any]] = {**runs, **({TFIDF: baseline} if baseline else {})}
    variants = [c for c in runs if c not in COMPARED_KEYS]
    pairs = [("pretrained", "scratch"), ("pretrained", TFIDF), *((v, "pretrained") for v in variants)]
    gaps = [(a, b) for a, b in pairs if a in columns and b in columns]
    metric_names: list[tuple[str, str]] = []
    for run in runs.values():
        for part in ("test", "valid"):
            for k, v in (run.get(part) or {}).items():
                if is_number(v) and (part, k) not in metric_names:
                    metric_names.append((part, k))
    rows = []
    for part, k in metric_names:
        vals: dict[str, Any] = {c: (col.get(part) or {}).get(k) for c, col in columns.items()}  # read from JSON
        spreads = {c: (col.get(f"{part}_std") or {}).get(k) for c, col in columns.items()}
        label = {"test": "held-out", "valid": "validation (best)"}[part]
        rows.append([f"{label}: {esc(k)}", *(fmt_spread(vals[c], spreads[c], k) for c in columns),
                     *(diff_cell(vals[a], vals[b], k) for a, b in gaps)])
    rows.append(["training time", *(fmt_seconds(col.get("seconds")) for col in columns.values()), *([""] * len(gaps))])
    headers = ["", *(_column_name(c) for c in columns), *(f"{a} − {b}" for a, b in gaps)]
    return html_table(headers, rows, tuple(range(1, len(columns) + len(gaps) + 1)))


def _gaps_sentence(comp: dict[str, Any]) -> str:
    """'held-out accuracy: pretrained X / from scratch Y / TF-IDF Z / majority class W. Pretrained
    − from scratch = +0.50 points; pretrained − TF-IDF = +1.30 points; ...': the task's main score of
    every model side by side, and the pretrained model's lead over each."""
    m = comp["metric"]
    scores = [f"{word} {fmt_spread(comp[key], comp.get(f'{key}_std'), m)}"
              for key, _, word in _compared(comp) if is_number(comp.get(key))]
    gaps = [f"pretrained − {word} = {gap(comp[key], m, comp.get('pretrained'), unit='points')}"
            for key, word in _GAINS if is_number(comp.get(key))]
    gaps += [f"variant {v} − pretrained = {gap(comp[f'gain_of_{v}'], m, comp.get(v), unit='points')}"
             for v in comp.get("variants", []) if is_number(comp.get(f"gain_of_{v}"))]
    if not gaps:
        return ""
    said = "; ".join(gaps)
    return f'<p class="gaps">{esc(comp["on"])} {esc(m)}: {" / ".join(scores)}. {said[0].upper()}{said[1:]}.</p>'


def _baseline_note(baseline: dict[str, Any] | None, absent: str | None) -> str:
    """What the TF-IDF column is, or why there is none."""
    if absent:
        return f'<p class="note">No TF-IDF baseline: {esc(absent)}.</p>'
    if not baseline:
        return ""
    held_out = (f" and the same {baseline['test_examples']:,} held-out examples"
                if is_number(baseline.get("test_examples")) else "")
    return (f'<p class="note">{TFIDF}: character n-gram TF-IDF + logistic regression '
            f'(<code>hanformer baseline</code>, {esc(baseline.get("model", ""))}), trained on the same '
            f'{baseline.get("train_examples", 0):,} training examples and scored on the same '
            f'{baseline.get("valid_examples", 0):,} validation examples{held_out}; it is deterministic '
            "(no spread over seeds). The models' validation scores are of their best epoch, chosen on "
            "that carve; the baseline chose nothing there.</p>")


def _answer_types_note(runs: dict[str, Any]) -> str:
    """What the entity_answer_* / other_answer_* rows count."""
    kinds = next((r["valid_answer_types"] for r in runs.values() if r.get("valid_answer_types")), None)
    if not kinds:
        return ""
    counts = kinds.get("questions", {})
    return (f'<p class="note">By answer type: <b>entity_answer</b> rows score the {counts.get("entity", 0):,} '
            f'validation questions whose gold answer overlaps a span Kiwi tags {esc("/".join(kinds.get("tags", [])))} '
            f'in the context, <b>other_answer</b> rows the {counts.get("other", 0):,} others; every model '
            "is scored on the same questions.</p>")


def _majority_note(run: dict[str, Any]) -> str:
    """The floor under a classifier's scores: what always answering one class gets."""
    parts, label = [], None
    for part, name in (("test", "held-out"), ("valid", "validation")):
        floor = run.get(f"{part}_majority") or {}
        scores = [f"{esc(k)} {fmt(v, k)}" for k, v in floor.items() if k != "label" and isinstance(v, (int, float))]
        if scores:
            parts.append(f"{name}: {', '.join(scores)}")
            label = floor.get("label")
    if not parts:
        return ""
    return (f'<p class="note">Always answering the most frequent training class ({esc(label)}) scores '
            f'{"; ".join(parts)}: the floor a model has to clear.</p>')
