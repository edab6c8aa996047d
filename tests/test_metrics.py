"""Metric values on known inputs, and agreement with the reference implementations
(seqeval, scikit-learn, scipy) on random inputs."""

from __future__ import annotations

import random

import pytest

from hanformer.evaluation import (
    accuracy,
    char_macro_f1,
    entity_f1,
    entity_scores,
    exact_match,
    f1,
    get_entities,
    macro_f1,
    normalize_korquad,
    normalize_squad,
    pearson,
    qa_scores,
    spearman,
)

# ---- classification / regression -------------------------------------------------------


def test_accuracy_and_macro_f1_known_values():
    gold = [0, 0, 1, 1, 2]
    pred = [0, 1, 1, 1, 0]
    assert accuracy(gold, pred) == pytest.approx(3 / 5)
    # class 0: tp1 g2 p2 -> 0.5; class 1: tp2 g2 p3 -> 0.8; class 2: 0 -> mean 0.4333
    assert macro_f1(gold, pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_majority_class_baseline_known_values():
    from hanformer.tasks.registry import get_task, majority_scores, most_frequent_label

    nli = get_task("klue-nli")
    label = most_frequent_label(["neutral", "contradiction", "neutral", "entailment"])
    assert label == "neutral"
    assert most_frequent_label(["b", "a", "b", "a"]) == "a"  # a tie goes to the first in sorted order
    assert most_frequent_label([]) is None
    gold = ["neutral", "entailment", "entailment", "contradiction"]
    floor = majority_scores(nli, label, gold, labels=nli.labels)
    # always "neutral": 1 of 4 right; F1 neutral 2*1/(1+4) = 0.4, the other two classes 0
    assert floor == {"label": "neutral", "accuracy": pytest.approx(0.25), "macro_f1": pytest.approx(0.4 / 3)}
    assert majority_scores(get_task("korsts"), "3.0", [1.0, 2.0]) is None  # a constant has no correlation
    assert majority_scores(nli, None, gold) is None


def test_correlations_known_values():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)
    # ties get average ranks: x ranks [1.5,1.5,3], y ranks [1,2,3] -> r = 0.8660254
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254, abs=1e-6)
    assert pearson([1, 1, 1], [1, 2, 3]) == 0.0


def test_classification_metrics_match_sklearn_and_scipy():
    sk = pytest.importorskip("sklearn.metrics")
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(5, 60)
        gold = [rng.randint(0, 3) for _ in range(n)]
        pred = [rng.randint(0, 3) for _ in range(n)]
        assert accuracy(gold, pred) == pytest.approx(sk.accuracy_score(gold, pred))
        assert macro_f1(gold, pred) == pytest.approx(sk.f1_score(gold, pred, average="macro"))
        x = [round(rng.uniform(0, 5), 1) for _ in range(n)]
        y = [round(rng.uniform(0, 5), 1) for _ in range(n)]
        assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


# ---- NER ----------------------------------------------------------------------------------


def test_get_entities_lenient_iob2_rules():
    # The seqeval README example.
    seq = ["B-PER", "I-PER", "O", "B-LOC"]
    assert get_entities(seq) == [("PER", 0, 1), ("LOC", 3, 3)]
    # I- after O starts an entity; a type change splits one.
    assert get_entities(["O", "I-ORG", "I-ORG", "I-PER"]) == [("ORG", 1, 2), ("PER", 3, 3)]
    assert get_entities(["B-LOC", "B-LOC"]) == [("LOC", 0, 0), ("LOC", 1, 1)]


def test_entity_f1_known_value():
    gold = [["B-MISC", "I-MISC", "I-MISC", "O", "O", "O", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    # the seqeval README example: f1 = 0.50
    s = entity_scores(gold, pred)
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    assert s.per_type["PER"]["f1"] == 1.0 and s.per_type["MISC"]["f1"] == 0.0


def _random_tags(rng: random.Random, n: int) -> list[str]:
    pool = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "I-MISC"]
    return [rng.choice(pool) for _ in range(n)]


def test_entity_f1_matches_seqeval_on_random_sequences():
    metrics = pytest.importorskip("seqeval.metrics")
    rng = random.Random(1)
    for _ in range(200):
        lengths = [rng.randint(1, 12) for _ in range(rng.randint(1, 5))]
        gold = [_random_tags(rng, n) for n in lengths]
        pred = [_random_tags(rng, n) for n in lengths]
        assert entity_f1(gold, pred) == pytest.approx(metrics.f1_score(gold, pred))
        s = entity_scores(gold, pred)
        assert s.precision == pytest.approx(metrics.precision_score(gold, pred))
        assert s.recall == pytest.approx(metrics.recall_score(gold, pred))


def test_klue_char_macro_f1_known_value_and_sklearn():
    gold = [["B-PS", "I-PS", "O", "B-LC"]]
    pred = [["B-PS", "O", "O", "B-LC"]]
    # B-PS 1.0, I-PS 0.0 (missed), B-LC 1.0 -> 2/3
    assert char_macro_f1(gold, pred) == pytest.approx(2 / 3)
    sk = pytest.importorskip("sklearn.metrics")
    rng = random.Random(2)
    labels = ["B-PS", "I-PS", "B-LC", "I-LC", "B-OG", "I-OG"]
    for _ in range(20):
        g = [[rng.choice(labels + ["O"] * 3) for _ in range(30)]]
        p = [[rng.choice(labels + ["O"] * 3) for _ in range(30)]]
        ref = sk.f1_score(g[0], p[0], labels=labels, average="macro", zero_division=1)
        assert char_macro_f1(g, p, labels=labels) == pytest.approx(ref)


# ---- QA -----------------------------------------------------------------------------------


def test_squad_normalization_and_scores():
    assert normalize_squad("The  Quick, brown fox!") == "quick brown fox"
    assert exact_match("the Eiffel Tower.", "Eiffel Tower") == 1.0
    # tokens: pred [eiffel, tower, in, paris] vs gold [eiffel, tower]: p=1/2 r=1 -> 2/3
    assert f1("Eiffel Tower in Paris", "the Eiffel Tower") == pytest.approx(2 / 3)
    assert f1("nothing", "Eiffel Tower") == 0.0


def test_korquad_normalization_is_character_level():
    assert normalize_korquad("《미국 육군》 (부참모)") == "미국 육군 부참모"
    assert exact_match("‘초대 국무장관직’", "초대 국무장관직", style="korquad") == 1.0
    # characters: pred 미국육군부참모총장 (9) vs gold 부참모총장 (5): common 5 -> p=5/9 r=1
    assert f1("미국 육군 부참모 총장", "부참모 총장", style="korquad") == pytest.approx(2 * (5 / 9) / (5 / 9 + 1))
    # token F1 would be 0 here; character F1 credits the shared stem
    assert f1("국무장관직을", "국무장관직", style="squad") == 0.0
    assert f1("국무장관직을", "국무장관직", style="korquad") > 0.9


def test_qa_scores_takes_best_gold_and_counts_missing():
    refs = {"q1": ["Denver Broncos", "Broncos"], "q2": ["Santa Clara"]}
    scores = qa_scores({"q1": "Broncos"}, refs)
    assert scores["exact_match"] == 50.0 and scores["f1"] == 50.0 and scores["count"] == 2
