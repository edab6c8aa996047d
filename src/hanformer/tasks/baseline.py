"""A classic baseline for context: TF-IDF over character n-grams + logistic regression.

On NSMC this kind of model is known to reach about 87% test accuracy, so it tells whether a
fine-tuned BERT is earning its cost. It reads the same files and makes the same training and
validation parts as `finetune` (same carve fraction, seed and grouping, then the same seeded
`max_train_examples` / `max_valid_examples` subsets), and scores a held-out `test` file the way
`evaluate` does (same seeded `max_examples` subset, same metrics), so the numbers are comparable.
Needs scikit-learn: `pip install 'hanformer[baselines]'`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError, HanformerError, InputError
from hanformer.tasks.finetune_config import DataConfig, Log, read_examples, read_split, subsample
from hanformer.tasks.registry import TaskSpec, compute_metrics, get_task
from hanformer.training.config import check_seed
from hanformer.utils.config import setting
from hanformer.utils.files import atomic_write_json, check_output_file


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclasses.dataclass
class BaselineConfig:
    task: str = setting("nsmc", "a classification task (nsmc, sst2, klue-nli, classification, ...)")
    train: str = setting("", "training file in the task's format")
    valid: str | None = setting(None, "validation file (default: the same carve as `hanformer finetune`)")
    valid_fraction: float = setting(0.1, "fraction of --train carved out for validation")
    split_seed: int = setting(42, "seed of the validation carve and of the subsets (use the one given to finetune)")
    max_train_examples: int = setting(0, "use a seeded random subset of this many training examples (0: all)")
    max_valid_examples: int = setting(0, "use a seeded random subset of this many validation examples (0: all)")
    test: str | None = setting(None, "held-out file to score as well (as `hanformer evaluate` scores a model)")
    max_test_examples: int = setting(0, "score a seeded random subset of this many held-out examples (0: all)")
    test_seed: int = setting(42, "seed of the --max-test-examples subset (evaluate's --seed)")
    ngram_min: int = setting(1, "shortest character n-gram")
    ngram_max: int = setting(3, "longest character n-gram")
    max_features: int = setting(300_000, "vocabulary size of the TF-IDF vectorizer (most frequent n-grams)")
    c: float = setting(3.0, "inverse regularisation strength of the logistic regression")
    out: str | None = setting(None, "write the metrics to this JSON file")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)

    def validate(self) -> None:
        if not self.train:
            raise ConfigError("baseline needs --train (a training file)")
        if get_task(self.task).kind != "classification":
            raise ConfigError(f"the TF-IDF baseline is for classification tasks, not {self.task!r}")
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ConfigError("need 1 <= ngram_min <= ngram_max")
        if self.max_features < 1 or not 0 < self.c < math.inf:
            raise ConfigError("--max-features must be at least 1 and --c a number greater than 0")
        for name in ("max_train_examples", "max_valid_examples", "max_test_examples"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} (--{name.replace('_', '-')}) must be >= 0, got {getattr(self, name)}")
        check_seed(self.split_seed, "split_seed")
        check_seed(self.test_seed, "test_seed")
        if self.out:
            check_output_file(self.out, "--out", inputs=[self.train, self.valid or "", self.test or ""])


@dataclasses.dataclass
class BaselineSplit:
    """The examples the baseline learns from and is scored on, and the labels its metrics use."""

    train: list[Any]
    valid: list[Any]
    labels: list[str]


def baseline_split(config: BaselineConfig, log: Log = _stderr) -> BaselineSplit:
    """Training and validation examples exactly as `finetune` makes them from the same settings:
    read, carve (or the --valid file), the seeded subsets, and for tasks that learn their labels
    from the data, validation examples with a label training never saw left out."""
    task = get_task(config.task)
    split = read_split(task, config, log)
    train, valid = split.train, split.valid
    labels = list(task.labels) if task.labels is not None else sorted({str(e.label) for e in train})
    valid = [e for e in valid if str(e.label) in labels]
    if len({str(e.label) for e in train}) < 2:
        raise InputError(f"{config.train}: every training example has the label {str(train[0].label)!r}; "
                         "a classifier needs at least two classes in its training data")
    if not valid:
        raise InputError(f"{config.valid or config.train}: no validation examples to score the baseline on")
    return BaselineSplit(train, valid, labels)


def held_out_examples(config: BaselineConfig, log: Log = _stderr) -> list[Any]:
    """The examples of --test that `evaluate` scores with `max_examples` and `seed` set alike."""
    assert config.test
    task = get_task(config.task)
    examples, _ = read_examples(task, config.test, config.data, labels=task.labels, log=log)
    return subsample(examples, config.max_test_examples, config.test_seed)


def _text(e: Any) -> str:
    """A pair is read as one text with a separator the n-grams can see."""
    return e.text if e.text_pair is None else f"{e.text} ||| {e.text_pair}"


def _fit(config: BaselineConfig, train: Sequence[Any]) -> Callable[[Sequence[Any]], list[str]]:
    """Train TF-IDF + logistic regression; returns the function that labels examples."""
    try:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise HanformerError("the baseline needs scikit-learn: pip install 'hanformer[baselines]'") from None
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(config.ngram_min, config.ngram_max),
                                 max_features=config.max_features, sublinear_tf=True, dtype=np.float32)
    classifier = LogisticRegression(C=config.c, max_iter=1000)
    classifier.fit(vectorizer.fit_transform([_text(e) for e in train]), [str(e.label) for e in train])

    def predict(examples: Sequence[Any]) -> list[str]:
        return [str(p) for p in classifier.predict(vectorizer.transform([_text(e) for e in examples]))]
    return predict


def _score(task: TaskSpec, predict: Callable[[Sequence[Any]], list[str]], examples: Sequence[Any],
           labels: Sequence[str]) -> dict[str, float]:
    return compute_metrics(task, [str(e.label) for e in examples], predict(examples), labels=labels)


def _describe(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def run_baseline(config: BaselineConfig, log: Log = _stderr) -> dict[str, Any]:
    """Train the TF-IDF + logistic-regression baseline; score it on the validation part and,
    with `test`, on the held-out file. `metrics` are the validation scores, `test.metrics` the
    held-out ones."""
    config.validate()
    task = get_task(config.task)
    split = baseline_split(config, log)
    test = held_out_examples(config, log) if config.test else None
    start = time.perf_counter()
    predict = _fit(config, split.train)
    metrics = _score(task, predict, split.valid, split.labels)
    report: dict[str, Any] = {"task": task.name, "model": f"tfidf-char-{config.ngram_min}-{config.ngram_max}+logreg",
                              "train_examples": len(split.train), "valid_examples": len(split.valid),
                              "metrics": metrics}
    log(f"{task.name} baseline ({report['model']}, {len(split.train)} training examples): "
        f"{_describe(metrics)} on {len(split.valid)} validation examples")
    if test is not None:
        report["test"] = {"data": config.test, "examples": len(test),
                          "metrics": _score(task, predict, test, split.labels)}
        log(f"{task.name} baseline: {_describe(report['test']['metrics'])} on {len(test)} held-out examples")
    report["seconds"] = round(time.perf_counter() - start, 1)
    if config.out:
        atomic_write_json(Path(config.out), report)
    return report
