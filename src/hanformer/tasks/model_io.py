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
from typing import TYPE_CHECKING, Any

from hanformer.errors import CheckpointError, ConfigError, HanformerError, where
from hanformer.tasks.registry import TaskSpec, get_task, label_names
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.utils.config import load_config
from hanformer.utils.files import atomic_write_json

if TYPE_CHECKING:  # the models (and torch) load only when a head is built
    from hanformer.models.bert.model import BertPreTrainedModel

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
    def from_dict(cls, data: dict[str, Any], source: str = "task settings") -> TaskSettings:
        """The settings of a task.json (keys of other versions ignored; values type-checked)."""
        names = {f.name for f in fields(cls)}
        return load_config(cls, {k: v for k, v in data.items() if k in names}, f"{source} [settings]")


# A task's kind -> what its head does, as the model registry names it.
_HEAD_TASKS = {"classification": "classification", "regression": "classification",
               "token": "token-classification", "qa": "question-answering"}


def head_class(task: TaskSpec, model_type: str | None = None) -> type[BertPreTrainedModel]:
    """The class with the task's head for a checkpoint of `model_type` (BERT's by default;
    a RoBERTa / XLM-R / ELECTRA checkpoint gets its family's)."""
    from hanformer.models.registry import task_class

    return task_class(_HEAD_TASKS[task.kind], model_type)


def read_model_config(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{model_dir}: no config.json (not a checkpoint directory in the Hugging Face layout)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e.msg})") from None


def sentence_transformers_pooling(model_dir: str | Path) -> str | None:
    """'mean' or 'cls' when `model_dir` is a sentence-transformers model whose pooling module
    uses exactly that (its `modules.json` names the folder), else None. Such a model was trained
    through that pooling, so a classifier fine-tuned on it should read the same sentence vector."""
    try:
        modules = json.loads((Path(model_dir) / "modules.json").read_text(encoding="utf-8"))
        pooling = next(m for m in modules if str(m.get("type", "")).endswith(".Pooling"))
        modes = json.loads((Path(model_dir) / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, AttributeError, KeyError, StopIteration):
        return None  # not a sentence-transformers folder (or not one we can read): no opinion
    used = [name for name, key in (("mean", "pooling_mode_mean_tokens"), ("cls", "pooling_mode_cls_token"))
            if modes.get(key) is True]
    return used[0] if len(used) == 1 else None


def read_task_file(model_dir: str | Path) -> dict[str, Any] | None:
    """The model's task.json (None when it has none), checked: an object naming a known task and
    its kind, with settings and labels of the right shape. Anything else is a CheckpointError
    naming the file and the key, since `evaluate`, `predict` and `serve` rely on every one."""
    path = Path(model_dir) / TASK_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); fine-tune the model again, or fix the file") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: expected a JSON object with 'task', 'kind' and 'settings'")
    _check_task_info(info, path)
    return info


