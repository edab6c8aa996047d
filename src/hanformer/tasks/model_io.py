"""Loading a checkpoint for a task (with a fitting head) and saving a fine-tuned one.

The head comes from the task's kind; its size from the task's labels. A checkpoint that already
carries a head of another size (a 3-class NLI model loaded for 2-class sentiment) is refused
with a clear message unless the user asks to re-initialise the head. `task.json` beside the
weights records the task and its encoding settings, so `evaluate` and `predict` need only the
model directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from hanformer.errors import CheckpointError
from hanformer.tasks.registry import TaskSpec
from hanformer.utils.files import atomic_write_json

TASK_FILE = "task.json"


@dataclass
class TaskSettings:
    """How examples become model inputs; saved with the fine-tuned model."""

    max_length: int = 128
    alignment: str = "first"  # NER: label the first piece of a unit, or all pieces
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best: int = 20

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def head_class(task: TaskSpec) -> type:
    from hanformer.models.heads import (
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
    )

    return {"classification": BertForSequenceClassification, "regression": BertForSequenceClassification,
            "token": BertForTokenClassification, "qa": BertForQuestionAnswering}[task.kind]


def read_model_config(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{model_dir}: no config.json (not a checkpoint directory in the Hugging Face layout)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e.msg})") from None


def read_task_file(model_dir: str | Path) -> dict[str, Any] | None:
    path = Path(model_dir) / TASK_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def checkpoint_labels(cfg: dict[str, Any]) -> list[str] | None:
    """The label names of a checkpoint's head (by output index), or None if it has none."""
    id2label = cfg.get("id2label")
    if not id2label:
        return None
    return [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]


def _is_placeholder(labels: list[str]) -> bool:
    return all(name == f"LABEL_{i}" for i, name in enumerate(labels))


def check_head(task: TaskSpec, model_dir: str | Path, labels: list[str] | None, reinit_head: bool) -> bool:
    """Whether the checkpoint's head can be kept; raises when it does not fit and reinit_head is off."""
    cfg = read_model_config(model_dir)
    cls = head_class(task)
    if cls.__name__ not in (cfg.get("architectures") or []):
        return False  # no head of this kind: a fresh one is made either way
    if task.kind == "qa":
        return True
    ck = checkpoint_labels(cfg) or []
    want = labels if labels is not None else ["LABEL_0"]
    if task.kind == "regression":
        if len(ck) == 1:
            return True
        mismatch = f"a {len(ck)}-label classification head"
    elif cfg.get("problem_type") == "regression" or len(ck) != len(want):
        mismatch = "a regression head" if cfg.get("problem_type") == "regression" else \
            f"a {len(ck)}-label head ({', '.join(ck)})"
    elif not _is_placeholder(ck) and ck != want:
        mismatch = f"a head with labels {', '.join(ck)}"
    else:
        return True
    if reinit_head:
        return False
    what = "a regression head" if task.kind == "regression" else f"{len(want)} labels ({', '.join(want)})"
    raise CheckpointError(f"{model_dir} has {mismatch}, but task {task.name!r} needs {what}; "
                          f"pass --reinit-head to replace the head with a new one")


def load_task_model(task: TaskSpec, model_dir: str | Path, labels: list[str] | None, *,
                    from_scratch: bool = False, reinit_head: bool = False, dropout: float | None = None,
                    pooling: str | None = None) -> Any:
    """A model with the task's head: pretrained encoder (+ the checkpoint's head when it fits),
    or everything freshly initialised with the same architecture (`from_scratch`). `dropout` and
    `pooling` (sentence-level heads only) override the checkpoint's config."""
    from hanformer.models.bert import BertModel
    from hanformer.models.config import BertConfig

    cls = head_class(task)
    overrides: dict[str, Any] = {}
    if task.kind == "regression":
        overrides = {"num_labels": 1, "id2label": {0: "score"}, "problem_type": "regression"}
    elif task.kind in ("classification", "token"):
        assert labels is not None
        overrides = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                     "problem_type": "single_label_classification" if task.kind == "classification" else None}
    if dropout is not None:
        overrides.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if pooling is not None and task.kind in ("classification", "regression"):
        overrides["classifier_pooling"] = pooling
    keep_head = check_head(task, model_dir, labels, reinit_head) if not from_scratch else False
    if from_scratch or (reinit_head and not keep_head):
        import dataclasses

        config = dataclasses.replace(BertConfig.from_pretrained(model_dir), **overrides)
        model = cls(config)
        if not from_scratch:
            encoder = BertModel.from_pretrained(model_dir)
            missing, _ = model.bert.load_state_dict(encoder.state_dict(), strict=False)
            if any(not k.startswith("pooler") for k in missing):
                raise CheckpointError(f"{model_dir}: encoder weights missing: {', '.join(missing[:5])}")
        return model
    return cls.from_pretrained(model_dir, **overrides)


def save_task_model(model: Any, tokenizer: Any, directory: Path, task: TaskSpec,
                    settings: TaskSettings, extra: dict[str, Any] | None = None) -> None:
    """Weights + config (with label names) + tokenizer files + task.json, in one directory."""
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    atomic_write_json(directory / TASK_FILE, {"task": task.name, "kind": task.kind,
                                              "settings": asdict(settings), **(extra or {})})
