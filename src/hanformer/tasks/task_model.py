"""A checkpoint with a task head, loaded once with everything its task needs.

`TaskModel.load(dir)` is the one way a fine-tuned model is opened for inference: `Predictor`
(and so `hanformer predict`), `evaluate`, the recipes' evaluation stage and `hanformer serve`
all read the same task, encoding settings and labels from it, so they give the same answers.

The task comes from the model's `task.json` (written by `finetune`), else from the name the
caller gives; a checkpoint that hanformer did not fine-tune (a transformers head, say) can be
served as a generic task of its head's kind with the labels its config.json names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from hanformer.errors import CheckpointError, ConfigError
from hanformer.tasks.encoding import PieceEncoder
from hanformer.tasks.model_dir import resolve_model_dir
from hanformer.tasks.model_io import (
    TaskSettings,
    checkpoint_labels,
    head_class,
    model_label_names,
    read_model_config,
    read_task_file,
)
from hanformer.tasks.registry import TaskSpec, get_task
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import env_dist_info, resolve_device

# The served task of a head class (models/registry.py) -> the generic task that reads its inputs.
_GENERIC_TASKS = {"classification": "classification", "token-classification": "conll2003",
                  "question-answering": "squad"}


@dataclass
class TaskModel:
    directory: Path
    task: TaskSpec
    model: nn.Module
    tokenizer: Tokenizer
    encoder: PieceEncoder
    settings: TaskSettings
    labels: list[str] | None  # the head's outputs in order (classification and token tasks)

    @classmethod
    def load(cls, model_dir: str | Path, task: str | None = None, device: str = "auto") -> TaskModel:
        """The model in `model_dir` (or a finetune output folder: its best/) on `device`, in eval
        mode, with its task (task.json's, or `task` when it has none)."""
        directory = resolve_model_dir(model_dir)
        spec, settings, labels = resolve_task(directory, task)
        model = head_class(spec).from_pretrained(directory)
        model.to(resolve_device(device, env_dist_info())).eval()
        tokenizer = Tokenizer.from_pretrained(directory)
        return cls(directory, spec, model, tokenizer, PieceEncoder(tokenizer), settings, labels)

    @classmethod
    def of_loaded(cls, directory: Path, model: nn.Module, tokenizer: Tokenizer, head: str,
                  max_length: int) -> TaskModel:
        """A head checkpoint already loaded by its config.json class (as `hanformer serve` loads
        any checkpoint): task.json's task when hanformer fine-tuned it, else the generic task of
        `head` (the registry's served task) reading `max_length` tokens."""
        spec, settings, labels = resolve_task(directory, None, head=head, max_length=max_length)
        return cls(directory, spec, model, tokenizer, PieceEncoder(tokenizer), settings, labels)

    @property
    def label_names(self) -> dict[str, str]:
        """label -> what people call it (NSMC's 0/1 -> negative/positive)."""
        return model_label_names(self.directory, self.task, self.labels)


def resolve_task(directory: Path, task_name: str | None, *, head: str | None = None,
                 max_length: int | None = None) -> tuple[TaskSpec, TaskSettings, list[str] | None]:
    """(task, encoding settings, labels) of a checkpoint: task.json first, then `task_name`,
    then (with `head`) a generic task of the head's kind; a ConfigError when none applies, a
    CheckpointError when the checkpoint was fine-tuned for another kind of task or labels."""
    info = read_task_file(directory) or {}
    name = task_name or info.get("task")
    config = read_model_config(directory)
    if name:
        task = get_task(name)
        settings = TaskSettings.from_dict(info.get("settings", {}))
    elif head is not None:
        task = _generic_task(head, config)
        settings = TaskSettings(max_length=max_length) if max_length else TaskSettings()
    else:
        raise ConfigError(f"{directory} has no task.json; name the task with --task")
    if info.get("task") and info.get("kind") != task.kind:
        raise CheckpointError(f"{directory} was fine-tuned for {info['task']!r} ({info.get('kind')}), "
                              f"not for a {task.kind} task like {task.name!r}")
    return task, settings, _labels(directory, task, info, config)


def _generic_task(head: str, config: dict[str, Any]) -> TaskSpec:
    if head not in _GENERIC_TASKS:
        raise ConfigError(f"a {head} checkpoint has no task head to predict with")
    if head == "classification" and (config.get("problem_type") == "regression" or config.get("num_labels") == 1
                                     or len(config.get("id2label") or {}) == 1):
        return get_task("regression")
    task = get_task(_GENERIC_TASKS[head])
    if head == "token-classification":  # CoNLL's rules (whitespace words, BIO tags), this head's labels
        task = dataclasses.replace(task, name="token-classification", labels=None)
    return task


def _labels(directory: Path, task: TaskSpec, info: dict[str, Any], config: dict[str, Any]) -> list[str] | None:
    """The head's outputs in order: task.json's labels, else config.json's (its names turned back
    into the codes the task's data writes), checked against the task's own labels."""
    if task.kind not in ("classification", "token"):
        return None
    labels = info.get("labels") or checkpoint_labels(config)
    if labels is None and config.get("num_labels"):
        labels = [f"LABEL_{i}" for i in range(int(config["num_labels"]))]
    if not info.get("labels") and labels and task.label_names and labels == list(task.label_names):
        labels = list(task.labels or labels)  # config.json names the outputs; the data writes codes
    if task.labels is not None and labels is not None and sorted(labels) != sorted(task.labels):
        raise CheckpointError(f"{directory} predicts labels {', '.join(labels)}, but task {task.name!r} "
                              f"has {', '.join(task.labels)}; fine-tune it for this task first")
    return labels
