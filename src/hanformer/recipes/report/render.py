"""The report as one self-contained HTML page, rendered from `metrics.json`'s data: figures
inlined as SVG and the stylesheet (`assets/report.css`) inlined, so the file opens anywhere,
offline, and can be mailed around as it is."""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib.resources import files
from typing import Any

from hanformer.recipes import plots
from hanformer.recipes.report.format import (
    TFIDF,
    esc,
    fmt,
    fmt_seconds,
    fmt_spread,
    gap,
    html_table,
    is_number,
    xy,
)
from hanformer.recipes.report.lm_section import language_models_section
from hanformer.recipes.report.metric_names import MLM_KEYS, NSP_KEYS, first_key, is_fraction
from hanformer.recipes.report.task_section import task_section
from hanformer.recipes.report.translation_section import (
    translation_cards,
    translation_comparison,
    translation_section,
)


@cache
def stylesheet() -> str:
    """The report's CSS, a package asset."""
    return files("hanformer.recipes").joinpath("assets/report.css").read_text(encoding="utf-8")


def _objective_words(rtd: str | None, nsp: str | None) -> str:
    if rtd:
        return ("Replaced-token detection (ELECTRA: a small masked-LM generator fills the masks, the "
                "encoder learns to spot its replacements; the masked-LM figures are the generator's)")
    return "Masked-LM and next-sentence prediction" if nsp else "Masked-LM"


def _variant_section(name: str, variant: dict[str, Any]) -> str:
    """A variant's pretraining, as the recipe's own, under what it changes."""
    changes = "; ".join(f"[{table}] {esc(json.dumps(variant.get(table), ensure_ascii=False))}"
                        for table in ("data", "pretrain") if variant.get(table))
    what = f"{esc(variant['description'])} " if variant.get("description") else ""
    return _pretrain_section(variant, f"Pretraining — variant {name}",
                             f"{what}The recipe's text and tokenizer with these settings changed: {changes}.")


