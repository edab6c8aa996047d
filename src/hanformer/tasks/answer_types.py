"""Extractive-QA scores split by answer type: the questions whose gold answer overlaps an entity
Kiwi finds in the context (proper nouns by default), and the others. Entity-aware inputs should
help the first group most; this is how a run can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hanformer.entities.kiwi import KiwiEntityDetector
from hanformer.evaluation.qa import qa_scores
from hanformer.tasks.examples import QAExample
from hanformer.tasks.inference import predict_examples
from hanformer.tasks.task_model import TaskModel

DEFAULT_TAGS = ("NNP",)


def group_by_answer_type(examples: Sequence[QAExample], tags: Sequence[str] = DEFAULT_TAGS
                         ) -> dict[str, list[QAExample]]:
    """{"entity": questions whose first gold answer overlaps a tagged span of their context,
    "other": the rest}, each in input order."""
    contexts = sorted({e.context for e in examples})
    spans = dict(zip(contexts, KiwiEntityDetector(list(tags)).detect(contexts), strict=True))

    def is_entity(e: QAExample) -> bool:
        a = e.answers[0]
        return any(s.start < a.end and a.start < s.end for s in spans[e.context])

    return {"entity": [e for e in examples if is_entity(e)], "other": [e for e in examples if not is_entity(e)]}


def scores_by_answer_type(model_dirs: Sequence[str | Path], task: str, examples: Sequence[QAExample],
                          tags: Sequence[str] = DEFAULT_TAGS) -> dict[str, Any]:
    """EM/F1 of each model on each group: {"runs": [{"entity_answer_f1": .., ...} per model],
    "questions": {"entity": n, "other": n}, "tags": [...]}."""
    groups = group_by_answer_type(examples, tags)
    runs = []
    for model_dir in model_dirs:
        model = TaskModel.load(model_dir, task, "cpu")
        predicted = predict_examples(model.task, model.model, model.encoder, examples, model.settings, model.labels)
        by_id = {e.id: p for e, p in zip(examples, predicted.labels, strict=True)}
        scores: dict[str, float] = {}
        for name, group in groups.items():
            s = qa_scores({e.id: by_id[e.id] for e in group}, {e.id: [a.text for a in e.answers] for e in group},
                          model.task.qa_style)
            scores.update({f"{name}_answer_exact_match": s["exact_match"], f"{name}_answer_f1": s["f1"]})
        runs.append(scores)
    return {"runs": runs, "questions": {name: len(group) for name, group in groups.items()}, "tags": list(tags)}
