"""The corpora of a `[translation.<name>]` table: each one a table of the recipe (`CorpusSpec`),
read into sentence pairs and written as the line-aligned files the training reads.

    train = [
      { source = "train.en", target = "train.de" },                        # two line-aligned files
      { file = "kor_train.txt", source_column = 1, target_column = 0 },     # columns of a TSV file
      { file = "ChatbotData.csv", source_column = "Q", target_column = "A" },  # CSV with a header row
    ]

Without `valid` corpora, the validation pairs are carved from all training pairs by
`train_translation`'s own seeded carve (`load_split`: `valid_size` pairs, at most a tenth), and
both parts are written out, so the pairs scored after training are exactly the ones validated on.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hanformer.data.parallel import SentencePair, read_parallel, read_table_pairs
from hanformer.errors import ConfigError
from hanformer.models.encoder_decoder.settings import TranslationTrainConfig
from hanformer.models.encoder_decoder.train import load_split
from hanformer.recipes.stage_config import parse_stage_config
from hanformer.recipes.stages.translation_paths import SIDES, TranslationLayout
from hanformer.utils.config import setting
from hanformer.utils.files import atomic_write, plain_suffix


@dataclass
class CorpusSpec:
    """One corpus: two line-aligned files (`source`, `target`) or two columns of one delimited file (`file`)."""

    source: str = setting("", "line-aligned corpus: the file of source sentences")
    target: str = setting("", "line-aligned corpus: the file of target sentences (line N translates line N)")
    file: str = setting("", "one delimited file (TSV, CSV) holding both sides in columns")
    source_column: int | str = setting(0, "with `file`: the source column, a 0-based index or a header name")
    target_column: int | str = setting(1, "with `file`: the target column, a 0-based index or a header name")
    header: bool | None = setting(None, "with `file`: the first row names the columns (default: when a column "
                                  "is given by name)")
    delimiter: str = setting("", "with `file`: the field separator (default: ',' for .csv, a tab otherwise)")
    empty: Literal["error", "skip"] = setting("error", "a pair with an empty side: an error, or skipped")
    limit: int = setting(0, "read only the first N pairs (0: all)")

    def validate(self) -> None:
        lines = bool(self.source or self.target)
        if lines == bool(self.file):
            raise ConfigError("give either source = FILE and target = FILE (line-aligned files) or file = FILE "
                              "with source_column and target_column (one TSV/CSV file), not both or neither")
        if lines and not (self.source and self.target):
            raise ConfigError("give both source = FILE and target = FILE")
        if self.limit < 0:
            raise ConfigError(f"limit = {self.limit}: must be 0 (all) or more")
        if self.delimiter and len(self.delimiter) != 1:
            raise ConfigError(f"delimiter = {self.delimiter!r}: must be one character")

    @property
    def paths(self) -> list[str]:
        return [self.file] if self.file else [self.source, self.target]

    def read(self) -> list[SentencePair]:
        if not self.file:
            pairs = read_parallel(self.source, self.target, empty=self.empty)
        else:
            by_name = isinstance(self.source_column, str) or isinstance(self.target_column, str)
            header = by_name if self.header is None else self.header
            delimiter = self.delimiter or ("," if plain_suffix(self.file) == ".csv" else "\t")
            pairs = read_table_pairs(self.file, self.source_column, self.target_column, delimiter=delimiter,
                                     header=header, empty=self.empty)
        return pairs[:self.limit] if self.limit else pairs


def parse_corpora(tables: list[dict[str, Any]], source: str, key: str) -> list[CorpusSpec]:
    """The corpus tables of `key` (train, valid), each checked; errors name the table and its place."""
    specs = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {key}[{i}] = {table!r}: each corpus is a table, e.g. "
                              '{ source = "train.en", target = "train.de" }')
        specs.append(parse_stage_config(CorpusSpec, table, f"{source} {key}[{i}]"))
    return specs


def read_corpora(specs: list[CorpusSpec]) -> list[SentencePair]:
    return [pair for spec in specs for pair in spec.read()]


def _write_pairs(pairs: list[SentencePair], files: tuple[Path, Path]) -> None:
    """Both sides, one sentence a line; a sentence's own line breaks (CSV fields may hold them)
    become spaces, so line N of one file stays the translation of line N of the other."""
    for side, path in zip(SIDES, files, strict=True):
        with atomic_write(path) as f:
            for pair in pairs:
                text = pair.source if side == "src" else pair.target
                f.write(" ".join(text.split()) + "\n")


def prepare_pairs(train: list[CorpusSpec], valid: list[CorpusSpec], config: TranslationTrainConfig,
                  layout: TranslationLayout) -> dict[str, Any]:
    """Write the training and validation pairs of a table into its data folder; returns their counts."""
    train_files, valid_files = layout.pair_files("train"), layout.pair_files("valid")
    pairs = read_corpora(train)
    _write_pairs(pairs, train_files)
    if valid:
        held = read_corpora(valid)
    else:  # the carve reads the files just written (all pairs) and the training part replaces them
        split = load_split(dataclasses.replace(
            config, train_source=os.fspath(train_files[0]), train_target=os.fspath(train_files[1]),
            valid_source=None, valid_target=None))
        pairs, held = split.train, split.valid
        _write_pairs(pairs, train_files)
    _write_pairs(held, valid_files)
    return {"train_pairs": len(pairs), "valid_pairs": len(held), "valid_carved": not valid}
