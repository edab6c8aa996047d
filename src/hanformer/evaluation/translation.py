"""Translation metrics: corpus BLEU and chrF, computed by sacreBLEU on detokenized text.

Scores are only comparable when computed the same way, so both are sacreBLEU's (the standard
implementation) on plain detokenized sentences, as a translation is printed, never on word
pieces; sacreBLEU tokenizes internally, and its signature string (tokenizer, case, smoothing,
version) is returned with each score so a result can be reproduced and compared. Needs
sacrebleu: `pip install 'hanformer[translation]'`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from hanformer.errors import HanformerError, InputError


@dataclasses.dataclass
class TranslationScores:
    bleu: float
    """Corpus BLEU, 0-100."""
    chrf: float
    """Corpus chrF (character n-gram F-score, beta 2), 0-100."""
    bleu_signature: str
    chrf_signature: str
    bleu_precisions: list[float]
    """Modified 1- to 4-gram precisions, %."""
    brevity_penalty: float
    hypothesis_length: int
    reference_length: int
    sentences: int

    def summary(self) -> str:
        """Two lines as sacreBLEU prints them: each score with its signature."""
        return f"BLEU = {self.bleu:.2f} ({self.bleu_signature})\nchrF = {self.chrf:.2f} ({self.chrf_signature})"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _reference_streams(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """sacreBLEU's layout: one stream per reference set, each as long as the hypotheses."""
    if all(isinstance(r, str) for r in references):
        streams = [[r for r in references if isinstance(r, str)]]
    else:
        streams = [[str(line) for line in stream] for stream in references]
    if not streams:
        raise InputError("no references given")
    for k, stream in enumerate(streams):
        if len(stream) != len(hypotheses):
            which = "references" if len(streams) == 1 else f"reference set {k + 1}"
            raise InputError(f"{len(hypotheses)} translations but {len(stream)} {which}; give one reference "
                             "line per translated line")
    return streams


def translation_scores(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]], *,
                       tokenize: str | None = None, lowercase: bool = False) -> TranslationScores:
    """Corpus BLEU and chrF of `hypotheses` against `references` (one string per hypothesis, or
    several such lists for several references per sentence).

    `tokenize`: sacreBLEU's BLEU tokenizer (default '13a', its standard; e.g. 'intl', 'char',
    'ko-mecab' where installed). chrF works on characters and needs none.
    """
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError:
        raise HanformerError("translation scores need sacrebleu: pip install 'hanformer[translation]'") from None
    if not hypotheses:
        raise InputError("no translations to score")
    streams = _reference_streams(hypotheses, references)
    hyps = list(hypotheses)
    bleu_metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    chrf_metric = CHRF(lowercase=lowercase)
    bleu = bleu_metric.corpus_score(hyps, streams)
    chrf = chrf_metric.corpus_score(hyps, streams)
    return TranslationScores(
        bleu=float(bleu.score), chrf=float(chrf.score),
        bleu_signature=str(bleu_metric.get_signature()), chrf_signature=str(chrf_metric.get_signature()),
        bleu_precisions=[float(p) for p in bleu.precisions], brevity_penalty=float(bleu.bp),
        hypothesis_length=int(bleu.sys_len), reference_length=int(bleu.ref_len), sentences=len(hyps))
