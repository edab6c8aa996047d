"""The n-gram language model in backoff (ARPA) form: scoring, perplexity and sampling.

The model is, per order, the sorted n-gram keys of `counts.NgramTable` with a log10
probability and a log10 backoff weight per key. Whatever estimator made it, the probability of
a word is the ARPA rule: the longest listed n-gram ending in the word gives its probability,
plus the backoff weights of the longer contexts that are listed. Scoring does this for every
position of a token stream at once, one binary search per order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hanformer.models.ngram.corpus import TokenStream
from hanformer.models.ngram.counts import extend_keys, extension_range, find_rows, sentence_depth
from hanformer.models.ngram.vocab import BOS_ID, EOS_ID, UNK_ID, Vocabulary


@dataclass
class Scores:
    """What KenLM's `query` reports for a text: log10 probabilities summed over every word and
    every `</s>`; OOV words (mapped to `<unk>`) are scored with `<unk>`'s probability, and the
    second perplexity leaves them out of both the sum and the count."""

    sentences: int
    words: int
    oov: int
    logprob: float  # log10, all tokens (OOVs included)
    oov_logprob: float  # log10 of the OOV tokens alone
    sentence_logprobs: np.ndarray  # log10 per sentence

    @property
    def tokens(self) -> int:
        """Scored tokens: the words and one `</s>` per sentence."""
        return self.words + self.sentences

    @property
    def perplexity(self) -> float:
        return 10.0 ** (-self.logprob / self.tokens)

    @property
    def perplexity_without_oov(self) -> float:
        return 10.0 ** (-(self.logprob - self.oov_logprob) / (self.tokens - self.oov))

    def summary(self) -> dict[str, float | int]:
        return {"sentences": self.sentences, "words": self.words, "oov": self.oov, "tokens": self.tokens,
                "log10_prob": self.logprob, "perplexity": self.perplexity,
                "perplexity_without_oov": self.perplexity_without_oov}


@dataclass
class NgramModel:
    vocab: Vocabulary
    keys: list[np.ndarray]  # per order, sorted int64 (see counts.NgramTable)
    logprob: list[np.ndarray]  # log10 p per key
    backoff: list[np.ndarray]  # log10 backoff weight per key (0: none)

    @property
    def order(self) -> int:
        return len(self.keys)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------------------ scoring
    def rows_along(self, ids: np.ndarray) -> list[np.ndarray]:
        """For each order k, the row of the k-gram ending at each position of `ids` (-1: not
        listed, or it would reach into the previous sentence)."""
        depth = sentence_depth(ids, self.order)
        rows = [ids.astype(np.int64)]
        for k in range(2, self.order + 1):
            found = find_rows(self.keys[k - 1], extend_keys(_shift(rows[-1]), ids, self.vocab_size))
            found[depth < k - 1] = -1
            rows.append(found)
        return rows

    def token_logprobs(self, ids: np.ndarray) -> np.ndarray:
        """log10 p of each token given its sentence so far (0 at the `<s>` positions)."""
        rows = self.rows_along(ids)
        longest = np.ones(len(ids), np.int64)
        for k in range(2, self.order + 1):
            longest[rows[k - 1] >= 0] = k
        out = np.zeros(len(ids))
        for k in range(1, self.order + 1):
            here = longest == k
            out[here] = self.logprob[k - 1][rows[k - 1][here]]
        for m in range(1, self.order):
            # The context of length m before each position, if listed, backs off when m >= longest.
            context = _shift(rows[m - 1])
            use = (context >= 0) & (longest <= m)
            out[use] += self.backoff[m - 1][context[use]]
        out[ids == BOS_ID] = 0.0
        return out

    def score(self, stream: TokenStream) -> Scores:
        per_token = self.token_logprobs(stream.ids)
        sentence = np.cumsum(stream.ids == BOS_ID) - 1
        per_sentence = np.bincount(sentence, weights=per_token, minlength=stream.sentences)
        oov = stream.ids == UNK_ID
        return Scores(stream.sentences, stream.words, int(oov.sum()), float(per_token.sum()),
                      float(per_token[oov].sum()), per_sentence)

    # -------------------------------------------------------------------- distributions
    def row_of(self, ids: Sequence[int]) -> int:
        """Row of the n-gram `ids` in its order's table, -1 if it is not listed."""
        row = int(ids[0])
        for k, word in enumerate(ids[1:], start=2):
            row = int(find_rows(self.keys[k - 1], np.array([row * self.vocab_size + int(word)]))[0])
            if row < 0:
                return -1
        return row

    def next_word_logprobs(self, history: Sequence[int]) -> np.ndarray:
        """log10 p(w | history) for every word w (history: the sentence so far, from `<s>`)."""
        out = self.logprob[0].copy()
        context = list(history[len(history) - self.order + 1:]) if self.order > 1 else []
        for m in range(1, len(context) + 1):
            row = self.row_of(context[-m:])
            if row < 0:
                continue  # an unlisted context has backoff weight 1 and no extensions
            out += self.backoff[m - 1][row]
            start, stop = extension_range(self.keys[m], row, self.vocab_size)
            out[self.keys[m][start:stop] % self.vocab_size] = self.logprob[m][start:stop]
        out[BOS_ID] = -math.inf
        return out

    def sample(self, rng: np.random.Generator, max_words: int = 100) -> list[int]:
        """One sentence drawn word by word from the model (without `<s>`/`</s>`), at most
        `max_words`. `<unk>` is left out (the rest renormalized): it stands for every unseen
        word at once, and a sample is meant to be read."""
        history = [BOS_ID]
        words: list[int] = []
        while len(words) < max_words:
            logprobs = self.next_word_logprobs(history)
            logprobs[UNK_ID] = -math.inf
            cumulative = np.cumsum(10.0 ** logprobs)
            word = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            word = min(word, self.vocab_size - 1)
            if word == EOS_ID:
                break
            words.append(word)
            history.append(word)
        return words


def _shift(rows: np.ndarray) -> np.ndarray:
    """rows[p - 1] at each position p (-1 at the first)."""
    out = np.empty_like(rows)
    out[0] = -1
    out[1:] = rows[:-1]
    return out
