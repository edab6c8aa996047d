"""Where a `[translation.<name>]` table's three stages keep their files, under the run folder:

    translation/<name>/data/     train.src, train.tgt, valid.src, valid.tgt (the pairs trained on and scored)
    translation/<name>/train/    the trainer's folder: tokenizer/, checkpoints/, metrics.jsonl,
                                 valid_scores.jsonl, best/ (the model scored), final/
    translation/<name>/score/    scores.json (BLEU/chrF of greedy and beam search, with the
                                 sacreBLEU signatures), greedy.jsonl and beam.jsonl (one line per
                                 validation pair: source, reference, hypothesis, sentence scores),
                                 alignments.json (cross-attention of a few sentences)

The stage keys are these folders (`translation/en-de/train`), built here as `layout.py` builds
the others; the stage modules and the report read the paths from `TranslationLayout` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hanformer.recipes.layout import BEST, FINAL, TRAINER_METRICS, RunLayout

TRANSLATION = "translation"
DATA_PART, TRAIN_PART, SCORE_PART = "data", "train", "score"
SIDES = ("src", "tgt")
SCORES_FILE = "scores.json"
ALIGNMENTS_FILE = "alignments.json"
VALID_SCORES = "valid_scores.jsonl"   # written by train_translation at every evaluation
DECODINGS = ("greedy", "beam")         # the decodings scored after training, by these names


def translation_key(name: str, part: str) -> str:
    """The stage key (and folder) of part `part` (data, train, score) of table `name`."""
    return f"{TRANSLATION}/{name}/{part}"


def model_part(keeps_best: bool) -> str:
    """The model the score stage translates with: the best by the trainer's metric when it keeps one."""
    return BEST if keeps_best else FINAL


@dataclass(frozen=True)
class TranslationLayout:
    """The paths of one translation table (`name`) of the run at `root` (`runs/<run>`)."""

    root: Path
    name: str

    def stage_dir(self, part: str) -> Path:
        return RunLayout(self.root).stage_dir(translation_key(self.name, part))

    def pair_files(self, split: str) -> tuple[Path, Path]:
        """(source file, target file) of `split` ("train" or "valid") written by the data stage."""
        folder = self.stage_dir(DATA_PART)
        source, target = (folder / f"{split}.{side}" for side in SIDES)
        return source, target

    @property
    def train_metrics(self) -> Path:
        return self.stage_dir(TRAIN_PART) / TRAINER_METRICS

    @property
    def valid_scores(self) -> Path:
        return self.stage_dir(TRAIN_PART) / VALID_SCORES

    def model_dir(self, keeps_best: bool) -> Path:
        return self.stage_dir(TRAIN_PART) / model_part(keeps_best)

    @property
    def scores_file(self) -> Path:
        return self.stage_dir(SCORE_PART) / SCORES_FILE

    def sentences_file(self, decoding: str) -> Path:
        """Per-sentence outputs of one decoding (`greedy`, `beam`)."""
        return self.stage_dir(SCORE_PART) / f"{decoding}.jsonl"

    @property
    def alignments_file(self) -> Path:
        return self.stage_dir(SCORE_PART) / ALIGNMENTS_FILE
