"""The run report: one self-contained `report.html` and the same numbers in `metrics.json`.

`collect_report_data` gathers what the stages left in their folders (manifests, the trainer's
JSON-lines metrics, the evaluation results, the attention of one sentence) into one JSON-ready
dict; that dict *is* `metrics.json`. `render_report` turns it into HTML with the figures inlined
as SVG, so the file opens anywhere, offline, and can be mailed around as it is.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from hanformer.recipes import plots
from hanformer.utils.machine import cpu_model

# Keys the trainer's metrics.jsonl uses for the curves we draw, in order of preference.
_LOSS_KEYS = ("loss",)
_MLM_KEYS = ("mlm_accuracy", "masked_lm_accuracy", "eval_mlm_accuracy", "mlm_acc")
_NSP_KEYS = ("nsp_accuracy", "eval_nsp_accuracy", "nsp_acc")
_PRIMARY_METRICS = ("accuracy", "entity_f1", "f1", "pearson", "exact_match", "spearman", "macro_f1")
# Metrics where larger is better and that live in [0, 1] (shown as percentages).
_FRACTION_METRICS = {"accuracy", "macro_f1", "f1", "entity_f1", "char_f1", "exact_match", "precision",
                     "recall", "mlm_accuracy", "nsp_accuracy", "rtd_accuracy", "rtd_baseline_accuracy",
                     "replaced_recall", "replaced_precision"}
_MAX_CURVE_POINTS = 400


# ----------------------------------------------------------------------------- collecting

def machine_facts(threads: int = 0) -> dict[str, Any]:
    """What a reader needs to compare timings: CPU, cores, threads, library versions."""
    import torch

    from hanformer import __version__

    cpu = cpu_model()
    facts = {
        "hanformer": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(terse=True),
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if threads:
        facts["threads_requested"] = threads
    try:
        import tokenizers

        facts["tokenizers"] = tokenizers.__version__
    except ImportError:  # pragma: no cover - a core dependency
        pass
    return facts


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash; the rest is still worth plotting
    return rows


def _thin(rows: list[dict[str, Any]], limit: int = _MAX_CURVE_POINTS) -> list[dict[str, Any]]:
    if len(rows) <= limit:
        return rows
    stride = len(rows) / limit
    kept = [rows[int(i * stride)] for i in range(limit)]
    if kept[-1] is not rows[-1]:
        kept.append(rows[-1])
    return kept


def curves_from_metrics(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Split trainer records by kind ("train"/"eval"), keeping numeric fields only."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        kind = str(r.get("kind", "train"))
        numeric = {k: v for k, v in r.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "time"}
        if "step" in numeric:
            out.setdefault(kind, []).append(numeric)
    return {k: _thin(v) for k, v in out.items()}


def _first_key(rows: list[dict[str, Any]], keys: tuple[str, ...], contains: tuple[str, ...] = ()) -> str | None:
    seen = set().union(*(r.keys() for r in rows)) if rows else set()
    for k in keys:
        if k in seen:
            return k
    for k in sorted(seen):
        if contains and all(c in k for c in contains):
            return k
    return None


def primary_metric(metrics: dict[str, Any]) -> str | None:
    for k in _PRIMARY_METRICS:
        if isinstance(metrics.get(k), (int, float)):
            return k
    numeric = [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return numeric[0] if numeric else None


def collect_report_data(recipe: Any, run_dir: Path, stages: list[dict[str, Any]],
                        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the report shows, as a JSON-ready dict (this is `metrics.json`).

    `stages`: one record per stage of this run (key, title, action, reason, seconds, budget).
    `extra`: what the report stage computed itself (the attention of the example sentence).
    """
    run_dir = Path(run_dir)
    data: dict[str, Any] = {
        "run": {
            "name": recipe.name,
            "description": recipe.run.description,
            "recipe": str(recipe.path),
            "recipe_text": Path(recipe.path).read_text(encoding="utf-8") if Path(recipe.path).is_file() else "",
            "run_dir": str(run_dir),
            "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seed": recipe.run.seed,
        },
        "machine": machine_facts(recipe.run.threads),
        "stages": stages,
    }
    tok = _manifest(run_dir / "tokenizer")
    if tok:
        data["tokenizer"] = tok.get("summary", {})
    pre = _manifest(run_dir / "pretrain")
    if pre:
        rows = read_jsonl(run_dir / "pretrain" / "metrics.jsonl")
        data["pretrain"] = {"final": pre.get("summary", {}), "curves": curves_from_metrics(rows)}
    evaluation = _manifest(run_dir / "evaluate")
    results = {}
    if evaluation:
        path = run_dir / "evaluate" / "results.json"
        if path.is_file():
            results = json.loads(path.read_text(encoding="utf-8")).get("tasks", {})
    tasks: dict[str, Any] = {}
    for name in recipe.finetune:
        entry: dict[str, Any] = {"runs": {}}
        entry.update({k: v for k, v in results.get(name, {}).items() if k != "runs"})
        for init in ("pretrained", "scratch"):
            man = _manifest(run_dir / "finetune" / name / init)
            if not man:
                continue
            summary = man.get("summary", {})
            seeds = summary.get("seeds") or []
            # Curves of the first seed when the runs were repeated.
            rows = read_jsonl(run_dir / "finetune" / name / init / (f"seed-{seeds[0]}" if seeds else "")
                              / "metrics.jsonl")
            run = {"valid": summary.get("valid", {}), "seconds": man.get("seconds"),
                   "curves": curves_from_metrics(rows),
                   **{k: summary[k] for k in ("valid_std", "seeds", "valid_runs", "valid_majority") if k in summary}}
            run.update(results.get(name, {}).get("runs", {}).get(init, {}))
            entry["runs"][init] = run
        baseline = _tfidf_baseline(run_dir, name, {str(s.get("key")) for s in stages})
        if baseline:
            entry["tfidf_baseline"] = baseline
        if entry["runs"]:
            tasks[name] = entry
    data["tasks"] = tasks
    data["comparison"] = _comparison(tasks)
    if extra:
        data.update(extra)
    return data


