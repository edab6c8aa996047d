"""A fine-tuned model loaded once, for predictions from Python.

`Predictor(model_dir)` reads the weights, the tokenizer and `task.json` once; every
`predict(...)` call then answers with the records `hanformer predict` prints, through the same
path (`tasks.inference`): labels with probabilities, scores, entities with character spans, or
answers with spans, scores and the n-best list.

    from hanformer import Predictor

    nsmc = Predictor("runs/nsmc")
    nsmc.predict(["정말 재밌어요", "지루했다"])            # classification: one record per text
    Predictor("runs/klue-nli").predict([("전제 문장", "가설 문장")])          # sentence pairs
    Predictor("runs/korquad").predict(("누가 갔어?", "김철수는 서울에 갔다."))  # (question, context)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hanformer.entities.tokens import recorded_entity_config
from hanformer.errors import ConfigError, InputError
from hanformer.tasks.encoding import PieceEncoder
from hanformer.tasks.examples import TextExample
from hanformer.tasks.inference import predict_examples, prediction_record, raw_examples
from hanformer.tasks.task_model import TaskModel

# One example: a text, or (text, pair) for pair tasks, (question, context) for QA.
Example = str | tuple[str, str]


class Predictor:
    """A fine-tuned model directory (or a `finetune` output folder: its best/) ready to predict.

    `task` overrides the one recorded in task.json; `device` is "auto" (CUDA when there is one),
    "cpu", "cuda", ...; `batch_size` examples go through the model at once; `top_k` n-best
    answers are kept per QA record. An entity-aware model finds its entities as it was fine-tuned
    to (its tokenizer records how); `entities` names another source for them ('kiwi', a NER
    model directory, or 'off')."""

    def __init__(self, model_dir: str | Path, *, task: str | None = None, device: str = "auto",
                 batch_size: int = 64, top_k: int = 5, entities: str | None = None) -> None:
        for name, value in (("batch_size", batch_size), ("top_k", top_k)):
            if value < 1:
                raise ConfigError(f"Predictor: {name} = {value}: must be at least 1")
        loaded = TaskModel.load(model_dir, task, device)
        self.model_dir, self.task, self.model, self.tokenizer = loaded.directory, loaded.task, loaded.model, loaded.tokenizer
        self.encoder, self.settings, self.labels = loaded.encoder, loaded.settings, loaded.labels
        if entities is not None:
            self.encoder = self._entity_encoder(entities)
        self.label_names = loaded.label_names
        self.batch_size = batch_size
        self.top_k = top_k

    def _entity_encoder(self, entities: str) -> PieceEncoder:
        """The model's encoder with its entities found by `entities` instead of the recorded source."""
        recorded = recorded_entity_config(self.tokenizer)
        if recorded is None:
            if entities == "off":
                return self.encoder
            raise ConfigError(f"--entities {entities}: {self.model_dir} was fine-tuned without entity inputs, so "
                              "it has no use for them; fine-tune it with --entities first")
        return PieceEncoder(self.tokenizer, entities=dataclasses.replace(recorded, entities=entities))

    def predict(self, inputs: Example | Iterable[Example]) -> list[dict[str, Any]]:
        """One record per example, in order. `inputs` is one example (a text, or a 2-tuple: a
        pair, or a question and its context) or an iterable of them; a list is always several
        examples, so `["a", "b"]` is two texts and `[("a", "b")]` one pair."""
        return self.predict_examples(raw_examples(self.task, text_examples(inputs)))

    def predict_examples(self, examples: Sequence[Any]) -> list[dict[str, Any]]:
        """Records for examples already in the task's form: `raw_examples` of `TextExample`s
        (as `tasks.readers.read_texts` reads lines), or `QAExample`s from a SQuAD file."""
        self._check_inputs(examples)
        if not examples:
            return []
        preds = predict_examples(self.task, self.model, self.encoder, examples, self.settings, self.labels,
                                 self.batch_size, source=str(self.model_dir))
        return [prediction_record(self.task, example, label, detail, self.top_k, names=self.label_names)
                for example, label, detail in zip(examples, preds.labels, preds.details, strict=True)]

    def _check_inputs(self, examples: Sequence[Any]) -> None:
        """Refuse what the task cannot answer before any forward pass: a QA question without a
        context, a single sentence for a pair task."""
        task = self.task
        if task.kind == "qa":
            bad = next((e for e in examples if not e.context), None)
            if bad is not None:
                raise InputError(f"{bad.source}: a QA model needs a question and a context "
                                 "('QUESTION<TAB>CONTEXT' on each line, or (question, context) tuples)")
        if task.kind in ("classification", "regression") and task.pair:
            bad = next((e for e in examples if e.text_pair is None), None)
            if bad is not None:
                raise InputError(f"{bad.source}: task {task.name!r} takes sentence pairs: write "
                                 "'TEXT<TAB>PAIR' (or pass (text, pair) tuples)")


def text_examples(inputs: Example | Iterable[Example]) -> list[TextExample]:
    """Raw examples from Python values, named `inputs[i]` in errors. Texts are taken as they
    are (a tab is no separator here, unlike in input files); an empty pair counts as none, as
    an empty field of a line does."""
    items = [inputs] if isinstance(inputs, (str, tuple)) else list(inputs)
    out = []
    for i, item in enumerate(items):
        source = f"inputs[{i}]"
        if isinstance(item, str):
            text, pair = item, None
        elif isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item):
            text, pair = item[0], item[1] or None
        else:
            raise InputError(f"{source}: expected a text or a (text, pair) tuple, got {item!r:.80}")
        if not text.strip():
            raise InputError(f"{source}: empty text; give every example some text")
        out.append(TextExample(text, pair, None, source))
    return out
