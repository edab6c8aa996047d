"""Streamed text: the pieces handed to the callback always add up to the returned text, even
when decoding rewrites its tail (WordPiece joins, the clean-up of spaces before punctuation)."""

from __future__ import annotations

import random

import pytest
import torch

from hanformer import Tokenizer
from hanformer.generation.api import _Continuation, _cut_at_stop, _TextStream


@pytest.fixture(scope="module")
def tok(minilm_dir):
    return Tokenizer.from_pretrained(minilm_dir)


def _stream(tok, tokens: list[str], stop_strings=()) -> tuple[list[str], str]:
    ids = tok.convert_tokens_to_ids(tokens)
    continuation = _Continuation(tok, [tok.convert_tokens_to_ids(["hello"])])
    pieces: list[str] = []
    stream = _TextStream(continuation, 1, 1, list(stop_strings), lambda row, text: pieces.append(text), eos_token_id=None)
    for i in ids:
        stream.on_step(torch.tensor([i]), torch.tensor([True]))
    stream.finish()
    final, _ = _cut_at_stop(continuation(0, ids), list(stop_strings))
    return pieces, final


def test_a_rewritten_tail_is_held_back_until_stable(tok):
    # "i '" becomes "i's" once "s" follows: the space before the quote disappears.
    assert tok.decode(tok.convert_tokens_to_ids(["i", "'"])) == "i '"
    pieces, final = _stream(tok, ["i", "'", "s", "book", "is", "here", "."])
    assert final == " i's book is here."
    assert "".join(pieces) == final
    assert len(pieces) > 1  # it still streams


TRICKY = ["i", "'", "s", "m", "ve", "re", "don", "do", "not", "n", "##t", "##s", ".", ",", "!", "?", "book",
          "the", "a", "한", "##국", "어"]


@pytest.mark.parametrize("seed", range(40))
def test_random_token_runs_stream_exactly_the_returned_text(tok, seed):
    rng = random.Random(seed)
    tokens = [rng.choice(TRICKY) for _ in range(rng.randint(1, 25))]
    stops = [rng.choice(["' s", "not", ". the"])] if seed % 2 else []
    pieces, final = _stream(tok, tokens, stops)
    assert "".join(pieces) == final, tokens
