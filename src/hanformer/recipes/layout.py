"""Where everything of a run lives: `RunLayout` owns every path under `runs/<name>/`.

    runs/<name>/
      tokenizer/                                the vocabulary
      data/shards/                              token shards
      pretrain/final/                           the pretrained model (+ metrics.jsonl beside it)
      variant/<variant>/{data,pretrain}/        a [variant.<variant>]'s own shards and pretrained model
      finetune/<task>/<init>/[seed-N/]best/     fine-tuned models (init: pretrained | <variant> | scratch)
      finetune/<task>/tfidf/baseline.json       the TF-IDF baseline
      evaluate/results.json                     held-out scores, confusion matrices, examples
      report/metrics.json                       the report stage's data (+ attention.html)
      report.html, metrics.json                 the published report of the latest run

A stage's key is also its folder under the run (`finetune/nsmc/scratch`), so the keys are built
here too; nothing else spells these paths out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INITS = ("pretrained", "scratch")  # the two initialisations every task is fine-tuned from


def initialisations(variants: Sequence[str] = (), scratch: bool = True) -> tuple[str, ...]:
    """What a task is fine-tuned from, in report order: pretrained, each variant's model, scratch."""
    pretrained, from_scratch = INITS
    return (pretrained, *variants) + ((from_scratch,) if scratch else ())

TOKENIZER = "tokenizer"
DATA = "data"
PRETRAIN = "pretrain"
EVALUATE = "evaluate"
REPORT = "report"
SHARDS = "shards"              # the part of the data stage's folder the pretraining reads
FINAL = "final"                # the part of the pretraining stage's folder that is the model
FINAL_CONFIG = "final/config.json"  # the architecture alone (what from-scratch runs read)
BEST = "best"                  # where a fine-tuning run leaves its best model
TRAINER_METRICS = "metrics.jsonl"
RESULTS = "results.json"
BASELINE_FILE = "baseline.json"
REPORT_DATA = "metrics.json"
REPORT_HTML = "report.html"
ATTENTION_HTML = "attention.html"


def data_key(variant: str | None = None) -> str:
    """The stage key (and folder) of the shards: the recipe's, or a variant's own."""
    return f"variant/{variant}/{DATA}" if variant else DATA


def pretrain_key(variant: str | None = None) -> str:
    """The stage key (and folder) of a pretraining: the recipe's, or a variant's."""
    return f"variant/{variant}/{PRETRAIN}" if variant else PRETRAIN


def finetune_key(task: str, init: str) -> str:
    """The stage key (and folder) of fine-tuning table `task` from `init`."""
    return f"finetune/{task}/{init}"


def baseline_key(task: str) -> str:
    """The stage key (and folder) of table `task`'s TF-IDF baseline."""
    return f"finetune/{task}/tfidf"


def seed_parts(seeds: Sequence[int]) -> list[str]:
    """The folders of a fine-tuning stage that hold its best model(s): `seed-N/best` each, or `best`."""
    return [f"seed-{s}/{BEST}" for s in seeds] if seeds else [BEST]


@dataclass(frozen=True)
class RunLayout:
    """Every path of one run, from its folder `root` (`runs/<name>`)."""

    root: Path

    def stage_dir(self, key: str) -> Path:
        return self.root / key

    @property
    def tokenizer_dir(self) -> Path:
        return self.stage_dir(TOKENIZER)

    def shards_dir(self, variant: str | None = None) -> Path:
        return self.stage_dir(data_key(variant)) / SHARDS

    def pretrain_dir(self, variant: str | None = None) -> Path:
        return self.stage_dir(pretrain_key(variant))

    def pretrained_model(self, variant: str | None = None) -> Path:
        return self.pretrain_dir(variant) / FINAL

    def pretrain_metrics(self, variant: str | None = None) -> Path:
        return self.pretrain_dir(variant) / TRAINER_METRICS

    def finetune_dir(self, task: str, init: str) -> Path:
        return self.stage_dir(finetune_key(task, init))

    def best_dirs(self, task: str, init: str, seeds: Sequence[int]) -> list[Path]:
        """Where fine-tuning leaves its best model(s): one per seed (`seed-N/best`), or `best`."""
        return [self.finetune_dir(task, init) / part for part in seed_parts(seeds)]

    def finetune_metrics(self, task: str, init: str, seeds: Sequence[int]) -> Path:
        """The trainer's metrics of a fine-tuning stage: the first seed's when runs were repeated."""
        folder = self.finetune_dir(task, init)
        return (folder / f"seed-{seeds[0]}" if seeds else folder) / TRAINER_METRICS

    def baseline_file(self, task: str) -> Path:
        return self.stage_dir(baseline_key(task)) / BASELINE_FILE

    @property
    def evaluate_dir(self) -> Path:
        return self.stage_dir(EVALUATE)

    @property
    def evaluate_results(self) -> Path:
        return self.evaluate_dir / RESULTS

    def evaluation_file(self, task: str, init: str, seed: int | None) -> Path:
        """The evaluator's report of one model (`<task>-<init>[-seedN].json`)."""
        suffix = f"-seed{seed}" if seed is not None else ""
        return self.evaluate_dir / f"{task}-{init}{suffix}.json"

    @property
    def report_dir(self) -> Path:
        return self.stage_dir(REPORT)

    @property
    def report_data(self) -> Path:
        """The report stage's own data (cached; the published copy adds this run's stage table)."""
        return self.report_dir / REPORT_DATA

    @property
    def attention_html(self) -> Path:
        return self.report_dir / ATTENTION_HTML

    @property
    def attention_link(self) -> str:
        """How the published report links the attention views (relative to `root`)."""
        return f"{REPORT}/{ATTENTION_HTML}"

    @property
    def published_report(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def published_metrics(self) -> Path:
        return self.root / REPORT_DATA
