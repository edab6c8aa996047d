"""The task registry: what each named task reads, which labels it has and how it is scored.

A `TaskSpec` ties a data format to a head and a metric. The named tasks pin their columns and
label sets (so an unknown label is a malformed row); the generic ones (`classification`,
`pair-classification`, `regression`) read any CSV/TSV/JSON(-lines) file with the columns the
user names, and learn their label set from the training file.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hanformer.errors import ConfigError
from hanformer.evaluation import (
    accuracy,
    char_macro_f1,
    entity_scores,
    macro_f1,
    pearson,
    qa_scores,
    spearman,
)
from hanformer.tasks.readers import (
    OnError,
    ReadResult,
    read_conll,
    read_klue_ner,
    read_records,
    read_squad,
    read_table,
)

Kind = Literal["classification", "regression", "token", "qa"]

CONLL_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
KLUE_NER_TAGS = ("O", "B-DT", "I-DT", "B-LC", "I-LC", "B-OG", "I-OG", "B-PS", "I-PS",
                 "B-QT", "I-QT", "B-TI", "I-TI")
NLI_LABELS = ("entailment", "neutral", "contradiction")
SENTIMENT_NAMES = ("negative", "positive")  # NSMC's and SST-2's labels 0 and 1


@dataclass(frozen=True)
class Columns:
    """Which columns/fields hold the text, the second text and the label (generic tasks)."""

    text: str = "text"
    pair: str | None = None
    label: str = "label"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: Kind
    description: str
    reader: Callable[..., ReadResult]
    labels: tuple[str, ...] | None = None  # None: learned from the training file
    # What people call `labels` (same order), where the data writes codes: NSMC's 0/1 are
    # negative/positive. Saved as the model's id2label, so every consumer shows the names.
    label_names: tuple[str, ...] | None = None
    pair: bool = False  # sentence-pair input
    main_metric: str = "accuracy"
    qa_style: Literal["squad", "korquad"] = "squad"
    char_f1: bool = False  # also report KLUE's character-level F1
    units: Literal["word", "char"] = "word"  # what one tag labels (token tasks)
    data: str | None = None  # the training file under ../shared/data, for docs and recipes
    group: Callable[[Any], Hashable] | None = None  # keeps related examples on one side of the carve

    def read(self, path: str | os.PathLike[str], *, on_error: OnError = "skip",
             columns: Columns | None = None, labels: Sequence[str] | None = None) -> ReadResult:
        """Read `path` for this task; `labels` overrides the task's own label set (e.g. the
        checkpoint's labels for a generic task)."""
        return self.reader(path, on_error=on_error, columns=columns or Columns(),
                           labels=tuple(labels) if labels is not None else self.labels)


def _table(text: str, pair: str | None, label: str, regression: bool = False,
           score_range: tuple[float, float] | None = None) -> Callable[..., ReadResult]:
    def read(path: Any, *, on_error: OnError, columns: Columns, labels: Sequence[str] | None) -> ReadResult:
        return read_table(path, text=text, pair=pair, label=label, labels=labels,
                          regression=regression, on_error=on_error, score_range=score_range)
    return read


def _generic(pair: bool, regression: bool = False) -> Callable[..., ReadResult]:
    def read(path: Any, *, on_error: OnError, columns: Columns, labels: Sequence[str] | None) -> ReadResult:
        pair_col = (columns.pair or "text_pair") if pair else columns.pair
        kwargs: dict[str, Any] = dict(text=columns.text, pair=pair_col, label=columns.label, labels=labels,
                      regression=regression, on_error=on_error)
        if Path(path).suffix.lower() in (".json", ".jsonl", ".ndjson"):
            return read_records(path, **kwargs)
        return read_table(path, **kwargs)
    return read


def _tokens(fn: Callable[..., ReadResult]) -> Callable[..., ReadResult]:
    def read(path: Any, *, on_error: OnError, columns: Columns, labels: Sequence[str] | None) -> ReadResult:
        return fn(path, labels=labels, on_error=on_error)
    return read


def _qa(path: Any, *, on_error: OnError, columns: Columns, labels: Sequence[str] | None) -> ReadResult:
    return read_squad(path, on_error=on_error)


