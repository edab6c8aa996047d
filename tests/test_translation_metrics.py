"""BLEU and chrF of translations: sacreBLEU's numbers and signatures, and a case checked by hand."""

from __future__ import annotations

import math

import pytest

from hanformer.errors import InputError
from hanformer.evaluation.translation import translation_scores

sacrebleu = pytest.importorskip("sacrebleu")

HYPOTHESES = ["The cat sat on the mat.", "A dog is running in the park!", "Zwei Männer spielen Fußball."]
REFERENCES = ["The cat is sitting on the mat.", "A dog runs in the park!", "Zwei Männer spielen Fußball."]
SECOND_REFERENCES = ["A cat sat on the mat.", "The dog is running through the park!", "Zwei Männer kicken."]


def test_scores_equal_sacrebleu_corpus_scores_with_their_signatures():
    scores = translation_scores(HYPOTHESES, REFERENCES)
    bleu = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    chrf = sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES])
    assert scores.bleu == pytest.approx(bleu.score) and scores.chrf == pytest.approx(chrf.score)
    assert scores.bleu_precisions == pytest.approx(bleu.precisions)
    assert scores.bleu_signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert scores.chrf_signature.startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:")
    assert scores.summary().splitlines()[0] == f"BLEU = {bleu.score:.2f} ({scores.bleu_signature})"

    multi = translation_scores(HYPOTHESES, [REFERENCES, SECOND_REFERENCES], lowercase=True)
    assert multi.bleu == pytest.approx(
        sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES, SECOND_REFERENCES], lowercase=True).score)
    assert multi.bleu_signature.startswith("nrefs:2|case:lc|")


def test_a_case_checked_by_hand():
    # "a b c d" against "a b c e": 1- to 4-gram matches 3/4, 2/3, 1/2 and 0/1; sacreBLEU's default
    # 'exp' smoothing counts a zero as 1 / (2 * total) = 1/2; equal lengths, so no brevity penalty.
    scores = translation_scores(["a b c d"], ["a b c e"])
    assert scores.bleu_precisions == pytest.approx([75.0, 200 / 3, 50.0, 50.0])
    assert scores.brevity_penalty == 1.0
    assert scores.bleu == pytest.approx(math.exp((math.log(0.75) + math.log(2 / 3) + 2 * math.log(0.5)) / 4) * 100)
    assert translation_scores(["the same four words"], ["the same four words"]).bleu == pytest.approx(100.0)
    # Half the length: the brevity penalty is exp(1 - 8/4).
    short = translation_scores(["w x y z"], ["w x y z q r s t"])
    assert short.brevity_penalty == pytest.approx(math.exp(-1.0))


def test_mismatched_line_counts_are_one_line_errors():
    with pytest.raises(InputError, match="3 translations but 2 references"):
        translation_scores(HYPOTHESES, REFERENCES[:2])
    with pytest.raises(InputError, match="no translations"):
        translation_scores([], [])
