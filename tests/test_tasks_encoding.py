"""Label alignment to word pieces, unit tags back from piece tags, QA windows and the n-best
search: gold spans must come back exactly through the character offsets."""

from __future__ import annotations

import numpy as np
import pytest

from hanformer.tasks.encoding import (
    IGNORE,
    PieceEncoder,
    collate,
    encode_text_examples,
    encode_token_examples,
    truncate_pair,
    unit_tags,
)
from hanformer.tasks.examples import Answer, QAExample, TextExample, TokenExample
from hanformer.tasks.qa import QASettings, encode_qa_examples, postprocess
from hanformer.tasks.registry import CONLL_TAGS, KLUE_NER_TAGS, get_task


@pytest.fixture(scope="module")
def encoder(minilm_dir):
    from tokenizers import Tokenizer as Engine

    # The engine of the real all-MiniLM-L6-v2 tokenizer (its tokenizer.json pads and truncates
    # to 128: the encoder must switch that off).
    return PieceEncoder(Engine.from_file(str(minilm_dir / "tokenizer.json")))


L2I = {t: i for i, t in enumerate(CONLL_TAGS)}


def test_first_and_all_piece_alignment(encoder):
    ex = TokenExample.from_units(["Johanssonite", "visited", "Washington"], ["B-PER", "O", "B-LOC"], " ")
    first = encode_token_examples(encoder, [ex], 64, L2I, "first")[0]
    all_ = encode_token_examples(encoder, [ex], 64, L2I, "all")[0]
    units = first["piece_units"]
    assert units[0] == -1 and units[-1] == -1  # [CLS], [SEP]
    n_name = units.count(0)
    assert n_name > 1  # the made-up name is split into several pieces
    name_labels = [lab for u, lab in zip(units, first["labels"], strict=False) if u == 0]
    assert name_labels == [L2I["B-PER"]] + [IGNORE] * (n_name - 1)
    name_labels_all = [lab for u, lab in zip(units, all_["labels"], strict=False) if u == 0]
    assert name_labels_all == [L2I["B-PER"]] + [L2I["I-PER"]] * (n_name - 1)
    assert first["labels"][0] == first["labels"][-1] == IGNORE
    # piece predictions -> word tags -> the gold tags again
    piece_tags = [CONLL_TAGS[lab] if lab != IGNORE else "O" for lab in all_["labels"]]
    assert unit_tags(units, first["piece_last_units"], piece_tags, 3) == ex.tags


def test_character_units_get_tags_of_the_piece_covering_them(encoder):
    # KLUE-style: one unit per character; "Seoul" is one piece covering five units.
    text = "Seoul is big"
    tags = ["B-LC", "I-LC", "I-LC", "I-LC", "I-LC", "O", "O", "O", "O", "O", "O", "O"]
    ex = TokenExample.from_units(list(text), tags, "")
    f = encode_token_examples(encoder, [ex], 64, {t: i for i, t in enumerate(KLUE_NER_TAGS)})[0]
    labelled = [KLUE_NER_TAGS[lab] for lab in f["labels"] if lab != IGNORE]
    assert labelled == ["B-LC", "O", "O"]  # Seoul, is, big
    assert unit_tags(f["piece_units"], f["piece_last_units"], ["O", "B-LC", "O", "O", "O"], len(text)) == tags
    # a space inside an entity continues it; a space after one does not
    two = TokenExample.from_units(list("New York"), None, "")
    g = encode_token_examples(encoder, [two], 64, None)[0]
    assert unit_tags(g["piece_units"], g["piece_last_units"], ["O", "B-LC", "I-LC", "O"], 8) == \
        ["B-LC", "I-LC", "I-LC", "I-LC", "I-LC", "I-LC", "I-LC", "I-LC"]


def test_truncation_longest_first_and_collate(encoder):
    a, b = truncate_pair(list(range(10)), list(range(3)), 10)
    assert (len(a), len(b)) == (4, 3)
    feats = encode_text_examples(encoder, [TextExample("a short one", None, "1"),
                                           TextExample("a much longer sentence than that " * 20, None, "0")],
                                 16, {"0": 0, "1": 1})
    assert len(feats[1]["input_ids"]) == 16 and feats[1]["input_ids"][-1] == encoder.sep_id
    batch = collate(feats, encoder.pad_id)
    assert batch["input_ids"].shape == (2, 16) and batch["labels"].tolist() == [1, 0]
    assert batch["attention_mask"][0].sum() == len(feats[0]["input_ids"])
    pair = encode_text_examples(encoder, [TextExample("premise here", "hypothesis", 2.5)], 32, None)[0]
    assert pair["labels"] == 2.5 and pair["token_type_ids"][-1] == 1 and pair["token_type_ids"][0] == 0


