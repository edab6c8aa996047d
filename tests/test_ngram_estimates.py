"""n-gram estimates against exact hand-computed numbers and an independent formula-by-formula
reference (plain dicts and recursion, no code shared with hanformer.models.ngram)."""

from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest

from hanformer.models.ngram.api import score_files, train_ngram
from hanformer.models.ngram.config import NgramConfig
from hanformer.models.ngram.corpus import WordSplitter, read_stream
from hanformer.models.ngram.counts import count_ngrams
from hanformer.models.ngram.smoothing import modified_kn_discounts
from hanformer.models.ngram.vocab import BOS_ID, UNK_ID, Vocabulary

HAND_CORPUS = ["a c", "c d c", "c d", "c c a", "c c"]


def _train(tmp_path: Path, lines: list[str], **config) -> object:
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return train_ngram([corpus], NgramConfig(**config))


def _p(model, history: list[str], word: str) -> float:
    vocab = model.vocab
    ids = [BOS_ID] + [vocab.id_of(w) for w in history]
    return 10.0 ** model.next_word_logprobs(ids)[vocab.id_of(word) if word in vocab else UNK_ID]


# ------------------------------------------------------------------------ hand-computed example
# Bigram modified Kneser-Ney over HAND_CORPUS, worked out on paper:
# bigram counts  <s> a 1, <s> c 4, a c 1, a </s> 1, c </s> 3, c d 2, c c 2, c a 1, d c 1, d </s> 1
#   -> n1..n4 = 6, 2, 1, 1; Y = 6/10; D1 = 3/5, D2 = 11/10, D3+ = 3/5
# unigram continuation counts  a 2 ({<s>, c}), c 4, d 1, </s> 3
#   -> n1..n4 = 1, 1, 1, 1; Y = 1/3; D1 = 1/3, D2 = 1, D3+ = 5/3
# unigrams: total 10, gamma = (1 + 5/3 + 1/3 + 5/3) / 10 = 7/15, uniform 1/5 (<unk> </s> a c d)
#   p(a) = 1/10 + 7/75 = 29/150, p(c) = 49/150, p(d) = 24/150, p(</s>) = 34/150, p(<unk>) = 14/150
# context c: total 8, gamma = (3/5 + 11/10 + 11/10 + 3/5) / 8 = 17/40
#   p(</s>|c) = (3 - 3/5)/8 + 17/40 * 34/150 = 2378/6000, p(d|c) = 1083/6000, ...
UNIGRAMS = {"a": F(29, 150), "c": F(49, 150), "d": F(24, 150), "</s>": F(34, 150), "<unk>": F(14, 150)}
BIGRAMS = {
    ("<s>", "a"): F(474, 3750), ("<s>", "c"): F(2844, 3750),
    ("a", "c"): F(297, 750), ("a", "</s>"): F(252, 750),
    ("c", "</s>"): F(2378, 6000), ("c", "d"): F(1083, 6000), ("c", "c"): F(1508, 6000), ("c", "a"): F(793, 6000),
    ("d", "c"): F(297, 750), ("d", "</s>"): F(252, 750),
}
BACKOFFS = {"<s>": F(6, 25), "a": F(3, 5), "c": F(17, 40), "d": F(3, 5)}


def test_modified_kneser_ney_matches_the_hand_computed_bigram_model(tmp_path: Path) -> None:
    trained = _train(tmp_path, HAND_CORPUS, order=2)
    model = trained.model
    assert trained.config["discounts"]["2"] == pytest.approx([0.6, 1.1, 0.6], rel=1e-12)
    assert trained.config["discounts"]["1"] == pytest.approx([1 / 3, 1.0, 5 / 3], rel=1e-12)
    assert trained.config["discount_fallback_orders"] == []
    vocab = model.vocab
    for word, expected in UNIGRAMS.items():
        assert 10 ** model.logprob[0][vocab.id_of(word)] == pytest.approx(float(expected), rel=1e-12)
    for (context, word), expected in BIGRAMS.items():
        row = model.row_of([vocab.id_of(context), vocab.id_of(word)])
        assert 10 ** model.logprob[1][row] == pytest.approx(float(expected), rel=1e-12), (context, word)
    for context, expected in BACKOFFS.items():
        assert 10 ** model.backoff[0][vocab.id_of(context)] == pytest.approx(float(expected), rel=1e-12)


