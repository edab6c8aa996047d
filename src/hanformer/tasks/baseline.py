"""A classic baseline for context: TF-IDF over character n-grams + logistic regression.

On NSMC this kind of model is known to reach about 87% test accuracy, so it tells whether a
fine-tuned BERT is earning its cost. It reads the same files and carves the same validation
part (same fraction, seed and grouping) as `finetune`, so the two numbers are comparable.
Needs scikit-learn: `pip install 'hanformer[baselines]'`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError, HanformerError, InputError
from hanformer.tasks.finetune import DataConfig, Log, read_examples, subsample
from hanformer.tasks.registry import compute_metrics, get_task
from hanformer.tasks.split import carve_validation
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
    split_seed: int = setting(42, "seed of the validation carve (use the one given to finetune)")
    max_train_examples: int = setting(0, "use a seeded random subset of this many training examples (0: all)")
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
        if self.out:
            check_output_file(self.out, "--out", inputs=[self.train, self.valid or ""])


def run_baseline(config: BaselineConfig, log: Log = _stderr) -> dict[str, Any]:
    """Train the TF-IDF + logistic-regression baseline and score it on the validation part."""
    config.validate()
    try:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise HanformerError("the baseline needs scikit-learn: pip install 'hanformer[baselines]'") from None
    task = get_task(config.task)
    train, _ = read_examples(task, config.train, config.data, log=log)
    if config.valid:
        valid, _ = read_examples(task, config.valid, config.data, labels=task.labels, log=log)
    else:
        train, valid = carve_validation(train, config.valid_fraction, config.split_seed, task.group)
    train = subsample(train, config.max_train_examples, config.split_seed)
    classes = sorted({str(e.label) for e in train})
    if len(classes) < 2:
        raise InputError(f"{config.train}: every training example has the label {classes[0]!r}; a classifier "
                         "needs at least two classes in its training data")
    if not valid:
        raise InputError(f"{config.valid or config.train}: no validation examples to score the baseline on")

    def text(e: Any) -> str:  # a pair is read as one text with a separator the n-grams can see
        return e.text if e.text_pair is None else f"{e.text} ||| {e.text_pair}"

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(config.ngram_min, config.ngram_max),
                                 max_features=config.max_features, sublinear_tf=True, dtype=np.float32)
    x_train = vectorizer.fit_transform([text(e) for e in train])
    classifier = LogisticRegression(C=config.c, max_iter=1000)
    classifier.fit(x_train, [str(e.label) for e in train])
    predicted = classifier.predict(vectorizer.transform([text(e) for e in valid]))
    metrics = compute_metrics(task, [str(e.label) for e in valid], list(predicted), labels=task.labels)
    report = {"task": task.name, "model": f"tfidf-char-{config.ngram_min}-{config.ngram_max}+logreg",
              "train_examples": len(train), "valid_examples": len(valid),
              "seconds": round(time.perf_counter() - start, 1), "metrics": metrics}
    log(f"{task.name} baseline ({report['model']}, {len(train)} training examples): "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) + f" on {len(valid)} validation examples")
    if config.out:
        atomic_write_json(Path(config.out), report)
    return report
