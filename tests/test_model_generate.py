"""`GPTForCausalLM.generate(...)` as transformers users call it: same arguments, same LongTensor of
prompt + new tokens, token for token what `GPT2LMHeadModel.generate` returns for the same weights."""

from __future__ import annotations

import pytest
import torch

from hanformer.errors import ConfigError, InputError
from hanformer.generation.config import GenerationConfig
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM

transformers = pytest.importorskip("transformers")

PAD, EOS = 0, 2


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    ours = GPTForCausalLM(GPTConfig(vocab_size=11, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                                    bos_token_id=1, eos_token_id=EOS, pad_token_id=PAD,
                                    initializer_range=0.3)).eval()  # peaky: EOS comes often
    d = tmp_path_factory.mktemp("gpt")
    ours.save_pretrained(d)
    return ours, transformers.GPT2LMHeadModel.from_pretrained(d).eval()


def left_padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(3, 11, (3, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    mask[2, :5] = 0
    return ids.masked_fill(mask == 0, PAD), mask


CASES = {
    "greedy": dict(max_new_tokens=12),
    "greedy-explicit-ids": dict(max_new_tokens=12, do_sample=False, eos_token_id=EOS, pad_token_id=PAD),
    "beam4": dict(max_new_tokens=12, num_beams=4),
    "beam3-return2-max-length": dict(max_length=16, num_beams=3, num_return_sequences=2, early_stopping=True),
    "eos-off": dict(max_new_tokens=8, eos_token_id=None),
    "pad-none-fills-with-eos": dict(max_new_tokens=12, pad_token_id=None),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_mask", [True, False], ids=["mask", "mask-inferred"])
def test_generate_equals_transformers_generate(models, case, with_mask):
    ours, hf = models
    ids, mask = left_padded_batch()
    settings = CASES[case]
    kwargs = {"attention_mask": mask} if with_mask else {}
    with torch.no_grad():
        expected = hf.generate(ids, **kwargs, **settings)
    got = ours.generate(ids, **kwargs, **settings)
    assert got.dtype == torch.long
    assert torch.equal(got, expected), (got, expected)
    assert torch.equal(got[:, :ids.shape[1]].unique(dim=0), ids.repeat_interleave(
        settings.get("num_return_sequences", 1), dim=0).unique(dim=0))  # the prompt comes back as given


def test_sampling_with_torch_seed_equals_transformers(models):
    ours, hf = models
    ids, mask = left_padded_batch()
    settings = dict(do_sample=True, max_new_tokens=10, top_k=5, top_p=0.8, temperature=0.7)
    torch.manual_seed(7)
    expected = hf.generate(ids, attention_mask=mask, **settings)
    torch.manual_seed(7)
    got = ours.generate(ids, attention_mask=mask, **settings)
    assert torch.equal(got, expected)
    # hanformer's own seed makes it reproducible without touching the global generator.
    a = ours.generate(ids, attention_mask=mask, seed=3, **settings)
    b = ours.generate(ids, attention_mask=mask, seed=3, **settings)
    assert torch.equal(a, b)


def test_a_generation_config_and_keyword_overrides_combine(models):
    ours, _ = models
    ids, mask = left_padded_batch()
    base = GenerationConfig(max_new_tokens=3, num_beams=2)
    short = ours.generate(ids, attention_mask=mask, generation_config=base)
    assert torch.equal(short, ours.generate(ids, attention_mask=mask, max_new_tokens=3, num_beams=2))
    longer = ours.generate(ids, attention_mask=mask, generation_config=base, max_new_tokens=12)
    assert torch.equal(longer, ours.generate(ids, attention_mask=mask, max_new_tokens=12, num_beams=2))
    assert short.shape[1] <= 6 + 3 < longer.shape[1]


def test_the_default_length_stops_at_the_context_window(models):
    ours, _ = models
    ids, _ = left_padded_batch()
    # 50 new tokens by default, but only 32 - 6 fit; asking for 30 explicitly is an error (below).
    assert ours.generate(ids[:1, :], eos_token_id=None).shape == (1, 32)


def test_generate_leaves_the_training_mode_as_it_was(models):
    ours, _ = models
    ids, mask = left_padded_batch()
    ours.train()
    try:
        first = ours.generate(ids, attention_mask=mask, max_new_tokens=5)
        again = ours.generate(ids, attention_mask=mask, max_new_tokens=5)
        assert torch.equal(first, again) and ours.training  # dropout was off while generating
    finally:
        ours.eval()


def test_bad_arguments_are_one_line_errors(models):
    ours, _ = models
    ids, mask = left_padded_batch()
    with pytest.raises(ConfigError, match=r"generate: unknown key 'max_tokens' \(did you mean 'max_new_tokens'\?\)"):
        ours.generate(ids, max_tokens=5)
    with pytest.raises(InputError, match=r"a prompt of 6 tokens \+ max_new_tokens 30 exceeds this model's context "
                                         r"window of 32 tokens \(n_positions\); lower max_new_tokens to 26"):
        ours.generate(ids, max_new_tokens=30)
    with pytest.raises(InputError, match=r"the prompt of 32 tokens leaves no room in this model's context window "
                                         r"of 32 tokens \(n_positions\); keep its last 31 tokens or fewer"):
        ours.generate(torch.full((1, 32), 3))
    with pytest.raises(ConfigError, match=r"max_length = 6 leaves no room after the prompt of 6 tokens"):
        ours.generate(ids, max_length=6)
    with pytest.raises(InputError, match=r"input_ids must be a \(batch, length\) tensor of token ids, got \(6,\)"):
        ours.generate(ids[0])
    with pytest.raises(InputError, match=r"token id 11 is outside the vocabulary \(vocab_size 11\)"):
        ours.generate(torch.tensor([[3, 11]]))
    with pytest.raises(InputError, match=r"attention_mask has shape \(3, 5\) but input_ids \(3, 6\)"):
        ours.generate(ids, attention_mask=mask[:, 1:], max_new_tokens=5)
    with pytest.raises(ConfigError, match=r"stop_strings need the tokenizer"):
        ours.generate(ids, stop_strings=["."], max_new_tokens=5)
    with pytest.raises(ConfigError, match=r"num_beams = 2 with do_sample = true"):
        ours.generate(ids, num_beams=2, do_sample=True, max_new_tokens=5)
