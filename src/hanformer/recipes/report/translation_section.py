"""A translation table's section of the report: greedy vs beam-search BLEU/chrF with their
sacreBLEU signatures, the training and validation curves, the worst translations first, and the
cross-attention of a few validation sentences. Also its headline card."""

from __future__ import annotations

from typing import Any

from hanformer.recipes import plots
from hanformer.recipes.report.format import esc, fmt, fmt_seconds, html_table, is_number, xy

_DECODING_NAMES = {"greedy": "greedy", "beam": "beam search"}


def _score(value: Any) -> str:
    return f"{value:.2f}" if is_number(value) else "–"


def _decoding_name(name: str, result: dict[str, Any]) -> str:
    beams = result.get("num_beams")
    shown = _DECODING_NAMES.get(name, name)
    return f"{shown} ({beams} beams)" if isinstance(beams, int) and beams > 1 else shown


def translation_cards(translations: dict[str, Any]) -> list[str]:
    """One headline card per table: the BLEU of its leading decoding, with greedy and chrF below."""
    cards = []
    for name, entry in translations.items():
        decodings = (entry.get("scores") or {}).get("decodings") or {}
        lead = entry.get("examples_decoding")
        if not lead or lead not in decodings:
            continue
        best = decodings[lead]
        sub = f"chrF {_score(best.get('chrf'))}"
        if lead != "greedy" and "greedy" in decodings:
            sub += f" · greedy BLEU {_score(decodings['greedy'].get('bleu'))}"
        cards.append(f'<div class="card"><div class="k">{esc(name)} · BLEU ({esc(_decoding_name(lead, best))}, '
                     f'validation)</div><div class="v pre">{_score(best.get("bleu"))}</div>'
                     f'<div class="s">{sub}</div></div>')
    return cards


def _lead(entry: dict[str, Any]) -> str:
    data, train, scores = entry.get("data") or {}, entry.get("train") or {}, entry.get("scores") or {}
    said = []
    if entry.get("train_corpora"):
        said.append("trained on " + ", ".join(f"<code>{esc(c)}</code>" for c in entry["train_corpora"])
                    + (f" ({fmt(train['train_pairs'])} pairs)" if is_number(train.get("train_pairs")) else ""))
    if entry.get("valid_corpora"):
        said.append("validated on " + ", ".join(f"<code>{esc(c)}</code>" for c in entry["valid_corpora"]))
    elif data.get("valid_carved"):
        said.append(f"validated on {fmt(data.get('valid_pairs'))} pairs carved from the training corpora "
                    "(seeded; the vocabulary never saw them)")
    if is_number(train.get("parameters")):
        said.append(f"{fmt(train['parameters'])} parameters, a joint vocabulary of {fmt(train.get('vocab_size'))}")
    if is_number(train.get("step")):
        said.append(f"{fmt(train['step'])} optimizer steps in {fmt_seconds(train.get('seconds'))} "
                    f"(stopped by {esc(train.get('stopped', '–'))})")
    if is_number(scores.get("sentences")):
        said.append(f"scored on {fmt(scores['sentences'])} validation pairs with <code>{esc(scores.get('model'))}</code>")
    return f'<p class="lead">{"; ".join(said)}.</p>' if said else ""


def _scores_table(decodings: dict[str, Any]) -> str:
    rows = [[esc(_decoding_name(name, r)), _score(r.get("bleu")), _score(r.get("chrf")),
             " / ".join(f"{p:.1f}" for p in r.get("bleu_precisions") or []), _score(r.get("brevity_penalty")),
             fmt_seconds(r.get("seconds"))] for name, r in decodings.items()]
    table = html_table(["decoding", "BLEU", "chrF", "1-4-gram precision (%)", "brevity penalty", "time"],
                       rows, (1, 2, 4, 5))
    signatures = {(r.get("bleu_signature"), r.get("chrf_signature")) for r in decodings.values()}
    notes = "".join(f'<p class="note">sacreBLEU signatures: BLEU <code>{esc(b)}</code>, chrF <code>{esc(c)}</code></p>'
                    for b, c in sorted(signatures, key=str))
    return table + notes


def _curves(curves: dict[str, Any]) -> str:
    train, evals = curves.get("train", []), curves.get("eval", [])
    panels: list[dict[str, Any]] = [
        {"title": "loss", "series": [
            {"label": "training (label-smoothed)", "color": plots.COLORS["train"], **xy(train, "loss")},
            {"label": "validation (no smoothing)", "color": plots.COLORS["eval"], **xy(evals, "loss")}]},
        {"title": "validation BLEU", "ylabel": "BLEU / chrF", "series": [
            {"label": "BLEU", "color": plots.COLORS["eval"], **xy(evals, "bleu")},
            {"label": "chrF", "color": "#059669", "style": "--", **xy(evals, "chrf")}]},
    ]
    return (f'<div class="fig curves">{plots.line_panels(panels)}</div>'
            '<p class="note">The validation scores during training are of the trainer\'s quick greedy '
            "translations of the first <code>eval_sentences</code> validation pairs; the table above scores "
            "every scored pair with the kept model.</p>")


