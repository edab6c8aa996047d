"""For the report: a classifier's confusion matrix and a few example predictions, mistakes first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hanformer.recipes.recipe import EvaluateSection, FinetuneSection
from hanformer.tasks.finetune_config import subsample
from hanformer.tasks.predict import predict
from hanformer.tasks.registry import get_task, label_name


def prediction_samples(model_dir: Path, task: FinetuneSection, sec: EvaluateSection, seed: int,
                       entry: dict[str, Any]) -> dict[str, Any]:
    """Confusion matrix and example predictions (mistakes first) for classification tasks, on
    the same examples `evaluate` scored; `entry` gets the label names and the example count."""
    spec = get_task(task.task)
    if spec.kind != "classification" or not task.test:
        return {}
    examples = subsample(spec.read(task.test).examples, sec.max_examples, seed)
    inputs = [e.text if e.text_pair is None else (e.text, e.text_pair) for e in examples]
    preds = predict(model_dir, inputs, batch_size=sec.batch_size)
    labels = list(spec.labels or sorted({str(e.label) for e in examples}))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    rows = []
    for ex, p in zip(examples, preds, strict=True):
        label, prob = str(p.get("data_label", p.get("label"))), p.get("probability")
        gold = str(ex.label)
        if gold in index and label in index:
            matrix[index[gold]][index[label]] += 1
        rows.append({"text": ex.text, "text_pair": ex.text_pair, "gold": label_name(spec.name, gold),
                     "prediction": label_name(spec.name, label), "probability": prob, "correct": gold == label})
    entry["labels"] = [label_name(spec.name, label) for label in labels]
    entry["n"] = len(examples)
    return {"confusion": matrix, "examples": pick_examples(rows, sec.examples)}


def pick_examples(rows: list[dict[str, Any]], n_examples: int) -> list[dict[str, Any]]:
    """Half mistakes (the most confident ones: the instructive kind), half right answers."""
    wrong = sorted((r for r in rows if not r["correct"]), key=lambda r: -(r["probability"] or 0))
    right = [r for r in rows if r["correct"]]
    n_wrong = min(len(wrong), max(n_examples // 2, n_examples - len(right)))
    return wrong[:n_wrong] + right[:n_examples - n_wrong]