def test_hand_computed_sentence_score_with_an_oov_word(tmp_path: Path) -> None:
    trained = _train(tmp_path, HAND_CORPUS, order=2)
    held_out = tmp_path / "held.txt"
    held_out.write_text("a d x\n", encoding="utf-8")
    scores = score_files(trained, held_out)
    # <s> a: listed; a d: unseen -> b(a) p(d); d x: b(d) p(<unk>); <unk> </s>: no such context -> p(</s>)
    expected = BIGRAMS[("<s>", "a")] * BACKOFFS["a"] * UNIGRAMS["d"] * BACKOFFS["d"] * UNIGRAMS["<unk>"] \
        * UNIGRAMS["</s>"]
    assert scores.logprob == pytest.approx(math.log10(expected), rel=1e-12)
    assert (scores.words, scores.oov, scores.tokens) == (3, 1, 4)
    oov_part = math.log10(BACKOFFS["d"] * UNIGRAMS["<unk>"])
    assert scores.perplexity == pytest.approx(10 ** (-math.log10(expected) / 4), rel=1e-12)
    assert scores.perplexity_without_oov == pytest.approx(10 ** (-(math.log10(expected) - oov_part) / 3), rel=1e-12)


def test_discounts_fall_back_to_kenlm_defaults_when_count_of_counts_are_empty(tmp_path: Path) -> None:
    assert modified_kn_discounts(np.array([3, 0, 1, 0])) is None
    trained = _train(tmp_path, ["a b", "b a"], order=2)
    assert trained.config["discount_fallback_orders"] == [1, 2]
    assert trained.config["discounts"]["2"] == [0.5, 1.0, 1.5]


# ------------------------------------------------------------------- the formula reference
class Reference:
    """Each estimator written straight from its formula over Counters of n-gram tuples."""

    def __init__(self, sentences: list[list[str]], order: int, smoothing: str, k: float = 0.5,
                 discount: float | None = None) -> None:
        self.order, self.smoothing, self.k = order, smoothing, k
        self.counts: list[Counter] = [Counter() for _ in range(order)]
        for s in sentences:
            tokens = ["<s>", *s, "</s>"]
            for n in range(1, order + 1):
                for i in range(len(tokens) - n + 1):
                    gram = tuple(tokens[i:i + n])
                    if gram != ("<s>",):
                        self.counts[n - 1][gram] += 1
        self.vocab = {w for (w,) in self.counts[0]} | {"<unk>"}  # every word but <s>
        self.adjusted = [self._adjusted(n) for n in range(1, order + 1)]
        self.discounts = [self._discounts(n, discount) for n in range(1, order + 1)]

    def _adjusted(self, n: int) -> Counter:
        if self.smoothing != "kn" or n == self.order:
            return self.counts[n - 1]
        left = Counter(g[1:] for g in self.counts[n])
        return Counter({g: (c if g[0] == "<s>" else left[g]) for g, c in self.counts[n - 1].items()})

    def _discounts(self, n: int, fixed: float | None) -> list[float]:
        coc = Counter(self.adjusted[n - 1].values())
        n1, n2, n3, n4 = (coc[i] for i in (1, 2, 3, 4))
        if self.smoothing == "absolute":
            return [fixed if fixed is not None else (n1 / (n1 + 2 * n2) if n1 else 0.5)] * 3
        if min(n1, n2, n3) == 0:
            return [0.5, 1.0, 1.5]
        y = n1 / (n1 + 2 * n2)
        d = [1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3]
        return d if all(0 < x <= j for j, x in enumerate(d, 1)) else [0.5, 1.0, 1.5]

    def prob(self, word: str, history: tuple[str, ...]) -> float:
        if self.smoothing == "addk":
            return self._add_k(word, history)
        n = len(history) + 1
        table = self.adjusted[n - 1]
        extensions = {g[-1]: a for g, a in table.items() if g[:-1] == history}
        if not extensions:
            return self.prob(word, history[1:])
        d = self.discounts[n - 1]
        cut = {w: d[min(a, 3) - 1] for w, a in extensions.items()}
        total = sum(extensions.values())
        gamma = sum(cut.values()) / total
        lower = 1 / len(self.vocab) if n == 1 else self.prob(word, history[1:])
        own = (extensions[word] - cut[word]) / total if word in extensions else 0.0
        return own + gamma * lower

    def _add_k(self, word: str, history: tuple[str, ...]) -> float:
        n, k, size = len(history) + 1, self.k, len(self.vocab)
        extensions = {g[-1]: c for g, c in self.counts[n - 1].items() if g[:-1] == history}
        if not extensions:
            return self._add_k(word, history[1:])
        total = sum(extensions.values())
        if word in extensions:
            return (extensions[word] + k) / (total + k * size)
        if n == 1:
            return k / (total + k * size)
        left = k * (size - len(extensions)) / (total + k * size)
        lower_left = 1 - sum(self._add_k(w, history[1:]) for w in extensions)
        return left / lower_left * self._add_k(word, history[1:])

    def sentence_log10(self, words: list[str]) -> float:
        known = [w if w in self.vocab else "<unk>" for w in words] + ["</s>"]
        history: list[str] = ["<s>"]
        total = 0.0
        for w in known:
            context = tuple(history[max(0, len(history) - self.order + 1):]) if self.order > 1 else ()
            total += math.log10(self.prob(w, context))
            history.append(w)
        return total