def _tfidf_baseline(run_dir: Path, name: str, stage_keys: set[str]) -> dict[str, Any] | None:
    """The TF-IDF baseline of task `name` (scores on the validation carve and the held-out file),
    when this recipe has that stage: the folder of an earlier run that had one is not read."""
    key = f"finetune/{name}/tfidf"
    man = _manifest(run_dir / key) if key in stage_keys else None
    if not man:
        return None
    return {**man.get("summary", {}), "seconds": man.get("seconds")}


def _manifest(stage_dir: Path) -> dict[str, Any] | None:
    from hanformer.recipes.stages import read_manifest

    man = read_manifest(stage_dir)
    return man if man and man.get("status") == "complete" else None


def _comparison(tasks: dict[str, Any]) -> dict[str, Any]:
    """Per task: the primary held-out metric of the pretrained and the from-scratch model."""
    out = {}
    for name, entry in tasks.items():
        runs = entry["runs"]
        ref = runs.get("pretrained") or next(iter(runs.values()))
        scores = ref.get("test") or ref.get("valid") or {}
        metric = primary_metric(scores)
        if metric is None:
            continue
        row: dict[str, Any] = {"metric": metric, "on": "held-out" if ref.get("test") else "validation"}
        for init, run in runs.items():
            part = "test" if run.get("test") else "valid"
            row[init] = (run.get(part) or {}).get(metric)
            std = (run.get(f"{part}_std") or {}).get(metric)
            if std is not None:
                row[f"{init}_std"], row["seeds"] = std, len(run.get("seeds") or [])
            floor = run.get(f"{part}_majority") or {}
            if isinstance(floor.get(metric), (int, float)):
                row["majority"], row["majority_label"] = floor[metric], floor.get("label")
        tfidf = (entry.get("tfidf_baseline") or {}).get("test" if row["on"] == "held-out" else "valid") or {}
        if isinstance(tfidf.get(metric), (int, float)):
            row["tfidf"] = tfidf[metric]
        pretrained = row.get("pretrained")
        if isinstance(pretrained, (int, float)):
            for other, key in (("scratch", "gain"), ("tfidf", "gain_over_tfidf"), ("majority", "gain_over_majority")):
                if isinstance(row.get(other), (int, float)):
                    row[key] = pretrained - row[other]
        out[name] = row
    return out


