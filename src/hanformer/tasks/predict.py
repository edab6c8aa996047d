"""`predict`: run a fine-tuned model on raw input and write JSON lines.

Input is one example per line: a text; `TEXT<TAB>PAIR` for pair tasks; `QUESTION<TAB>CONTEXT`
for QA (a SQuAD-format .json file works too). Output records carry labels with probabilities,
entities with character spans, or answers with spans and scores.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError
from hanformer.tasks.readers import read_squad, read_texts
from hanformer.utils.config import setting
from hanformer.utils.files import atomic_write, check_output_file, iter_stream_lines, require_file


@dataclasses.dataclass
class PredictConfig:
    model: str = setting("", "fine-tuned model directory (or a finetune output directory: its best/ is used)")
    input: str = setting("-", "input file, one example per line ('-': standard input)")
    output: str = setting("-", "JSON-lines output file ('-': standard output, '': do not write)")
    task: str | None = setting(None, "task name (default: the one recorded in the model's task.json)")
    batch_size: int = setting(64, "batch size")
    top_k: int = setting(5, "QA: how many n-best answers to include per question")
    threads: int = setting(0, "CPU threads for torch (0: torch's default)")
    device: str = setting("auto", "auto, cpu, cuda, ...")
    entities: str | None = setting(None, "entity-aware models: where their entities come from, 'kiwi' or a "
                                   "NER model directory ('off': none; default: as the model was fine-tuned)")

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("predict needs --model (a fine-tuned model directory)")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.top_k < 1:
            raise ConfigError(f"--top-k {self.top_k}: must be at least 1")
        if self.threads < 0:
            raise ConfigError(f"--threads {self.threads}: must be 0 (torch's default) or more")


def predict(config: PredictConfig | str | Path, inputs: Iterable[str | tuple[str, str]] | None = None,
            **options: Any) -> list[dict[str, Any]]:
    """Predictions for every input example, also written as JSON lines to `config.output`.

    `inputs` replaces the input file: lines (`TEXT` or `TEXT<TAB>PAIR`) or (text, pair) tuples.
    Also callable as `predict(model_dir, ["a text", ("premise", "hypothesis")], batch_size=...)`,
    which returns the records without writing them anywhere."""
    if not isinstance(config, PredictConfig):
        options.setdefault("output", "")
        config = PredictConfig(model=str(config), **options)
    config.validate()
    lines = None if inputs is None else [x if isinstance(x, str) else "\t".join(x) for x in inputs]
    from_file = inputs is None and config.input != "-"
    # Paths first: a wrong one fails at once, before the model is loaded.
    if from_file:
        require_file(config.input, "input file")
    if config.output not in ("-", ""):
        check_output_file(config.output, "--output", inputs=[config.input] if from_file else [])
    import torch

    from hanformer.tasks.inference import raw_examples
    from hanformer.tasks.predictor import Predictor

    if config.threads:
        torch.set_num_threads(config.threads)
    # Predictor checks the examples against the task and names the labels, as it does in Python.
    predictor = Predictor(config.model, task=config.task, device=config.device, batch_size=config.batch_size,
                          top_k=config.top_k, entities=config.entities)
    if predictor.task.kind == "qa" and from_file and Path(config.input).suffix.lower() == ".json":
        examples = read_squad(config.input, require_answers=False).examples
    else:
        if lines is None and not from_file:  # standard input, decoded here to report bad bytes by line
            lines = [line for _, line in iter_stream_lines(sys.stdin)]
        texts = read_texts(config.input if from_file else None, lines=lines)
        examples = raw_examples(predictor.task, texts)
    records = predictor.predict_examples(examples)
    if config.output:
        _write(records, config.output)
    return records


def _jsonl(records: list[dict[str, Any]]) -> Iterator[str]:
    for r in records:
        yield json.dumps(r, ensure_ascii=False) + "\n"


def _write(records: list[dict[str, Any]], output: str) -> None:
    if output == "-":
        for line in _jsonl(records):
            sys.stdout.write(line)
        sys.stdout.flush()
        return
    with atomic_write(output) as f:
        f.writelines(_jsonl(records))