def _random_corpus(seed: int, lines: int, words: str = "abcdefg") -> list[str]:
    rng = random.Random(seed)
    # a skewed distribution so that counts of 1, 2, 3 and 4+ all occur
    weights = [2.0 ** -i for i in range(len(words))]
    return [" ".join(rng.choices(words, weights, k=rng.randint(1, 7))) for _ in range(lines)]


@pytest.mark.parametrize("smoothing", ["kn", "absolute", "addk"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_sentence_scores_equal_the_formula_reference(tmp_path: Path, smoothing: str, order: int) -> None:
    train = _random_corpus(order, 60)
    held = _random_corpus(100 + order, 15, "abcdefghx")  # h and x never occur in training
    trained = _train(tmp_path, train, order=order, smoothing=smoothing)
    (tmp_path / "held.txt").write_text("\n".join(held) + "\n", encoding="utf-8")
    ours = score_files(trained, tmp_path / "held.txt").sentence_logprobs
    reference = Reference([s.split() for s in train], order, smoothing)
    expected = [reference.sentence_log10(s.split()) for s in held]
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    if smoothing != "addk":
        np.testing.assert_allclose(
            [trained.config["discounts"][str(n)][0] for n in range(1, order + 1)],
            [d[0] for d in reference.discounts], rtol=1e-12)


@pytest.mark.parametrize("smoothing", ["kn", "absolute", "addk"])
def test_every_context_is_a_probability_distribution(tmp_path: Path, smoothing: str) -> None:
    trained = _train(tmp_path, _random_corpus(7, 40), order=4, smoothing=smoothing)
    model, vocab = trained.model, trained.model.vocab
    histories = [[], ["a"], ["a", "a"], ["b", "a", "c"], ["g", "g", "g"], ["<unk>", "a"]]
    for history in histories:
        ids = [BOS_ID] + [vocab.id_of(w) if w in vocab else UNK_ID for w in history]
        assert (10.0 ** model.next_word_logprobs(ids)).sum() == pytest.approx(1.0, abs=1e-12), history


def test_add_one_unigrams_are_laplace(tmp_path: Path) -> None:
    trained = _train(tmp_path, ["a a b", "a"], order=1, smoothing="addk", k=1.0)
    # counts a 3, b 1, </s> 2 over 6 tokens; vocabulary <unk> </s> a b: (c + 1) / (6 + 4)
    for word, expected in (("a", 0.4), ("b", 0.2), ("</s>", 0.3), ("<unk>", 0.1)):
        assert _p(trained.model, [], word) == pytest.approx(expected, rel=1e-12)


def test_absolute_discounting_takes_a_fixed_discount(tmp_path: Path) -> None:
    trained = _train(tmp_path, ["a b", "a b", "b"], order=2, smoothing="absolute", discount=0.25)
    # bigrams after a: only "b" (count 2): p(b|a) = (2 - 0.25)/2 + 0.25/2 * p(b);
    # unigrams a 2, b 3, </s> 3 (total 8), 3 types: p(b) = (3 - 0.25)/8 + 0.75/8 / 4 (<unk> </s> a b)
    p_b = (3 - 0.25) / 8 + 0.75 / 8 / 4
    assert _p(trained.model, ["a"], "b") == pytest.approx((2 - 0.25) / 2 + 0.25 / 2 * p_b, rel=1e-12)
    assert trained.config["discounts"] == {"1": [0.25], "2": [0.25]}


def test_counts_equal_a_plain_counter(tmp_path: Path) -> None:
    lines = _random_corpus(3, 30)
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocab = Vocabulary()
    stream = read_stream([tmp_path / "c.txt"], WordSplitter(), vocab, grow=True)
    tables = count_ngrams(stream.ids, 3, len(vocab))
    expected: Counter = Counter()
    for line in lines:
        tokens = ["<s>", *line.split(), "</s>"]
        for n in (2, 3):
            expected.update(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    ids = [tables[0].keys[:, None]]
    got: Counter = Counter()
    for table in tables[1:]:
        ids.append(np.hstack([ids[-1][table.keys // len(vocab)], (table.keys % len(vocab))[:, None]]))
        got.update({tuple(vocab.words_of(row)): int(c) for row, c in zip(ids[-1], table.counts, strict=True)})
    assert got == expected
    assert int(tables[0].counts[vocab.id_of("</s>")]) == len(lines) == int(tables[0].counts[BOS_ID])
