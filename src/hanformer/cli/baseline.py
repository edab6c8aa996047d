"""`hanformer baseline`: TF-IDF character n-grams + logistic regression, to put numbers in context."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 45

HELP = """\
Train a classic text classifier (TF-IDF over character n-grams + logistic regression) on a
classification task and score it on the same validation carve `hanformer finetune` uses, so the
fine-tuned model's accuracy can be read against it. Needs scikit-learn (the `baselines` extra).

example:
  hanformer baseline --task nsmc --train ../shared/data/nsmc/ratings_train.txt
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.tasks.baseline import BaselineConfig

    p = add_command(subparsers, "baseline", "TF-IDF + logistic-regression baseline for a classification task", HELP)
    add_settings(p, BaselineConfig)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from hanformer.tasks.baseline import BaselineConfig, run_baseline

    report = run_baseline(settings(args, BaselineConfig))
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0
