"""Extractive QA: sliding windows over long contexts, answer spans through character offsets,
and the n-best start/end search that turns logits back into answer text.

A context longer than the model's window is cut into overlapping windows of
`[CLS] question [SEP] context-piece [SEP]`; consecutive windows start `doc_stride` pieces apart
(BERT's original meaning of doc_stride). Every context position remembers its character span, so
the predicted answer is the exact substring of the context, never re-detokenised pieces.
With entity inputs (see `tasks.encoding`), question and context are both marked; the markers
keep no offsets, so answers are still spans of the context as given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hanformer.errors import ConfigError
from hanformer.tasks.encoding import PieceEncoder
from hanformer.tasks.examples import QAExample


@dataclass
class QASettings:
    max_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30  # in pieces
    n_best: int = 20


def answer_piece_span(offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """Indices of the first and last context piece overlapping characters [start, end)."""
    first = next((i for i, (s, e) in enumerate(offsets) if e > start), None)
    last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < end), None)
    if first is None or last is None or last < first:
        return None
    return first, last


def encode_qa_examples(encoder: PieceEncoder, examples: Sequence[QAExample], settings: QASettings,
                       with_labels: bool = True) -> list[dict[str, Any]]:
    """Window features. Each has `example_index` and `offsets` (a character span per position,
    None outside the context); with labels, start/end positions of the first gold answer (0, the
    [CLS] position, when the answer is not inside the window)."""
    questions = encoder.pieces([e.question for e in examples])
    contexts = encoder.pieces([e.context for e in examples])
    features: list[dict[str, Any]] = []
    for idx, (ex, q, c) in enumerate(zip(examples, questions, contexts, strict=False)):
        q_ids = q.ids[: settings.max_query_length]
        room = settings.max_length - len(q_ids) - encoder.layout.added(pair=True)
        if room < 8:
            raise ConfigError(f"max_length {settings.max_length} leaves no room for the context after a "
                              f"{len(q_ids)}-piece question; raise --max-length or lower --max-query-length")
        stride = max(1, min(settings.doc_stride, room))
        gold = None
        if with_labels and ex.answers:
            a = ex.answers[0]
            gold = answer_piece_span(c.offsets, a.start, a.end)
        n = len(c.ids)
        start = 0
        while True:
            end = min(start + room, n)
            ids, types = encoder.frame(q_ids, c.ids[start:end])
            base = encoder.layout.second_start(len(q_ids))
            offsets: list[tuple[int, int] | None] = [None] * len(ids)
            for i in range(start, end):
                # Entity markers cover no character of the context: no answer starts or ends there.
                offsets[base + i - start] = None if c.ids[i] in encoder.marker_ids else c.offsets[i]
            f: dict[str, Any] = {"input_ids": ids, "token_type_ids": types, "example_index": idx,
                                 "offsets": offsets}
            if q.entity_ids is not None and c.entity_ids is not None:
                f["entity_ids"] = encoder.frame_entity_ids(q.entity_ids[: len(q_ids)], c.entity_ids[start:end])
            if with_labels:
                if gold is not None and start <= gold[0] and gold[1] < end:
                    f["start_positions"] = base + gold[0] - start
                    f["end_positions"] = base + gold[1] - start
                else:
                    f["start_positions"] = f["end_positions"] = 0
            features.append(f)
            if end >= n:
                break
            start += stride
    return features


@dataclass
class AnswerPrediction:
    text: str
    start: int  # character offsets in the context
    end: int
    score: float  # start logit + end logit
    probability: float  # softmax over the n-best candidates

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end,
                "score": round(self.score, 4), "probability": round(self.probability, 4)}


def postprocess(examples: Sequence[QAExample], features: Sequence[dict[str, Any]],
                start_logits: Sequence[np.ndarray], end_logits: Sequence[np.ndarray],
                settings: QASettings) -> list[list[AnswerPrediction]]:
    """The n-best answers of every example (best first), searched over all its windows:
    the top-n start and end positions inside the context, end >= start, at most
    `max_answer_length` pieces, scored by start + end logit."""
    candidates: list[dict[tuple[int, int], float]] = [{} for _ in examples]
    for f, sl, el in zip(features, start_logits, end_logits, strict=False):
        offsets = f["offsets"]
        ctx = [i for i, o in enumerate(offsets) if o is not None]
        if not ctx:
            continue
        ctx_arr = np.asarray(ctx)
        sl = np.asarray(sl, dtype=np.float64)[: len(offsets)]
        el = np.asarray(el, dtype=np.float64)[: len(offsets)]
        top_s = ctx_arr[np.argsort(-sl[ctx_arr], kind="stable")[: settings.n_best]]
        top_e = ctx_arr[np.argsort(-el[ctx_arr], kind="stable")[: settings.n_best]]
        found = candidates[f["example_index"]]
        for s in top_s:
            for e in top_e:
                if e < s or e - s + 1 > settings.max_answer_length:
                    continue
                span = (offsets[s][0], offsets[e][1])
                score = float(sl[s] + el[e])
                if score > found.get(span, -math.inf):
                    found[span] = score
    out = []
    for ex, found in zip(examples, candidates, strict=False):
        best = sorted(found.items(), key=lambda kv: -kv[1])[: settings.n_best]
        if not best:
            out.append([AnswerPrediction("", 0, 0, -math.inf, 0.0)])
            continue
        scores = np.array([s for _, s in best])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        out.append([AnswerPrediction(ex.context[s:e], s, e, sc, float(p))
                    for ((s, e), sc), p in zip(best, probs, strict=False)])
    return out