def _pretrain_section(pre: dict[str, Any], heading: str = "Pretraining", lead: str = "") -> str:
    train = pre.get("curves", {}).get("train", [])
    evals = pre.get("curves", {}).get("eval", [])
    mlm = first_key(evals, MLM_KEYS, ("mlm", "acc"))
    nsp = first_key(evals, NSP_KEYS, ("nsp", "acc"))
    rtd = first_key(evals, ("rtd_accuracy",))
    tok_s = first_key(train, ("tokens_per_s", "tokens_per_second"), ("tokens",))
    lr = first_key(train, ("lr", "learning_rate"))
    eval_loss = first_key(evals, ("loss", "eval_loss", "mlm_loss"))
    panels: list[dict[str, Any]] = [
        {"title": "loss", "series": [
            {"label": "train", "color": plots.COLORS["train"], **xy(train, "loss")},
            {"label": "held-out masked-LM", "color": plots.COLORS["eval"], **xy(evals, eval_loss)}]},
        {"title": "held-out accuracy", "percent": True, "ylabel": "accuracy", "series": [
            {"label": "masked LM", "color": "#6d28d9", **xy(evals, mlm)},
            {"label": "next sentence", "color": "#059669", **xy(evals, nsp)},
            {"label": "replaced-token detection", "color": "#b45309", **xy(evals, rtd)},
            {"label": "replaced-token detection: always-original baseline", "color": "#b45309", "style": ":",
             **xy(evals, rtd and "rtd_baseline_accuracy")},
            {"label": "masked LM: most-frequent-token baseline", "color": "#6d28d9", "style": ":",
             **xy(evals, first_key(evals, ("unigram_accuracy",)))}]},
        {"title": "learning rate", "series": [{"color": "#444", **xy(train, lr)}]},
        {"title": "throughput", "ylabel": "tokens/s",
         "series": [{"color": "#444", **xy(train, tok_s)}]},
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
    rows = [[esc(label), fmt(final[k], k)] for k, label in labels.items()
            if isinstance(final.get(k), (int, float, str)) and not isinstance(final.get(k), bool)]
    out = [f"<h2>{esc(heading)}</h2>",
           f'<p class="lead">{lead + " " if lead else ""}{_objective_words(rtd, nsp)} on the unlabeled text, '
           "read from the trainer's JSON-lines metrics.</p>",
           f'<div class="fig">{plots.line_panels(panels)}</div>']
    if rows:
        out.append(html_table(["", "value"], rows, (1,)))
    return "\n".join(out)


def _headline(data: dict[str, Any]) -> str:
    cards = []
    for name, comp in data.get("comparison", {}).items():
        m = comp["metric"]
        pre, scr = comp.get("pretrained"), comp.get("scratch")
        gain = comp.get("gain")
        sub = ""
        if gain is not None:
            cls = "good" if gain > 0 else "bad"
            g = f"{100 * gain:+.1f} pts" if is_fraction(m, pre, scr) else f"{gain:+.3f}"
            seeds = f" · mean of {comp['seeds']} seeds" if comp.get("seeds") else ""
            sub = (f'<div class="s">from scratch {fmt_spread(scr, comp.get("scratch_std"), m)} · '
                   f'<span class="{cls}">{g} from pretraining</span>{seeds}</div>')
        if is_number(comp.get("gain_over_tfidf")):
            lead = comp["gain_over_tfidf"]
            sub += (f'<div class="s">{TFIDF} + logistic regression {fmt(comp["tfidf"], m)} · '
                    f'<span class="{"good" if lead > 0 else "bad"}">pretrained '
                    f'{gap(lead, m, pre, comp["tfidf"])}</span></div>')
        for variant in comp.get("variants", []):
            lead = comp.get(f"gain_of_{variant}")
            if is_number(lead):
                sub += (f'<div class="s">variant {esc(variant)} {fmt_spread(comp[variant], comp.get(f"{variant}_std"), m)} · '
                        f'<span class="{"good" if lead > 0 else "bad"}">{gap(lead, m, pre, comp[variant])} '
                        "over pretrained</span></div>")
        if comp.get("majority") is not None:
            sub += (f'<div class="s">always answering the most frequent class '
                    f'({esc(comp.get("majority_label"))}): {fmt(comp["majority"], m)}</div>')
        cards.append(f'<div class="card"><div class="k">{esc(name)} · {esc(m)} ({esc(comp["on"])})</div>'
                     f'<div class="v pre">{fmt_spread(pre, comp.get("pretrained_std"), m)}</div>{sub}</div>')
    cards.extend(translation_cards(data.get("translations") or {}))
    tok = data.get("tokenizer") or {}
    if tok:
        vs = tok.get("vocab_size")
        unk = tok.get("unk_rate")
        cards.append(f'<div class="card"><div class="k">tokenizer</div><div class="v">{fmt(vs)} pieces</div>'
                     f'<div class="s">[UNK] rate {fmt(unk, "unk_rate")} · {fmt(tok.get("tokens_per_eojeol"))} tokens/word</div></div>')
    stages = data.get("stages", [])
    total = sum(s.get("seconds") or 0 for s in stages if s.get("action") != "skip")
    cached = sum(1 for s in stages if s.get("action") == "skip")
    note = f"{cached} of {len(stages)} stages cached · " if cached else ""
    cards.append(f'<div class="card"><div class="k">this run</div><div class="v">{fmt_seconds(total)}</div>'
                 f'<div class="s">{note}{data["machine"].get("cpu_cores")} CPU cores · '
                 f'torch {esc(data["machine"].get("torch"))}</div></div>')
    return '<div class="cards">' + "".join(cards) + "</div>"


def _stages_table(stages: list[dict[str, Any]]) -> str:
    rows = []
    for s in stages:
        action = s.get("action", "")
        tag = {"skip": "skip", "run": "run", "resume": "run"}.get(action, "skip")
        label = {"skip": "skipped (cached)", "run": "ran", "resume": "resumed"}.get(action, action)
        rows.append([f"<code>{esc(s['key'])}</code>", esc(s.get("title", "")), f'<span class="tag {tag}">{label}</span>',
                     fmt_seconds(s.get("seconds")), esc(s.get("budget") or "–"), f'<span class="note">{esc(s.get("reason", ""))}</span>'])
    return html_table(["stage", "what", "this run", "time", "budget", "why"], rows, (3,))


def _tokenizer_section(tok: dict[str, Any]) -> str:
    labels = {"vocab_size": "vocabulary size", "unk_rate": "[UNK] rate (of all tokens)",
              "eojeols_with_unk": "words (eojeol) containing [UNK]",
              "tokens_per_eojeol": "tokens per word (eojeol)", "characters_per_token": "characters per token",
              "hangul_tokens": "vocabulary entries with Hangul", "continuation_tokens": "## continuation entries",
              "decomposes_hangul": "breaks Hangul into jamo", "morpheme_split": "morpheme-aware split (Kiwi)",
              "lines": "lines measured", "eojeols": "words measured", "tokens": "tokens measured",
              "sample": "measured on"}
    rows = [[esc(label), fmt(tok[k], k)] for k, label in labels.items() if k in tok]
    out = ["<h2>Tokenizer</h2>",
           '<p class="lead">A WordPiece vocabulary trained on the recipe\'s text. Hangul stays whole syllables; '
           "the [UNK] rate and tokens per word are measured on text the vocabulary was not trained on.</p>",
           html_table(["", "value"], rows, (1,))]
    examples = tok.get("examples") or []
    if examples:
        rows = [[esc(e.get("text", "")), " ".join(f"<code>{esc(t)}</code>" for t in e.get("tokens", []))] for e in examples]
        out.append(html_table(["text", "tokens"], rows))
    return "\n".join(out)


def _attention_section(att: dict[str, Any]) -> str:
    if not att.get("heads"):
        return ""
    svg = plots.attention_heads(att["tokens"], att["heads"], att["layer"])
    note = (f'<p class="lead">What each token of <b>{esc(att.get("text", ""))}</b> attends to in layer '
            f'{att["layer"] + 1} of the pretrained model ({esc(att.get("model", ""))}). '
            "Rows are the attending token, columns the token attended to; brighter is more attention. "
            "Layers and heads are numbered from 1, here and in the interactive views.</p>")
    link = ""
    if att.get("html"):
        link = (f'<p class="note">Every layer and head, interactive (head view, model view, rollout): '
                f'<a href="{esc(att["html"])}">{esc(att["html"])}</a> (beside this report).</p>')
    return f'<h2>A look inside: attention</h2>{note}<div class="fig">{svg}</div>{link}'


def render_report(data: dict[str, Any]) -> str:
    """The whole report as one HTML string (no external resources)."""
    run = data["run"]
    title = data.get("title") or f"hanformer run: {run['name']}"
    parts = [
        "<!doctype html>",
        '<html lang="ko"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{stylesheet()}</style></head><body><main>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="lead">{esc(run.get("description") or "")} Recipe <code>{esc(run["recipe"])}</code>, '
        f'made {esc(run["created"])}.</p>',
        _headline(data),
        "<h2>Stages</h2>",
        _stages_table(data.get("stages", [])),
    ]
    if data.get("tokenizer"):
        parts.append(_tokenizer_section(data["tokenizer"]))
    if data.get("pretrain"):
        parts.append(_pretrain_section(data["pretrain"]))
    for name, variant in (data.get("variants") or {}).items():
        parts.append(_variant_section(name, variant))
    for name, entry in data.get("tasks", {}).items():
        parts.append(task_section(name, entry, data.get("comparison", {})))
    parts.append(translation_comparison(data.get("translations") or {}))
    for name, entry in (data.get("translations") or {}).items():
        parts.append(translation_section(name, entry))
    if data.get("language_models"):
        parts.append(language_models_section(data["language_models"]))
    if data.get("attention"):
        parts.append(_attention_section(data["attention"]))
    machine_rows = [[esc(k.replace("_", " ")), esc(v)] for k, v in data.get("machine", {}).items() if v is not None]
    parts += [
        "<h2>Recipe and machine</h2>",
        html_table(["", ""], machine_rows),
        f"<details open><summary>{esc(run['recipe'])}</summary><pre>{esc(run.get('recipe_text', ''))}</pre></details>",
        f'<p class="note">All numbers on this page are also in <code>metrics.json</code> beside this file. '
        f"Made by hanformer {esc(data['machine'].get('hanformer', ''))} with Python {esc(sys.version.split()[0])}.</p>",
        "</main></body></html>",
    ]
    return "\n".join(parts)