def _oracle_logits(features):
    starts, ends = [], []
    for f in features:
        s, e = np.zeros(len(f["input_ids"])), np.zeros(len(f["input_ids"]))
        if f["start_positions"]:
            s[f["start_positions"]] = 10.0
            e[f["end_positions"]] = 10.0
        starts.append(s)
        ends.append(e)
    return starts, ends


def test_qa_windows_and_postprocess_recover_gold_spans(encoder):
    context = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    answers = ["topic 3", "Sentence number 41", "topic 59"]
    examples = [QAExample(str(i), f"Where is {a}?", context, [Answer(a, context.index(a))])
                for i, a in enumerate(answers)]
    settings = QASettings(max_length=64, doc_stride=20, max_query_length=16, max_answer_length=10, n_best=5)
    features = encode_qa_examples(encoder, examples, settings)
    per_example = [sum(f["example_index"] == i for f in features) for i in range(3)]
    assert min(per_example) > 5  # the long context is split into many windows
    assert all(len(f["input_ids"]) <= 64 for f in features)
    # each answer lies inside at least one window, marked by its piece positions
    assert all(any(f["start_positions"] > 0 for f in features if f["example_index"] == i) for i in range(3))
    starts, ends = _oracle_logits(features)
    preds = postprocess(examples, features, starts, ends, settings)
    for ex, nbest in zip(examples, preds, strict=False):
        best = nbest[0]
        assert best.text == ex.answers[0].text
        assert (best.start, best.end) == (ex.answers[0].start, ex.answers[0].end)
        assert 0 < best.probability <= 1


def test_qa_max_answer_length_and_order(encoder):
    ex = QAExample("q", "Who?", "Alice met Bob and Carol yesterday.", [])
    f = encode_qa_examples(encoder, [ex], QASettings(max_length=64), with_labels=False)
    assert len(f) == 1 and "start_positions" not in f[0]
    n = len(f[0]["input_ids"])
    ctx = [i for i, o in enumerate(f[0]["offsets"]) if o is not None]
    s, e = np.zeros(n), np.zeros(n)
    s[ctx[0]], e[ctx[-1]] = 5.0, 5.0  # best pair spans the whole context ...
    s[ctx[2]], e[ctx[2]] = 4.0, 4.0  # ... second best is one word
    long = postprocess([ex], f, [s], [e], QASettings(max_answer_length=30))[0]
    assert long[0].text == "Alice met Bob and Carol yesterday."
    # "Alice met Bob" (5 + 4) wins while three pieces are allowed, "Bob" (4 + 4) with two
    assert postprocess([ex], f, [s], [e], QASettings(max_answer_length=3))[0][0].text == "Alice met Bob"
    short = postprocess([ex], f, [s], [e], QASettings(max_answer_length=2))[0]
    assert short[0].text == "Bob" and short[0].score == 8.0
    # an end before its start is never chosen, however high both logits are
    s, e = np.full(n, -10.0), np.full(n, -10.0)
    s[ctx[4]], e[ctx[1]] = 9.0, 9.0
    s[ctx[2]], e[ctx[2]] = 4.0, 4.0
    best = postprocess([ex], f, [s], [e], QASettings())[0][0]
    assert (best.text, best.start, best.end) == ("Bob", 10, 13)


def test_qa_round_trip_on_korquad(shared_data, encoder):
    """On real KorQuAD data most gold answers are exact piece spans; the others differ only by
    a particle glued onto the last word (the pieces of this English vocabulary are coarse)."""
    spec = get_task("korquad")
    examples = spec.read(shared_data / spec.data).examples[:300]
    settings = QASettings(max_length=256, doc_stride=96, max_answer_length=200)
    features = encode_qa_examples(encoder, examples, settings)
    starts, ends = _oracle_logits(features)
    preds = postprocess(examples, features, starts, ends, settings)
    exact = [p[0].text == e.answers[0].text for p, e in zip(preds, examples, strict=False)]
    assert np.mean(exact) > 0.85
    for p, e in zip(preds, examples, strict=False):  # every prediction contains its gold answer
        assert e.answers[0].text in p[0].text
