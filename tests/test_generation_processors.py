"""Logits processors on known scores, and bad generation settings rejected in one line."""

from __future__ import annotations

import math

import pytest
import torch

from hanformer.errors import ConfigError
from hanformer.generation.config import GenerationConfig
from hanformer.generation.processors import (
    NoRepeatNGram,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
    build_processors,
)
from hanformer.utils.config import load_config

INF = float("inf")


def test_temperature_divides_scores():
    scores = torch.tensor([[2.0, -1.0, 0.5]])
    assert torch.allclose(Temperature(0.5)(None, scores), torch.tensor([[4.0, -2.0, 1.0]]))


def test_top_k_keeps_k_best_and_ties():
    scores = torch.tensor([[1.0, 3.0, 2.0, 3.0, 0.0]])
    assert TopK(2)(None, scores).tolist() == [[-INF, 3.0, -INF, 3.0, -INF]]
    # the k-th best (2.0) ties with nobody; k=3 keeps it
    assert TopK(3)(None, scores).tolist() == [[-INF, 3.0, 2.0, 3.0, -INF]]


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    scores = probs.log()
    # 0.5 < 0.7 so the 0.3 token is needed too; 0.5 + 0.3 = 0.8 >= 0.7
    kept = TopP(0.7)(None, scores)
    assert torch.isfinite(kept).tolist() == [[True, True, False, False]]
    assert torch.isfinite(TopP(0.5)(None, scores)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(TopP(1.0)(None, scores)).all()


def test_repetition_penalty_lowers_seen_tokens_both_signs_and_ignores_padding():
    scores = torch.tensor([[2.0, -2.0, 1.0, 4.0]])
    ids = torch.tensor([[3, 0, 1]])  # token 3 is left padding
    out = RepetitionPenalty(2.0, pad_lengths=torch.tensor([1]))(ids, scores)
    assert out.tolist() == [[1.0, -4.0, 1.0, 4.0]]


def test_no_repeat_ngram_bans_the_token_completing_a_seen_ngram():
    scores = torch.zeros(1, 6)
    ids = torch.tensor([[1, 2, 3, 1, 2]])  # "1 2" was followed by 3: ban 3
    out = NoRepeatNGram(3)(ids, scores)
    assert out[0].tolist() == [0, 0, 0, -INF, 0, 0]
    ids = torch.tensor([[1, 2, 1, 3, 1]])  # "1" was followed by 2 and by 3: ban both
    assert NoRepeatNGram(2)(ids, scores)[0].tolist() == [0, 0, -INF, -INF, 0, 0]


def test_processors_equal_transformers_on_random_scores():
    pytest.importorskip("transformers")
    from transformers.generation import logits_process as lp

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 50, generator=g) * 3
    ids = torch.randint(0, 50, (4, 12), generator=g)
    pairs = [
        (Temperature(0.7), lp.TemperatureLogitsWarper(0.7)),
        (TopK(7), lp.TopKLogitsWarper(7)),
        (TopP(0.9), lp.TopPLogitsWarper(0.9)),
        (RepetitionPenalty(1.3), lp.RepetitionPenaltyLogitsProcessor(1.3)),
        (NoRepeatNGram(2), lp.NoRepeatNGramLogitsProcessor(2)),
    ]
    for ours, theirs in pairs:
        assert torch.equal(ours(ids, scores.clone()), theirs(ids, scores.clone())), type(ours).__name__


def test_sampling_warpers_apply_only_when_sampling():
    greedy = build_processors(GenerationConfig(temperature=0.5, top_k=5, top_p=0.5))
    assert greedy == []
    sample = build_processors(GenerationConfig(do_sample=True, temperature=0.5, top_k=5, top_p=0.5,
                                               repetition_penalty=1.2))
    assert [type(p).__name__ for p in sample] == ["RepetitionPenalty", "Temperature", "TopK", "TopP"]


@pytest.mark.parametrize("settings, message", [
    (dict(num_beams=4, do_sample=True), "beam search with sampling is not supported"),
    (dict(do_sample=True, temperature=0.0), r"temperature = 0.0: must be > 0"),
    (dict(temperature=-1.0), r"temperature = -1.0: must be > 0"),
    (dict(top_p=0.0), r"top_p = 0.0: must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p = 1.5: must be in \(0, 1\]"),
    (dict(max_new_tokens=0), "max_new_tokens = 0: must be at least 1"),
    (dict(num_beams=2, num_return_sequences=3), "beam search can return at most num_beams"),
    (dict(num_return_sequences=2), "greedy decoding would repeat"),
    (dict(early_stopping="sometimes"), "early_stopping"),
    (dict(stop_strings=[""]), "empty string"),
    # Non-finite numbers passed the range checks (inf > 0) or made every score NaN.
    (dict(do_sample=True, temperature=math.inf), "temperature = inf: must be a finite number"),
    (dict(temperature=math.nan), "temperature = nan: must be a finite number"),
    (dict(top_p=math.nan), "top_p = nan: must be a finite number"),
    (dict(repetition_penalty=math.inf), "repetition_penalty = inf: must be a finite number"),
    (dict(num_beams=2, length_penalty=math.nan), "length_penalty = nan: must be a finite number"),
    (dict(top_k=-1), "top_k = -1: must be >= 0"),
    (dict(num_beams=0), "num_beams = 0: must be at least 1"),
    (dict(max_new_tokens=-5), "max_new_tokens = -5: must be at least 1"),
    (dict(eos_token_id=-1), "eos_token_id = -1: token ids are >= 0"),
    (dict(do_sample=True, seed=-1), r"seed = -1: must be a whole number from 0 to 2\*\*64 - 1"),
])
def test_bad_settings_are_one_line_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(GenerationConfig, settings, "generate.toml")
    assert "\n" not in str(e.value)


def test_non_finite_settings_from_the_command_line_are_refused():
    with pytest.raises(ConfigError, match="temperature = inf: must be a finite number"):
        load_config(GenerationConfig, {"do_sample": "true", "temperature": "inf"}, "command line")


def test_settings_from_toml_strings():
    config = load_config(GenerationConfig, {"early_stopping": "never", "num_beams": "4",
                                            "stop_strings": "\n\n,END"}, "cli")
    assert config.early_stopping == "never" and config.num_beams == 4
    assert config.stop_strings == ["\n\n", "END"] and config.strategy == "beam"
    assert math.isclose(load_config(GenerationConfig, {"top_p": "0.9"}).top_p, 0.9)


def test_distinct_n_and_repeated_ngram_rate_on_known_sequences():
    from hanformer.generation.diversity import distinct_n, repeated_ngram_rate

    generations = [[1, 2, 1, 2, 1], [3, 4]]
    assert distinct_n(generations, 1) == 4 / 7
    assert distinct_n(generations, 2) == 3 / 5  # (1,2) (2,1) (1,2) (2,1) (3,4)
    assert repeated_ngram_rate(generations, 2) == 2 / 5
    assert repeated_ngram_rate(generations, 3) == 1 / 3
    assert distinct_n([[5]], 2) == 0.0 and repeated_ngram_rate([], 2) == 0.0
