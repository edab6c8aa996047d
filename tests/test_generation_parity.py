"""Decoding equals transformers' `generate` token for token, with the same weights and settings.

Our GPT is saved and loaded into transformers' GPT2LMHeadModel, so both libraries run the same
weights. A small vocabulary makes EOS frequent, so finished sequences, padding of finished rows
and the finished-beam bookkeeping are all exercised.
"""

from __future__ import annotations

import pytest
import torch

from hanformer.generation.config import GenerationConfig
from hanformer.generation.search import decode
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM

transformers = pytest.importorskip("transformers")

PAD, EOS = 0, 2


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def models(request, tmp_path_factory):
    torch.manual_seed(request.param)
    ours = GPTForCausalLM(GPTConfig(vocab_size=11, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                    bos_token_id=1, eos_token_id=EOS, pad_token_id=PAD,
                                    initializer_range=0.3)).eval()  # peaky: EOS comes often
    d = tmp_path_factory.mktemp("gpt")
    ours.save_pretrained(d)
    return ours, transformers.GPT2LMHeadModel.from_pretrained(d).eval()


def left_padded_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 11, (3, 6), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    mask[2, :5] = 0
    return ids.masked_fill(mask == 0, PAD), mask


CASES = {
    "greedy": dict(max_new_tokens=12),
    "greedy-no-repeat-3": dict(max_new_tokens=12, no_repeat_ngram_size=3),
    "greedy-repetition-penalty": dict(max_new_tokens=12, repetition_penalty=1.5),
    "beam4": dict(max_new_tokens=12, num_beams=4),
    "beam3-lp0.5-early": dict(max_new_tokens=12, num_beams=3, length_penalty=0.5, early_stopping=True),
    "beam4-never-return2": dict(max_new_tokens=10, num_beams=4, early_stopping="never", num_return_sequences=2),
    "beam2-lp2-no-repeat": dict(max_new_tokens=12, num_beams=2, length_penalty=2.0, no_repeat_ngram_size=2),
}


def hf_generate(hf, ids, mask, **settings):
    with torch.no_grad():
        return hf.generate(input_ids=ids, attention_mask=mask, pad_token_id=PAD, eos_token_id=EOS, **settings)


@pytest.mark.parametrize("case", CASES)
def test_deterministic_decoding_equals_transformers(models, case):
    ours, hf = models
    ids, mask = left_padded_batch()
    settings = CASES[case]
    expected = hf_generate(hf, ids, mask, **settings)
    for use_cache in (True, False):
        got = decode(ours, ids, mask, GenerationConfig(use_cache=use_cache, **settings),
                     eos_token_id=EOS, pad_token_id=PAD)
        assert torch.equal(got.sequences, expected), (case, use_cache)


@pytest.mark.parametrize("settings", [dict(top_k=5, top_p=0.8, temperature=0.7), dict(num_return_sequences=2)])
def test_sampling_with_a_seed_equals_transformers_with_that_seed(models, settings):
    ours, hf = models
    ids, mask = left_padded_batch(1)
    torch.manual_seed(123)
    expected = hf_generate(hf, ids, mask, do_sample=True, max_new_tokens=12, **settings)
    config = GenerationConfig(do_sample=True, max_new_tokens=12, seed=123, **settings)
    got = decode(ours, ids, mask, config, eos_token_id=EOS, pad_token_id=PAD).sequences
    assert torch.equal(got, expected)
    again = decode(ours, ids, mask, config, eos_token_id=EOS, pad_token_id=PAD).sequences
    assert torch.equal(got, again)


def test_a_padded_prompt_continues_exactly_as_it_does_alone(models):
    ours, _ = models
    ids, mask = left_padded_batch()
    config = GenerationConfig(max_new_tokens=8, eos_token_id=None)
    batch = decode(ours, ids, mask, config, eos_token_id=None, pad_token_id=PAD).sequences
    alone = decode(ours, ids[1:2, 2:], None, config, eos_token_id=None, pad_token_id=PAD).sequences
    assert torch.equal(batch[1, 2:], alone[0])


def test_streaming_callback_sees_every_token_in_order(models):
    ours, _ = models
    ids, mask = left_padded_batch()
    seen = []
    out = decode(ours, ids, mask, GenerationConfig(max_new_tokens=6), eos_token_id=None, pad_token_id=PAD,
                 on_step=lambda tokens, active: seen.append(tokens.clone()))
    assert torch.equal(torch.stack(seen, dim=1), out.sequences[:, out.prompt_length:])