# ----------------------------------------------------------------------------- rendering

_CSS = """
:root { --ink:#1f2328; --muted:#656d76; --line:#d0d7de; --pre:#1f6feb; --scr:#d97706; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic",
       NanumGothic, Helvetica, Arial, sans-serif; color: var(--ink); margin: 0; background: #fff;
       line-height: 1.5; font-size: 15px; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 40px 0 8px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 6px; }
p.lead { color: var(--muted); margin: 0 0 18px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; margin: 18px 0; }
.card { border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; background: var(--bg); }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 24px; font-weight: 650; }
.card .s { color: var(--muted); font-size: 13px; }
.good { color: #1a7f37; } .bad { color: #cf222e; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.tag { white-space: nowrap; }
.pre { color: var(--pre); font-weight: 600; } .scr { color: var(--scr); font-weight: 600; }
.base { color: #4b5563; font-weight: 600; } p.gaps { margin: 4px 0 8px; }
.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.fig { margin: 8px 0 4px; overflow-x: auto; } .fig svg { max-width: 100%; height: auto; }
.note { color: var(--muted); font-size: 13px; }
tr.wrong td { background: #fff5f5; }
.tag { display: inline-block; padding: 0 6px; border-radius: 6px; font-size: 12px; border: 1px solid var(--line); }
.tag.ok { background: #dafbe1; border-color: #aceebb; } .tag.no { background: #ffebe9; border-color: #ffcecb; }
.tag.skip { background: #eef1f4; } .tag.run { background: #ddf4ff; border-color: #b6e3ff; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 12px;
      overflow-x: auto; font-size: 13px; }
details summary { cursor: pointer; color: var(--muted); }
"""


