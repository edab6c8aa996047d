"""The score stage of a `[translation.<name>]` table: translate the validation sources with the
trained model, greedy and with beam search, and write what the report and a reader check:

    scores.json      per decoding: corpus BLEU and chrF (sacreBLEU, with signatures), seconds
    greedy.jsonl     one line per validation pair: line, source, reference, hypothesis,
    beam.jsonl       sentence chrF and sentence BLEU (sacreBLEU's sentence_score)
    alignments.json  the cross-attention of the first few translated sentences

Every file is written atomically, so an interrupted stage leaves no half-written result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hanformer.data.parallel import SentencePair, read_parallel
from hanformer.errors import HanformerError
from hanformer.evaluation.translation import translation_scores
from hanformer.generation.translate import Translation, load_translator, translate
from hanformer.recipes.recipe import TranslationSection
from hanformer.recipes.stages.translation_alignment import alignment
from hanformer.recipes.stages.translation_paths import DECODINGS, TranslationLayout
from hanformer.utils.files import atomic_write, atomic_write_json


@dataclass(frozen=True)
class ScorePlan:
    """What the score stage does: the table's scoring keys plus the training's length limit."""

    beams: int
    sentences: int
    batch_size: int
    alignments: int
    alignment_layer: int
    max_length: int
    keeps_best: bool

    @classmethod
    def of(cls, sec: TranslationSection, max_length: int, keeps_best: bool) -> ScorePlan:
        return cls(beams=sec.beams, sentences=sec.score_sentences, batch_size=sec.score_batch_size,
                   alignments=sec.alignments, alignment_layer=sec.alignment_layer, max_length=max_length,
                   keeps_best=keeps_best)

    def decodings(self) -> list[tuple[str, int]]:
        """(name, beam width) of each decoding scored: greedy, and beam search when wider than 1."""
        return [(DECODINGS[0], 1)] + ([(DECODINGS[1], self.beams)] if self.beams > 1 else [])


def sentence_scores(hypothesis: str, reference: str) -> dict[str, float]:
    """sacreBLEU's sentence-level chrF and BLEU (BLEU with effective order, as sacreBLEU
    recommends for single sentences); both 0-100."""
    # sacrebleu is an optional extra, so it is imported where it is used (as evaluation/translation.py does).
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError:
        raise HanformerError("translation scores need sacrebleu: pip install 'hanformer[translation]'") from None
    return {"chrf": round(float(CHRF().sentence_score(hypothesis, [reference]).score), 4),
            "bleu": round(float(BLEU(effective_order=True).sentence_score(hypothesis, [reference]).score), 4)}


def _sentence_rows(pairs: Sequence[SentencePair], translations: Sequence[Translation]) -> list[dict[str, Any]]:
    return [{"line": p.line, "source": p.source, "reference": p.target, "hypothesis": t.text,
             **sentence_scores(t.text, p.target)} for p, t in zip(pairs, translations, strict=True)]


def score_translations(plan: ScorePlan, layout: TranslationLayout) -> dict[str, Any]:
    """Translate and score the validation pairs (see the module docstring); returns the scores."""
    model, tokenizer = load_translator(layout.model_dir(plan.keeps_best))
    pairs = read_parallel(*layout.pair_files("valid"))
    if plan.sentences:
        pairs = pairs[:plan.sentences]
    sources, references = [p.source for p in pairs], [p.target for p in pairs]
    results: dict[str, Any] = {}
    shown: list[Translation] = []
    for name, beams in plan.decodings():
        started = time.time()
        translations = translate(model, sources, tokenizer=tokenizer, num_beams=beams,
                                 max_length=plan.max_length, batch_size=plan.batch_size)
        seconds = time.time() - started
        scores = translation_scores([t.text for t in translations], references)
        with atomic_write(layout.sentences_file(name)) as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in _sentence_rows(pairs, translations))
        results[name] = {**scores.to_dict(), "num_beams": beams, "seconds": round(seconds, 2)}
        shown = translations  # the pictures show the last (widest) decoding, the one the report leads with
    pictures: list[dict[str, Any]] = []
    for translation in shown:
        if len(pictures) >= plan.alignments:
            break
        picture = alignment(model, tokenizer, translation.source, translation.token_ids, plan.alignment_layer)
        if picture is not None:
            pictures.append(picture)
    atomic_write_json(layout.alignments_file, {"alignments": pictures})
    summary = {"sentences": len(pairs), "model": str(layout.model_dir(plan.keeps_best)), "decodings": results}
    atomic_write_json(layout.scores_file, summary)
    return summary
