"""Running a task model over examples and turning its outputs into task predictions.

One path serves evaluation during fine-tuning, `hanformer evaluate` and `hanformer predict`:
examples -> features -> batched forward passes (sorted by length, so padding stays small) ->
labels with probabilities, scores, per-unit tags, or answer spans.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hanformer.errors import CheckpointError
from hanformer.evaluation import get_entities
from hanformer.tasks.encoding import (
    PieceEncoder,
    collate,
    encode_text_examples,
    encode_token_examples,
    unit_tags,
)
from hanformer.tasks.examples import QAExample, TextExample, TokenExample
from hanformer.tasks.model_io import TaskSettings
from hanformer.tasks.qa import AnswerPrediction, QASettings, encode_qa_examples, postprocess
from hanformer.tasks.registry import TaskSpec, compute_metrics, label_name


def qa_settings(s: TaskSettings) -> QASettings:
    return QASettings(s.max_length, s.doc_stride, s.max_query_length, s.max_answer_length, s.n_best)


def encode_examples(task: TaskSpec, encoder: PieceEncoder, examples: Sequence[Any], settings: TaskSettings,
                    labels: Sequence[str] | None, with_labels: bool = True) -> list[dict[str, Any]]:
    """Model features of `examples` for `task` (labels included when the examples have them)."""
    label2id = {name: i for i, name in enumerate(labels)} if labels else None
    if task.kind in ("classification", "regression"):
        return encode_text_examples(encoder, examples, settings.max_length,
                                    label2id if task.kind == "classification" else None)
    if task.kind == "token":
        return encode_token_examples(encoder, examples, settings.max_length,
                                     label2id if with_labels else None, settings.alignment)  # type: ignore[arg-type]
    return encode_qa_examples(encoder, examples, qa_settings(settings), with_labels=with_labels)


def _check_finite(out: Any, source: str | None) -> None:
    """A model whose weights hold NaN/inf answers NaN for everything (softmax keeps it NaN, argmax
    picks label 0): refuse instead of reporting `probability: NaN` or scoring a broken model."""
    for name in ("logits", "start_logits", "end_logits"):
        value = getattr(out, name, None)
        if value is not None and not bool(torch.isfinite(value).all()):
            at = f"{source}: " if source else ""
            raise CheckpointError(f"{at}the model's outputs ({name}) are NaN or inf, so its weights hold "
                                  "NaN/inf values (training diverged or the file is damaged); use another "
                                  "checkpoint or fine-tune again")


def forward_all(model: torch.nn.Module, features: Sequence[dict[str, Any]], pad_id: int,
                batch_size: int = 64, source: str | None = None) -> list[dict[str, np.ndarray]]:
    """Outputs of `model` for every feature, in order: `logits` (classification, token), or
    `start_logits`/`end_logits` (QA), trimmed to each feature's length for per-token outputs.
    Non-finite outputs are a CheckpointError naming `source` (the model's directory)."""
    device = next(model.parameters()).device
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    results: list[dict[str, np.ndarray] | None] = [None] * len(features)
    was_training = model.training
    model.eval()
    # Inside the Trainer's evaluation this is already no_grad; standalone calls need it too.
    with torch.no_grad() if torch.is_grad_enabled() else contextlib.nullcontext():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = collate([{k: v for k, v in features[i].items() if k not in ("labels", "start_positions",
                                                                              "end_positions")} for i in idx],
                            pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            out = model(**batch)
            _check_finite(out, source)
            for j, i in enumerate(idx):
                n = len(features[i]["input_ids"])
                if getattr(out, "start_logits", None) is not None:
                    results[i] = {"start_logits": out.start_logits[j, :n].float().cpu().numpy(),
                                  "end_logits": out.end_logits[j, :n].float().cpu().numpy()}
                elif out.logits.dim() == 3:
                    results[i] = {"logits": out.logits[j, :n].float().cpu().numpy()}
                else:
                    results[i] = {"logits": out.logits[j].float().cpu().numpy()}
    model.train(was_training)
    return results  # type: ignore[return-value]


@dataclass
class Predictions:
    """What a task model says about a list of examples (one entry per example)."""

    labels: list[Any]  # class names, scores, unit tags, or answer texts
    details: list[Any]  # probabilities, -, entities, n-best answers


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def predict_examples(task: TaskSpec, model: torch.nn.Module, encoder: PieceEncoder, examples: Sequence[Any],
                     settings: TaskSettings, labels: Sequence[str] | None, batch_size: int = 64,
                     features: Sequence[dict[str, Any]] | None = None, source: str | None = None) -> Predictions:
    """Task predictions of `model` (labels as the data writes them); `source` names the model in errors."""
    if features is None:
        features = encode_examples(task, encoder, examples, settings, labels, with_labels=False)
    outs = forward_all(model, features, encoder.pad_id, batch_size, source)
    if task.kind == "classification":
        assert labels is not None
        probs = [_softmax(o["logits"]) for o in outs]
        return Predictions([labels[int(p.argmax())] for p in probs],
                           [{name: float(p[i]) for i, name in enumerate(labels)} for p in probs])
    if task.kind == "regression":
        scores = [float(o["logits"].reshape(-1)[0]) for o in outs]
        return Predictions(scores, [None] * len(scores))
    if task.kind == "token":
        assert labels is not None
        all_tags, all_entities = [], []
        for ex, f, o in zip(examples, features, outs, strict=False):
            piece_tags = [labels[int(k)] for k in o["logits"].argmax(-1)]
            tags = unit_tags(f["piece_units"], f["piece_last_units"], piece_tags, len(ex.spans))
            all_tags.append(tags)
            all_entities.append(entities_of(ex, tags))
        return Predictions(all_tags, all_entities)
    nbest = postprocess(examples, features, [o["start_logits"] for o in outs], [o["end_logits"] for o in outs],
                        qa_settings(settings))
    return Predictions([n[0].text for n in nbest], nbest)


def entities_of(example: TokenExample, tags: Sequence[str]) -> list[dict[str, Any]]:
    """Entities of a tagged sentence as character spans of its text."""
    out = []
    for type_, first, last in get_entities(list(tags)):
        start, end = example.spans[first][0], example.spans[last][1]
        out.append({"type": type_, "start": start, "end": end, "text": example.text[start:end]})
    return out


def gold_of(task: TaskSpec, examples: Sequence[Any]) -> list[Any]:
    if task.kind in ("classification", "regression"):
        return [e.label for e in examples]
    if task.kind == "token":
        return [e.tags for e in examples]
    return [[a.text for a in e.answers] for e in examples]


def score_examples(task: TaskSpec, model: torch.nn.Module, encoder: PieceEncoder, examples: Sequence[Any],
                   settings: TaskSettings, labels: Sequence[str] | None, batch_size: int = 64,
                   features: Sequence[dict[str, Any]] | None = None, source: str | None = None) -> dict[str, float]:
    """The task's official metrics of `model` on labelled `examples`."""
    preds = predict_examples(task, model, encoder, examples, settings, labels, batch_size, features, source)
    return compute_metrics(task, gold_of(task, examples), preds.labels, labels=labels)


def raw_examples(task: TaskSpec, texts: Sequence[TextExample]) -> list[Any]:
    """Examples for prediction from raw lines: the text (and pair) as given; for NER the text is
    split into the task's units (characters, or whitespace-separated words); for QA the first
    field is the question and the second the context."""
    if task.kind in ("classification", "regression"):
        return list(texts)
    if task.kind == "token":
        out = []
        for t in texts:
            text = t.text if t.text_pair is None else f"{t.text}\t{t.text_pair}"
            if task.units == "char":
                spans = [(i, i + 1) for i in range(len(text))]
            else:
                spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
            out.append(TokenExample(text, spans, None, t.source))
        return out
    return [QAExample(str(i), t.text, t.text_pair or "", [], source=t.source) for i, t in enumerate(texts)]


def prediction_record(task: TaskSpec, example: Any, label: Any, detail: Any, top: int = 5,
                      names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One JSON-lines record of `hanformer predict`. Classification answers with label names
    (`names`: label -> name, default the task's own, e.g. NSMC's negative/positive), as the
    model's config.json does for `transformers`; `data_label` is the label as the data writes it."""
    if task.kind == "classification":
        if names is None:
            names = {k: label_name(task.name, k) for k in detail}
        rec = {"text": example.text}
        if example.text_pair is not None:
            rec["text_pair"] = example.text_pair
        rec.update(label=names.get(label, label), data_label=label, probability=round(detail[label], 6),
                   probabilities={names.get(k, k): round(v, 6) for k, v in detail.items()})
        return rec
    if task.kind == "regression":
        rec = {"text": example.text}
        if example.text_pair is not None:
            rec["text_pair"] = example.text_pair
        rec["score"] = round(label, 6)
        return rec
    if task.kind == "token":
        return {"text": example.text, "entities": detail}
    best: list[AnswerPrediction] = detail
    return {"question": example.question, "answer": best[0].text, "start": best[0].start, "end": best[0].end,
            "score": round(best[0].score, 4), "probability": round(best[0].probability, 4),
            "n_best": [b.as_dict() for b in best[:top]]}