def _check_task_info(info: dict[str, Any], path: Path) -> None:
    def fail(key: str, problem: str) -> CheckpointError:
        return CheckpointError(f"{where(path, field=key)}: {problem}; fine-tune the model again, or fix the file")

    for key in ("task", "kind"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise fail(key, "missing" if key not in info else f"{info[key]!r} is not a name")
    try:
        task = get_task(info["task"])
    except ConfigError as e:
        raise fail("task", e.message) from None
    if info["kind"] != task.kind:
        raise fail("kind", f"{info['kind']!r}, but task {task.name!r} is a {task.kind} task")
    settings = info.get("settings", {})
    if not isinstance(settings, dict):
        raise fail("settings", f"{settings!r} is not an object")
    try:
        TaskSettings.from_dict(settings, str(path))
    except HanformerError as e:
        raise CheckpointError(f"{e.message}; fine-tune the model again, or fix the file") from None
    for key in ("labels", "label_names"):
        value = info.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise fail(key, f"{value!r} is not a list of label names")
    names = info.get("label_names")
    if names is not None and len(names) != len(info.get("labels") or []):
        raise fail("label_names", f"{len(names)} names for {len(info.get('labels') or [])} labels")


def checkpoint_labels(cfg: dict[str, Any]) -> list[str] | None:
    """The label names of a checkpoint's head (by output index), or None if it has none."""
    id2label = cfg.get("id2label")
    if not id2label:
        return None
    return [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]


def _is_placeholder(labels: list[str]) -> bool:
    return all(name == f"LABEL_{i}" for i, name in enumerate(labels))


def check_head(task: TaskSpec, model_dir: str | Path, labels: list[str] | None, reinit_head: bool,
               names: list[str] | None = None) -> bool:
    """Whether the checkpoint's head can be kept; raises when it does not fit and reinit_head is off.
    A head fits when its config.json names its outputs with `labels` or with their `names`."""
    cfg = read_model_config(model_dir)
    cls = head_class(task)
    # "RobertaForTokenClassification" is a token-classification head as much as "BertFor..." is
    if not any(name.endswith(cls.__name__.removeprefix("Bert")) for name in cfg.get("architectures") or []):
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
    elif not _is_placeholder(ck) and ck != want and ck != names:
        mismatch = f"a head with labels {', '.join(ck)}"
    else:
        return True
    if reinit_head:
        return False
    what = "a regression head" if task.kind == "regression" else f"{len(want)} labels ({', '.join(want)})"
    raise CheckpointError(f"{model_dir} has {mismatch}, but task {task.name!r} needs {what}; "
                          f"pass --reinit-head to replace the head with a new one")


def head_label_names(task: TaskSpec, model_dir: str | Path, labels: list[str],
                     given: list[str] | None = None) -> list[str]:
    """The names the head's outputs get in config.json: `given` (`--label-names`), else those of
    a model fine-tuned before on the same labels (its task.json), else the task's own names."""
    if not given:
        recorded = read_task_file(model_dir) or {}
        if recorded.get("labels") == labels and recorded.get("label_names"):
            given = recorded["label_names"]
    return label_names(task, labels, given)


def model_label_names(model_dir: str | Path, task: TaskSpec, labels: list[str] | None) -> dict[str, str]:
    """label -> name for a fine-tuned model's predictions: task.json's `label_names`, else the
    names config.json gives its outputs (a foreign or older checkpoint), else the task's own."""
    if task.kind != "classification" or not labels:
        return {}
    recorded = (read_task_file(model_dir) or {}).get("label_names")
    configured = checkpoint_labels(read_model_config(model_dir))
    if not recorded and configured and len(configured) == len(labels) and not _is_placeholder(configured) \
            and configured != labels:  # names that only repeat the labels say nothing new
        recorded = configured
    names = recorded if recorded and len(recorded) == len(labels) else label_names(task, labels)
    return dict(zip(labels, names, strict=True))


def load_task_model(task: TaskSpec, model_dir: str | Path, labels: list[str] | None, *,
                    from_scratch: bool = False, reinit_head: bool = False, dropout: float | None = None,
                    pooling: str | None = None, names: list[str] | None = None) -> Any:
    """A model with the task's head: pretrained encoder (+ the checkpoint's head when it fits),
    or everything freshly initialised with the same architecture (`from_scratch`). `dropout` and
    `pooling` (sentence-level heads only) override the checkpoint's config. The head's outputs
    are named in config.json (`id2label`) by `head_label_names` (`names`: `--label-names`)."""
    from hanformer.models.bert.model import BertModel
    from hanformer.models.hub import model_type, require_dir

    cls: type[Any] = head_class(task, model_type(require_dir(model_dir)))  # RoBERTa / ELECTRA: their family's head
    if names and task.kind in ("regression", "qa"):
        label_names(task, [], names)  # raises: such a head has no labels to name
    overrides: dict[str, Any] = {}
    if task.kind == "regression":
        overrides = {"num_labels": 1, "id2label": {0: "score"}, "problem_type": "regression"}
    elif task.kind in ("classification", "token"):
        assert labels is not None
        names = head_label_names(task, model_dir, labels, names)
        overrides = {"num_labels": len(labels), "id2label": dict(enumerate(names)),
                     "problem_type": "single_label_classification" if task.kind == "classification" else None}
    if dropout is not None:
        overrides.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if pooling is None and "classifier_pooling" not in read_model_config(model_dir):
        pooling = sentence_transformers_pooling(model_dir)  # e.g. all-MiniLM-L6-v2: trained through the mean
    if pooling is not None and task.kind in ("classification", "regression"):
        overrides["classifier_pooling"] = pooling
    keep_head = check_head(task, model_dir, labels, reinit_head, names) if not from_scratch else False
    if from_scratch or (reinit_head and not keep_head):
        import dataclasses

        config = dataclasses.replace(cls.config_class.from_pretrained(model_dir), **overrides)
        model = cls(config)
        if not from_scratch:
            encoder = BertModel.from_pretrained(model_dir)
            missing, _ = model.bert.load_state_dict(encoder.state_dict(), strict=False)
            if any(not k.startswith("pooler") for k in missing):
                raise CheckpointError(f"{model_dir}: encoder weights missing: {', '.join(missing[:5])}")
        return model
    return cls.from_pretrained(model_dir, **overrides)


def save_task_model(model: Any, tokenizer: Tokenizer, directory: Path, task: TaskSpec,
                    settings: TaskSettings, extra: dict[str, Any] | None = None) -> None:
    """Weights + config (with label names) + tokenizer files + task.json, in one directory.
    task.json keeps the labels as the data writes them (`labels`, which `evaluate` compares
    with a file's) and, for classification, their names (`label_names`, config.json's id2label)."""
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    info = {"task": task.name, "kind": task.kind, "settings": asdict(settings), **(extra or {})}
    id2label = getattr(model.config, "id2label", None)
    if task.kind == "classification" and id2label:
        info["label_names"] = [str(id2label[i]) for i in sorted(id2label)]
    atomic_write_json(directory / TASK_FILE, info)