def _is_fraction(metric: str, *values: Any) -> bool:
    """Shown as a percentage? Accuracy-like metrics in [0, 1] (QA's EM/F1 already come as 0-100)."""
    return metric in _FRACTION_METRICS and all(abs(v) <= 1 for v in values if isinstance(v, (int, float)))


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(value: Any, metric: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if (metric in _FRACTION_METRICS or metric.endswith(("accuracy", "_f1", "_rate"))) and abs(value) <= 1:
            return f"{100 * value:.2f}%"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return _e(value)


def _fmt_spread(value: Any, std: Any, metric: str) -> str:
    """`value ± std` (std in the value's units: points for percentages) when runs were repeated."""
    shown = _fmt(value, metric)
    if not isinstance(std, float) or not isinstance(value, float):
        return shown
    return shown + (f" ± {100 * std:.2f}" if shown.endswith("%") else f" ± {std:.2g}")


def _seconds(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "–"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {s % 60:04.1f} s"


def _table(headers: list[str], rows: list[list[str]], num_cols: tuple[int, ...] = ()) -> str:
    head = "".join(f'<th class="num">{h}</th>' if i in num_cols else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>"
                         for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _xy(rows: list[dict[str, Any]], key: str | None) -> dict[str, list[Any]]:
    """One curve for `plots.line_panels`: the steps and values of `key` where it was logged."""
    pts = [(r["step"], r[key]) for r in rows if key is not None and key in r]
    return {"x": [p[0] for p in pts], "y": [p[1] for p in pts]}


def _objective_words(rtd: str | None, nsp: str | None) -> str:
    if rtd:
        return ("Replaced-token detection (ELECTRA: a small masked-LM generator fills the masks, the "
                "encoder learns to spot its replacements; the masked-LM figures are the generator's)")
    return "Masked-LM and next-sentence prediction" if nsp else "Masked-LM"


def _pretrain_section(pre: dict[str, Any]) -> str:
    train = pre.get("curves", {}).get("train", [])
    evals = pre.get("curves", {}).get("eval", [])
    mlm = _first_key(evals, _MLM_KEYS, ("mlm", "acc"))
    nsp = _first_key(evals, _NSP_KEYS, ("nsp", "acc"))
    rtd = _first_key(evals, ("rtd_accuracy",))
    tok_s = _first_key(train, ("tokens_per_s", "tokens_per_second"), ("tokens",))
    lr = _first_key(train, ("lr", "learning_rate"))
    eval_loss = _first_key(evals, ("loss", "eval_loss", "mlm_loss"))
    panels: list[dict[str, Any]] = [
        {"title": "loss", "series": [
            {"label": "train", "color": plots.COLORS["train"], **_xy(train, "loss")},
            {"label": "held-out masked-LM", "color": plots.COLORS["eval"], **_xy(evals, eval_loss)}]},
        {"title": "held-out accuracy", "percent": True, "ylabel": "accuracy", "series": [
            {"label": "masked LM", "color": "#6d28d9", **_xy(evals, mlm)},
            {"label": "next sentence", "color": "#059669", **_xy(evals, nsp)},
            {"label": "replaced-token detection", "color": "#b45309", **_xy(evals, rtd)},
            {"label": "replaced-token detection: always-original baseline", "color": "#b45309", "style": ":",
             **_xy(evals, rtd and "rtd_baseline_accuracy")},
            {"label": "masked LM: most-frequent-token baseline", "color": "#6d28d9", "style": ":",
             **_xy(evals, _first_key(evals, ("unigram_accuracy",)))}]},
        {"title": "learning rate", "series": [{"color": "#444", **_xy(train, lr)}]},
        {"title": "throughput", "ylabel": "tokens/s",
         "series": [{"color": "#444", **_xy(train, tok_s)}]},
    ]
    final = pre.get("final", {})
    labels = {"step": "optimizer steps", "stopped": "stopped by", "elapsed": "training time (s)",
              "train_loss": "training loss (last window)", "mlm_accuracy": "held-out masked-LM accuracy",
              "unigram_accuracy": "masked-LM baseline: always the most frequent token",
              "nsp_accuracy": "held-out next-sentence accuracy", "mlm_loss": "held-out masked-LM loss",
              "rtd_accuracy": "held-out replaced-token detection accuracy",
              "rtd_baseline_accuracy": "replaced-token detection baseline: always 'original'",
              "replaced_recall": "replaced tokens found (recall)",
              "replaced_precision": "tokens called replaced that were (precision)",
              "perplexity": "held-out masked-LM perplexity", "masked_tokens": "held-out masked tokens",
              "tokens_per_s": "throughput (tokens/s, mean)"}
    rows = [[_e(label), _fmt(final[k], k)] for k, label in labels.items()
            if isinstance(final.get(k), (int, float, str)) and not isinstance(final.get(k), bool)]
    out = ["<h2>Pretraining</h2>",
           f'<p class="lead">{_objective_words(rtd, nsp)} on the unlabeled text, '
           "read from the trainer's JSON-lines metrics.</p>",
           f'<div class="fig">{plots.line_panels(panels)}</div>']
    if rows:
        out.append(_table(["", "value"], rows, (1,)))
    return "\n".join(out)


def _task_section(name: str, entry: dict[str, Any], comparison: dict[str, Any]) -> str:
    runs = entry["runs"]
    out = [f"<h2>Task: {_e(name)}</h2>"]
    desc = []
    if entry.get("task") and entry.get("task") != name:
        desc.append(f"task <b>{_e(entry['task'])}</b>")
    if entry.get("data"):
        desc.append(f"held-out file <code>{_e(entry['data'])}</code>")
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
    bars = {label: comp[key] for key, label, _ in _COMPARED
            if isinstance(comp.get(key), (int, float))} if comp else {}
    if comp and len(bars) >= 2:
        svg = plots.bar_comparison(comp["metric"], bars, _is_fraction(comp["metric"], *bars.values()))
        table = f'<div class="row"><div>{table}</div><div class="fig">{svg}</div></div>'
    out.append(table)
    if comp:
        out.append(_gaps_sentence(comp))
    out.append(_baseline_note(baseline, entry.get("tfidf_baseline_absent")))
    out.append(_majority_note(next(iter(runs.values()))))

    # Curves: training loss and the validation metric, both initialisations on one axis.
    loss_series, eval_series = [], []
    eval_key = None
    for init, run in runs.items():
        train = run.get("curves", {}).get("train", [])
        evals = run.get("curves", {}).get("eval", [])
        color = plots.COLORS.get(init)
        loss_series.append({"label": init, "color": color, **_xy(train, "loss")})
        eval_key = eval_key or _first_key(evals, _PRIMARY_METRICS)
        eval_series.append({"label": init, "color": color, **_xy(evals, eval_key)})
    panels: list[dict[str, Any]] = [{"title": "training loss", "series": loss_series}]
    if eval_key:
        panels.append({"title": f"validation {eval_key}", "ylabel": eval_key,
                       "percent": _is_fraction(eval_key, *(v for s in eval_series for v in s["y"])),
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
        out.append(f'<h3>Example predictions — <span class="{"pre" if init == "pretrained" else "scr"}">{_e(init)}</span></h3>')
        rows_html = []
        for ex in examples:
            ok = ex.get("correct")
            mark = '<span class="tag ok">right</span>' if ok else '<span class="tag no">wrong</span>'
            prob = ex.get("probability")
            text = _e(ex.get("text", ""))
            if ex.get("text_pair"):
                text += f'<br><span class="note">{_e(ex["text_pair"])}</span>'
            rows_html.append(
                f'<tr class="{"" if ok else "wrong"}"><td>{mark}</td><td>{text}</td><td>{_e(ex.get("gold", ""))}</td>'
                f'<td>{_e(ex.get("prediction", ""))}</td><td class="num">{_fmt(prob, "accuracy") if isinstance(prob, float) else "–"}</td></tr>')
        out.append("<table><thead><tr><th></th><th>text</th><th>gold</th><th>predicted</th>"
                   '<th class="num">confidence</th></tr></thead><tbody>' + "".join(rows_html) + "</tbody></table>")
    return "\n".join(out)


TFIDF = "TF-IDF"  # the classic baseline's name in the tables and the figure
# The scores a task's comparison row holds: key, name in the figure, name in the sentence.
_COMPARED = (("pretrained", "pretrained", "pretrained"), ("scratch", "scratch", "from scratch"),
             ("tfidf", TFIDF, TFIDF), ("majority", "majority", "majority class"))
_GAINS = (("gain", "from scratch"), ("gain_over_tfidf", TFIDF), ("gain_over_majority", "majority class"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _gap(d: float, metric: str, *values: Any, unit: str = "pts") -> str:
    """A difference of two scores: in points for percentages."""
    return f"{100 * d:+.2f} {unit}" if _is_fraction(metric, *values) else f"{d:+.4g}"


def _diff_cell(a: Any, b: Any, metric: str) -> str:
    if not (_is_number(a) and _is_number(b)):
        return ""
    d = a - b
    return f'<span class="{"good" if d > 0 else "bad" if d < 0 else ""}">{_gap(d, metric, a, b)}</span>'


def _column_name(column: str) -> str:
    css = {"pretrained": "pre", "scratch": "scr"}.get(column, "base")
    return f'<span class="{css}">{_e(column)}</span>'


def _scores_table(runs: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """Every score of the models (mean ± std over seeds) and of the TF-IDF baseline, and the
    pretrained model's lead over the others."""
    columns: dict[str, dict[str, Any]] = {**runs, **({TFIDF: baseline} if baseline else {})}
    gaps = [(a, b) for a, b in (("pretrained", "scratch"), ("pretrained", TFIDF)) if a in columns and b in columns]
    metric_names: list[tuple[str, str]] = []
    for run in runs.values():
        for part in ("test", "valid"):
            for k, v in (run.get(part) or {}).items():
                if _is_number(v) and (part, k) not in metric_names:
                    metric_names.append((part, k))
    rows = []
    for part, k in metric_names:
        vals: dict[str, Any] = {c: (col.get(part) or {}).get(k) for c, col in columns.items()}  # read from JSON
        spreads = {c: (col.get(f"{part}_std") or {}).get(k) for c, col in columns.items()}
        label = {"test": "held-out", "valid": "validation (best)"}[part]
        rows.append([f"{label}: {_e(k)}", *(_fmt_spread(vals[c], spreads[c], k) for c in columns),
                     *(_diff_cell(vals[a], vals[b], k) for a, b in gaps)])
    rows.append(["training time", *(_seconds(col.get("seconds")) for col in columns.values()), *([""] * len(gaps))])
    headers = ["", *(_column_name(c) for c in columns), *(f"{a} − {b}" for a, b in gaps)]
    return _table(headers, rows, tuple(range(1, len(columns) + len(gaps) + 1)))


def _gaps_sentence(comp: dict[str, Any]) -> str:
    """'held-out accuracy: pretrained X / from scratch Y / TF-IDF Z / majority class W. Pretrained
    − from scratch = +0.50 points; pretrained − TF-IDF = +1.30 points; ...': the task's main score of
    every model side by side, and the pretrained model's lead over each."""
    m = comp["metric"]
    scores = [f"{word} {_fmt_spread(comp[key], comp.get(f'{key}_std'), m)}"
              for key, _, word in _COMPARED if _is_number(comp.get(key))]
    gaps = [f"pretrained − {word} = {_gap(comp[key], m, comp.get('pretrained'), unit='points')}"
            for key, word in _GAINS if _is_number(comp.get(key))]
    if not gaps:
        return ""
    said = "; ".join(gaps)
    return f'<p class="gaps">{_e(comp["on"])} {_e(m)}: {" / ".join(scores)}. {said[0].upper()}{said[1:]}.</p>'


def _baseline_note(baseline: dict[str, Any] | None, absent: str | None) -> str:
    """What the TF-IDF column is, or why there is none."""
    if absent:
        return f'<p class="note">No TF-IDF baseline: {_e(absent)}.</p>'
    if not baseline:
        return ""
    held_out = (f" and the same {baseline['test_examples']:,} held-out examples"
                if _is_number(baseline.get("test_examples")) else "")
    return (f'<p class="note">{TFIDF}: character n-gram TF-IDF + logistic regression '
            f'(<code>hanformer baseline</code>, {_e(baseline.get("model", ""))}), trained on the same '
            f'{baseline.get("train_examples", 0):,} training examples and scored on the same '
            f'{baseline.get("valid_examples", 0):,} validation examples{held_out}; it is deterministic '
            "(no spread over seeds). The models' validation scores are of their best epoch, chosen on "
            "that carve; the baseline chose nothing there.</p>")


def _majority_note(run: dict[str, Any]) -> str:
    """The floor under a classifier's scores: what always answering one class gets."""
    parts, label = [], None
    for part, name in (("test", "held-out"), ("valid", "validation")):
        floor = run.get(f"{part}_majority") or {}
        scores = [f"{_e(k)} {_fmt(v, k)}" for k, v in floor.items() if k != "label" and isinstance(v, (int, float))]
        if scores:
            parts.append(f"{name}: {', '.join(scores)}")
            label = floor.get("label")
    if not parts:
        return ""
    return (f'<p class="note">Always answering the most frequent training class ({_e(label)}) scores '
            f'{"; ".join(parts)}: the floor a model has to clear.</p>')


def _headline(data: dict[str, Any]) -> str:
    cards = []
    for name, comp in data.get("comparison", {}).items():
        m = comp["metric"]
        pre, scr = comp.get("pretrained"), comp.get("scratch")
        gain = comp.get("gain")
        sub = ""
        if gain is not None:
            cls = "good" if gain > 0 else "bad"
            g = f"{100 * gain:+.1f} pts" if _is_fraction(m, pre, scr) else f"{gain:+.3f}"
            seeds = f" · mean of {comp['seeds']} seeds" if comp.get("seeds") else ""
            sub = (f'<div class="s">from scratch {_fmt_spread(scr, comp.get("scratch_std"), m)} · '
                   f'<span class="{cls}">{g} from pretraining</span>{seeds}</div>')
        if _is_number(comp.get("gain_over_tfidf")):
            lead = comp["gain_over_tfidf"]
            sub += (f'<div class="s">{TFIDF} + logistic regression {_fmt(comp["tfidf"], m)} · '
                    f'<span class="{"good" if lead > 0 else "bad"}">pretrained '
                    f'{_gap(lead, m, pre, comp["tfidf"])}</span></div>')
        if comp.get("majority") is not None:
            sub += (f'<div class="s">always answering the most frequent class '
                    f'({_e(comp.get("majority_label"))}): {_fmt(comp["majority"], m)}</div>')
        cards.append(f'<div class="card"><div class="k">{_e(name)} · {_e(m)} ({_e(comp["on"])})</div>'
                     f'<div class="v pre">{_fmt_spread(pre, comp.get("pretrained_std"), m)}</div>{sub}</div>')
    tok = data.get("tokenizer") or {}
    if tok:
        vs = tok.get("vocab_size")
        unk = tok.get("unk_rate")
        cards.append(f'<div class="card"><div class="k">tokenizer</div><div class="v">{_fmt(vs)} pieces</div>'
                     f'<div class="s">[UNK] rate {_fmt(unk, "unk_rate")} · {_fmt(tok.get("tokens_per_eojeol"))} tokens/word</div></div>')
    stages = data.get("stages", [])
    total = sum(s.get("seconds") or 0 for s in stages if s.get("action") != "skip")
    cached = sum(1 for s in stages if s.get("action") == "skip")
    note = f"{cached} of {len(stages)} stages cached · " if cached else ""
    cards.append(f'<div class="card"><div class="k">this run</div><div class="v">{_seconds(total)}</div>'
                 f'<div class="s">{note}{data["machine"].get("cpu_cores")} CPU cores · '
                 f'torch {_e(data["machine"].get("torch"))}</div></div>')
    return '<div class="cards">' + "".join(cards) + "</div>"


def _stages_table(stages: list[dict[str, Any]]) -> str:
    rows = []
    for s in stages:
        action = s.get("action", "")
        tag = {"skip": "skip", "run": "run", "resume": "run"}.get(action, "skip")
        label = {"skip": "skipped (cached)", "run": "ran", "resume": "resumed"}.get(action, action)
        rows.append([f"<code>{_e(s['key'])}</code>", _e(s.get("title", "")), f'<span class="tag {tag}">{label}</span>',
                     _seconds(s.get("seconds")), _e(s.get("budget") or "–"), f'<span class="note">{_e(s.get("reason", ""))}</span>'])
    return _table(["stage", "what", "this run", "time", "budget", "why"], rows, (3,))


def _tokenizer_section(tok: dict[str, Any]) -> str:
    labels = {"vocab_size": "vocabulary size", "unk_rate": "[UNK] rate (of all tokens)",
              "eojeols_with_unk": "words (eojeol) containing [UNK]",
              "tokens_per_eojeol": "tokens per word (eojeol)", "characters_per_token": "characters per token",
              "hangul_tokens": "vocabulary entries with Hangul", "continuation_tokens": "## continuation entries",
              "decomposes_hangul": "breaks Hangul into jamo", "morpheme_split": "morpheme-aware split (Kiwi)",
              "lines": "lines measured", "eojeols": "words measured", "tokens": "tokens measured",
              "sample": "measured on"}
    rows = [[_e(label), _fmt(tok[k], k)] for k, label in labels.items() if k in tok]
    out = ["<h2>Tokenizer</h2>",
           '<p class="lead">A WordPiece vocabulary trained on the recipe\'s text. Hangul stays whole syllables; '
           "the [UNK] rate and tokens per word are measured on text the vocabulary was not trained on.</p>",
           _table(["", "value"], rows, (1,))]
    examples = tok.get("examples") or []
    if examples:
        rows = [[_e(e.get("text", "")), " ".join(f"<code>{_e(t)}</code>" for t in e.get("tokens", []))] for e in examples]
        out.append(_table(["text", "tokens"], rows))
    return "\n".join(out)


def _attention_section(att: dict[str, Any]) -> str:
    if not att.get("heads"):
        return ""
    svg = plots.attention_heads(att["tokens"], att["heads"], att["layer"])
    note = (f'<p class="lead">What each token of <b>{_e(att.get("text", ""))}</b> attends to in layer '
            f'{att["layer"] + 1} of the pretrained model ({_e(att.get("model", ""))}). '
            "Rows are the attending token, columns the token attended to; brighter is more attention. "
            "Layers and heads are numbered from 1, here and in the interactive views.</p>")
    link = ""
    if att.get("html"):
        link = (f'<p class="note">Every layer and head, interactive (head view, model view, rollout): '
                f'<a href="{_e(att["html"])}">{_e(att["html"])}</a> (beside this report).</p>')
    return f'<h2>A look inside: attention</h2>{note}<div class="fig">{svg}</div>{link}'


def render_report(data: dict[str, Any]) -> str:
    """The whole report as one HTML string (no external resources)."""
    run = data["run"]
    title = data.get("title") or f"hanformer run: {run['name']}"
    parts = [
        "<!doctype html>",
        '<html lang="ko"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="lead">{_e(run.get("description") or "")} Recipe <code>{_e(run["recipe"])}</code>, '
        f'made {_e(run["created"])}.</p>',
        _headline(data),
        "<h2>Stages</h2>",
        _stages_table(data.get("stages", [])),
    ]
    if data.get("tokenizer"):
        parts.append(_tokenizer_section(data["tokenizer"]))
    if data.get("pretrain"):
        parts.append(_pretrain_section(data["pretrain"]))
    for name, entry in data.get("tasks", {}).items():
        parts.append(_task_section(name, entry, data.get("comparison", {})))
    if data.get("attention"):
        parts.append(_attention_section(data["attention"]))
    machine_rows = [[_e(k.replace("_", " ")), _e(v)] for k, v in data.get("machine", {}).items() if v is not None]
    parts += [
        "<h2>Recipe and machine</h2>",
        _table(["", ""], machine_rows),
        f"<details open><summary>{_e(run['recipe'])}</summary><pre>{_e(run.get('recipe_text', ''))}</pre></details>",
        f'<p class="note">All numbers on this page are also in <code>metrics.json</code> beside this file. '
        f"Made by hanformer {_e(data['machine'].get('hanformer', ''))} with Python {_e(sys.version.split()[0])}.</p>",
        "</main></body></html>",
    ]
    return "\n".join(parts)
