"""Where the `[language_models]` stages keep their files, under the run folder:

    lm/data/             train.txt and heldout.txt: one document per line, a blank line between
                         documents, so a line (an n-gram model's sentence) is a document (the
                         neural models' text between two separators) and every model predicts
                         the same tokens: the word pieces of each document and one end of document
    lm/<name>/train/     the model: an n-gram folder (model.arpa, config.json, tokenizer/), or the
                         trainer's folder with final/ (the LSTM, GRU and GPT; GPT's shards/ beside)
    lm/<name>/score/     scores.json: held-out perplexity, the tokens it is over, the samples

The stage keys are these folders (`lm/lstm/train`); the stage modules and the report read the
paths from `LanguageModelLayout` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hanformer.recipes.layout import FINAL, TRAINER_METRICS, RunLayout

LM = "lm"
DATA_PART, TRAIN_PART, SCORE_PART = "data", "train", "score"
TRAIN_TEXT, HELDOUT_TEXT = "train.txt", "heldout.txt"
SCORES_FILE = "scores.json"
SHARDS = "shards"  # GPT's token shards of the training text, inside its train folder
NEURAL_KINDS = ("lstm", "gru", "gpt")


def lm_data_key() -> str:
    return f"{LM}/{DATA_PART}"


def lm_key(name: str, part: str) -> str:
    """The stage key (and folder) of part `part` (train, score) of model `name`."""
    return f"{LM}/{name}/{part}"


def model_part(kind: str) -> str:
    """The part of a train stage's folder that is the model: the whole folder for an n-gram."""
    return FINAL if kind in NEURAL_KINDS else ""


@dataclass(frozen=True)
class LanguageModelLayout:
    """The paths of the `[language_models]` stages of the run at `root` (`runs/<run>`)."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return RunLayout(self.root).stage_dir(lm_data_key())

    @property
    def train_text(self) -> Path:
        return self.data_dir / TRAIN_TEXT

    @property
    def heldout_text(self) -> Path:
        return self.data_dir / HELDOUT_TEXT

    def stage_dir(self, name: str, part: str) -> Path:
        return RunLayout(self.root).stage_dir(lm_key(name, part))

    def model_dir(self, name: str, kind: str) -> Path:
        part = model_part(kind)
        folder = self.stage_dir(name, TRAIN_PART)
        return folder / part if part else folder

    def train_metrics(self, name: str) -> Path:
        return self.stage_dir(name, TRAIN_PART) / TRAINER_METRICS

    def scores_file(self, name: str) -> Path:
        return self.stage_dir(name, SCORE_PART) / SCORES_FILE