TASKS: dict[str, TaskSpec] = {t.name: t for t in [
    TaskSpec("nsmc", "classification", "Korean movie-review sentiment (id<TAB>document<TAB>label)",
             _table("document", None, "label"), ("0", "1"), SENTIMENT_NAMES, data="nsmc/ratings_train.txt"),
    TaskSpec("sst2", "classification", "English sentiment, SST-2 (label<TAB>sentence)",
             _table("sentence", None, "label"), ("0", "1"), SENTIMENT_NAMES, data="sst2/train.tsv"),
    TaskSpec("klue-nli", "classification", "Korean NLI, KLUE (JSON: premise, hypothesis, gold_label)",
             lambda path, **kw: read_records(path, text="premise", pair="hypothesis", label="gold_label",
                                             labels=kw["labels"], on_error=kw["on_error"]),
             NLI_LABELS, pair=True, data="klue_part/klue-nli-v1.1_train_part.json",
             group=lambda e: e.text),
    TaskSpec("korsts", "regression", "Korean sentence similarity 0-5, KorSTS (TSV: sentence1, sentence2, score)",
             _table("sentence1", "sentence2", "score", regression=True, score_range=(0.0, 5.0)), pair=True,
             main_metric="pearson", data="korsts/sts-train.tsv"),
    TaskSpec("klue-ner", "token", "Korean NER, KLUE (character BIO TSV with ## lines)",
             _tokens(read_klue_ner), KLUE_NER_TAGS, main_metric="entity_f1", char_f1=True, units="char",
             data="klue_part/klue-ner-v1.1_train_part.tsv"),
    TaskSpec("conll2003", "token", "English NER, CoNLL-2003 (TOKEN TAG, IOB2)",
             _tokens(read_conll), CONLL_TAGS, main_metric="entity_f1", data="conll2003/train.txt"),
    TaskSpec("korquad", "qa", "Korean extractive QA, KorQuAD 1.0 (SQuAD JSON)", _qa,
             main_metric="f1", qa_style="korquad", data="korquad_v1_part/korquad_v1_train_part.json",
             group=lambda e: e.title or e.context),
    TaskSpec("squad", "qa", "English extractive QA, SQuAD 1.1 (JSON)", _qa, main_metric="f1",
             group=lambda e: e.title or e.context),
    TaskSpec("classification", "classification",
             "any CSV/TSV/JSON(-lines) file with a text column and a label column", _generic(False)),
    TaskSpec("pair-classification", "classification",
             "any CSV/TSV/JSON(-lines) file with two text columns and a label column",
             _generic(True), pair=True, group=lambda e: e.text),
    TaskSpec("regression", "regression",
             "any CSV/TSV/JSON(-lines) file with one or two text columns and a numeric label",
             _generic(False, regression=True), main_metric="pearson"),
]}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}") from None


def label_names(task: TaskSpec, labels: Sequence[str], names: Sequence[str] | None = None) -> list[str]:
    """The names of a head's `labels` (same order): `names` when given (`--label-names`, one per
    label), else the task's own names when the head has the task's labels, else the labels."""
    if names:
        if task.kind != "classification":
            raise ConfigError(f"label_names (--label-names): {task.name!r} is a {task.kind} task; "
                              "label names are for classification tasks")
        if len(names) != len(labels):
            raise ConfigError(f"label_names (--label-names): {len(names)} names ({', '.join(names)}) for "
                              f"{len(labels)} labels ({', '.join(labels)}); give one name per label, in this order")
        if len(set(names)) != len(names) or not all(n.strip() for n in names):
            raise ConfigError(f"label_names (--label-names): {', '.join(names)}: names must be distinct "
                              "and non-empty")
        return [n.strip() for n in names]
    if task.label_names is not None and task.labels is not None and list(labels) == list(task.labels):
        return list(task.label_names)
    return list(labels)


def label_name(task_name: str, label: str) -> str:
    """The name of one label of a named task (NSMC's "1" is "positive"); other labels as they are."""
    task = TASKS.get(task_name)
    if task is None or task.labels is None or task.label_names is None or label not in task.labels:
        return label
    return task.label_names[task.labels.index(label)]


def compute_metrics(task: TaskSpec, gold: Sequence[Any], pred: Sequence[Any], *,
                    labels: Sequence[str] | None = None) -> dict[str, float]:
    """Score predictions the way the task's official scorer does.

    classification: label strings; regression: floats; token: lists of tags per sentence;
    qa: `gold` = list of lists of answer texts, `pred` = list of answer texts.
    """
    if task.kind == "classification":
        return {"accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred, labels)}
    if task.kind == "regression":
        return {"pearson": pearson(gold, pred), "spearman": spearman(gold, pred)}
    if task.kind == "token":
        s = entity_scores(gold, pred)
        out = {"entity_f1": s.f1, "entity_precision": s.precision, "entity_recall": s.recall}
        if task.char_f1:
            out["char_f1"] = char_macro_f1(gold, pred, labels)
        return out
    ids = [str(i) for i in range(len(gold))]
    scores = qa_scores(dict(zip(ids, pred, strict=False)), dict(zip(ids, gold, strict=False)), style=task.qa_style)
    return {"exact_match": scores["exact_match"], "f1": scores["f1"]}


def majority_scores(task: TaskSpec, label: str | None, gold: Sequence[Any], *,
                    labels: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The task's metrics for always answering `label` (the most frequent training label): the
    floor a classifier has to clear before its score says it learned anything. None for tasks
    other than classification, whose constant answers score zero by construction."""
    if task.kind != "classification" or label is None or not gold:
        return None
    return {"label": label, **compute_metrics(task, gold, [label] * len(gold), labels=labels)}


def most_frequent_label(train_labels: Sequence[Any]) -> str | None:
    """The most frequent label (ties: the first in sorted order, so the choice is repeatable)."""
    counts = Counter(str(x) for x in train_labels)
    return min(counts, key=lambda k: (-counts[k], k)) if counts else None


def describe_majority(floor: dict[str, Any]) -> str:
    """One log line for a `majority_scores` result."""
    return (f"always answering the most frequent training label {floor['label']!r} scores "
            + ", ".join(f"{k} {v:.4f}" for k, v in floor.items() if k != "label"))
