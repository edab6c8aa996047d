"""The `[language_models]` section of the report: one table of every model's held-out perplexity
(per word piece of the same text), training time, throughput and size, a bar chart of the
perplexities, and the samples each model wrote from the start of a document."""

from __future__ import annotations

from typing import Any

from hanformer.recipes import plots
from hanformer.recipes.report.format import esc, fmt, fmt_seconds, html_table, is_number

_KIND_NAMES = {"ngram": "n-gram", "lstm": "LSTM", "gru": "GRU", "gpt": "GPT (Transformer)"}


def _kind(entry: dict[str, Any]) -> str:
    train = entry.get("train") or {}
    shown = _KIND_NAMES.get(entry.get("kind", ""), entry.get("kind", ""))
    if entry.get("kind") == "ngram" and is_number(train.get("order")):
        shown += f", order {train['order']} ({esc(train.get('smoothing', ''))})"
    return shown


def _steps(train: dict[str, Any]) -> str:
    if train.get("kind") == "ngram":
        return "counted"
    return f"{fmt(train.get('step'))} (stopped by {esc(train.get('stopped', '–'))})" if is_number(train.get("step")) else "–"


def _ppl(value: Any) -> str:
    return f"{value:,.2f}" if is_number(value) else "–"


def _table(models: dict[str, Any]) -> str:
    rows = []
    for name, entry in models.items():
        train, score = entry.get("train") or {}, entry.get("score") or {}
        rows.append([f"<b>{esc(name)}</b>", esc(_kind(entry)), _ppl(score.get("perplexity")), fmt(score.get("tokens")),
                     fmt_seconds(train.get("train_seconds")), _steps(train), fmt(train.get("tokens_per_s")),
                     fmt(train.get("parameters"))])
    return html_table(["model", "kind", "held-out perplexity", "tokens scored", "training time", "optimizer steps",
                       "training tokens/s", "parameters"], rows, (2, 3, 4, 6, 7)).replace(
                           "<table>", '<table class="lm-baselines">', 1)


def _lead(data: dict[str, Any]) -> str:
    corpus = data.get("corpus") or {}
    said = ["trained on " + ", ".join(f"<code>{esc(p)}</code>" for p in corpus.get("train", []))
            + (f" ({fmt(corpus['train_documents'])} documents)" if is_number(corpus.get("train_documents")) else "")]
    if corpus.get("heldout"):
        said.append(f"scored on <code>{esc(corpus['heldout'])}</code>")
    elif is_number(corpus.get("heldout_documents")):
        said.append(f"scored on {fmt(corpus['heldout_documents'])} held-out documents carved from them (seeded)")
    if corpus.get("budget"):
        said.append(f"each neural model trained for the same wall-clock budget of {esc(corpus['budget'])}")
    return (f'<p class="lead">{"; ".join(said)}. Perplexity is per <b>word piece</b> of the one shared tokenizer, '
            "on the same held-out text for every model: the pieces of each document and one end-of-document "
            "token per document (the n-gram model's <code>&lt;/s&gt;</code>, the neural models' [SEP]). Lower is "
            "better.</p>")


def _notes(models: dict[str, Any]) -> str:
    notes = ["n-gram models are counted, not trained: no budget applies; their parameters are a probability and a "
             "back-off weight per listed n-gram, their tokens/s the counting speed."]
    found = [(e.get("score") or {}).get("context") for e in models.values() if e.get("kind") == "gpt"]
    contexts = {int(c) for c in found if isinstance(c, int)}
    if contexts:
        notes.append(f"GPT reads at most {', '.join(str(c) for c in sorted(contexts))} tokens of context (windows "
                     "overlapping by half); the recurrent models carry their state through the whole text.")
    notes.append("The neural models' training-time curves are scored on 1% of the training documents, never on "
                 "the held-out text.")
    return "".join(f'<p class="note">{esc(n)}</p>' for n in notes)


def _figure(models: dict[str, Any]) -> str:
    values = {name: e["score"]["perplexity"] for name, e in models.items()
              if is_number((e.get("score") or {}).get("perplexity"))}
    if not values:
        return ""
    return f'<div class="fig">{plots.bar_comparison("held-out perplexity per word piece", values, percent=False, label_format="{:,.1f}")}</div>'


def _samples(models: dict[str, Any]) -> str:
    out = ["<h3>Samples</h3>",
           '<p class="note">Each model starts a new document, with the run\'s seed, and samples from its full '
           "distribution (no top-k).</p>"]
    for name, entry in models.items():
        samples = (entry.get("score") or {}).get("samples") or []
        if samples:
            rows = [[str(i), esc(text)] for i, text in enumerate(samples, 1)]
            out.append(f"<h4>{esc(name)}</h4>" + html_table(["#", "sample"], rows, (0,)))
    return "\n".join(out)


def language_models_section(data: dict[str, Any]) -> str:
    models = data.get("models") or {}
    return "\n".join(part for part in ("<h2>Language models side by side</h2>", _lead(data), _table(models),
                                       _notes(models), _figure(models), _samples(models)) if part)
