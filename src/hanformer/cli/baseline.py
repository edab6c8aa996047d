"""`hanformer baseline`: TF-IDF character n-grams + logistic regression, to put numbers in context."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command
from hanformer.utils.config import add_config_arguments, cli_overrides, load_config

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
    from hanformer.tasks.finetune import DataConfig

    p = add_command(subparsers, "baseline", "TF-IDF + logistic-regression baseline for a classification task", HELP)
    add_config_arguments(p, BaselineConfig)
    add_config_arguments(p, DataConfig)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from hanformer.tasks.baseline import BaselineConfig, run_baseline
    from hanformer.tasks.finetune import DataConfig

    data = cli_overrides(BaselineConfig, args)
    data["data"] = cli_overrides(DataConfig, args)
    report = run_baseline(load_config(BaselineConfig, data, "command line"))
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0