def _examples_table(examples: list[dict[str, Any]], decoding: str) -> str:
    rows = [[str(i), _score(ex.get("chrf")), _score(ex.get("bleu")), esc(ex.get("source", "")),
             esc(ex.get("reference", "")), esc(ex.get("hypothesis", ""))] for i, ex in enumerate(examples, 1)]
    return (f"<h3>Translations, worst first ({esc(_DECODING_NAMES.get(decoding, decoding))})</h3>"
            '<p class="note">Ordered by sentence chrF, lowest first (sentence BLEU beside it; both sacreBLEU\'s, '
            "0-100). Every pair is in the score stage's <code>.jsonl</code> files.</p>"
            + html_table(["#", "chrF", "BLEU", "source", "reference", "translation"], rows, (0, 1, 2))
            .replace("<table>", '<table class="worst-first">', 1))


def _alignments(pictures: list[dict[str, Any]]) -> str:
    if not pictures:
        return ""
    first = pictures[0]
    which = (f'layer {first["layer"] + 1} of {first["layers"]}, the mean of its {first["heads"]} heads'
             if first.get("heads") else "the recurrent decoder's attention")
    out = ["<h3>Cross-attention</h3>",
           f'<p class="note">Where the decoder looked in the source while writing each output token: {which}; '
           "darker is more attention, and each row sums to 1.</p>"]
    for picture in pictures:
        svg = plots.alignment_heatmap(picture["source_tokens"], picture["output_tokens"], picture["weights"],
                                      picture.get("source", ""))
        out.append(f'<div class="fig alignment">{svg}</div>')
    return "\n".join(out)


def _architecture_name(entry: dict[str, Any]) -> str:
    built = entry.get("architecture") or {}
    kind = built.get("architecture", "transformer")
    if kind == "transformer":
        shown = "Transformer"
    else:
        attention = built.get("attention", "none")
        shown = f"{kind.upper()}, " + ("no attention" if attention == "none" else f"{attention.title()} attention")
    return shown + (f" ({esc(built['model'])})" if built.get("model") else "")


def translation_comparison(translations: dict[str, Any]) -> str:
    """One row per translation table (when the recipe has two or more): BLEU and chrF of greedy and
    beam search, training time, steps and parameters, so the runs compare at a glance."""
    if len(translations) < 2:
        return ""
    rows = []
    for name, entry in translations.items():
        decodings = (entry.get("scores") or {}).get("decodings") or {}
        greedy, beam = decodings.get("greedy") or {}, decodings.get("beam") or {}
        train = entry.get("train") or {}
        rows.append([f"<b>{esc(name)}</b>", esc(_architecture_name(entry)), _score(greedy.get("bleu")),
                     _score(beam.get("bleu")), _score(greedy.get("chrf")), _score(beam.get("chrf")),
                     fmt_seconds(train.get("seconds")), fmt(train.get("step")), fmt(train.get("parameters"))])
    return ("<h2>Translation runs compared</h2>"
            '<p class="lead">Every translation table of this recipe on its validation pairs (sacreBLEU, 0-100; '
            "beam search at each table's width). Each run's own section follows.</p>"
            + html_table(["run", "model", "BLEU greedy", "BLEU beam", "chrF greedy", "chrF beam", "training time",
                          "optimizer steps", "parameters"], rows, (2, 3, 4, 5, 6, 7, 8))
            .replace("<table>", '<table class="translation-comparison">', 1)
            + "".join(f'<p class="gaps">{line}</p>' for line in transformer_leads(translations)))


def _beam_bleu(entry: dict[str, Any]) -> float | None:
    value = (((entry.get("scores") or {}).get("decodings") or {}).get("beam") or {}).get("bleu")
    return value if isinstance(value, (int, float)) else None


def transformer_leads(translations: dict[str, Any]) -> list[str]:
    """For each validation set that a Transformer and a recurrent run were both scored on: how far
    the best Transformer is ahead of the best recurrent model (beam BLEU), with their budgets."""
    groups: dict[str, dict[str, list[tuple[float, str, Any]]]] = {}
    for name, entry in translations.items():
        bleu = _beam_bleu(entry)
        if bleu is None:
            continue
        kind = "transformer" if (entry.get("architecture") or {}).get("architecture", "transformer") == "transformer" \
            else "recurrent"
        valid = " + ".join(entry.get("valid_corpora") or []) or "its carve"
        seconds = (entry.get("train") or {}).get("seconds")
        groups.setdefault(valid, {}).setdefault(kind, []).append((bleu, name, seconds))
    lines = []
    for valid, kinds in groups.items():
        if "transformer" not in kinds or "recurrent" not in kinds:
            continue
        (t_bleu, t_name, t_time), (r_bleu, r_name, r_time) = max(kinds["transformer"]), max(kinds["recurrent"])
        lines.append(f"On {esc(valid)}: the Transformer <b>{esc(t_name)}</b> ({t_bleu:.2f} beam BLEU, "
                     f"{fmt_seconds(t_time)} of training) is <b>{t_bleu - r_bleu:+.2f} BLEU</b> ahead of the "
                     f"best recurrent model <b>{esc(r_name)}</b> ({r_bleu:.2f}, {fmt_seconds(r_time)}).")
    return lines


def translation_section(name: str, entry: dict[str, Any]) -> str:
    out = [f"<h2>Translation: {esc(name)}</h2>", _lead(entry)]
    decodings = (entry.get("scores") or {}).get("decodings") or {}
    if decodings:
        out.append(_scores_table(decodings))
    out.append("<h3>Training curves</h3>")
    out.append(_curves(entry.get("curves") or {}))
    if entry.get("examples"):
        out.append(_examples_table(entry["examples"], entry.get("examples_decoding", "")))
    out.append(_alignments(entry.get("alignments") or []))
    return "\n".join(part for part in out if part)
