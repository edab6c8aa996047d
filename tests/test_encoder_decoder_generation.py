"""Encoder–decoder decoding equals transformers' MarianMTModel.generate token for token.

The weights are a random MarianMTModel's, loaded into hanformer. A small vocabulary makes EOS
frequent (untied embeddings: tied random ones mostly repeat one token), so finished rows, their padding and the finished-beam bookkeeping
are all exercised; the sources differ in length, so padding of the source is too.
"""

from __future__ import annotations

import pytest
import torch

from hanformer.generation.config import GenerationConfig
from hanformer.generation.search import decode_encoder_decoder
from hanformer.models.checkpoint import load_model

transformers = pytest.importorskip("transformers")

VOCAB, PAD, EOS = 13, 12, 0


# Seeds whose random models end some rows early (EOS) and run others to the length limit.
@pytest.fixture(scope="module", params=[0, 5], ids=["seed0", "seed5"])
def models(request, tmp_path_factory):
    torch.manual_seed(request.param)
    config = transformers.MarianConfig(
        vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, max_position_embeddings=64,
        pad_token_id=PAD, decoder_start_token_id=PAD, eos_token_id=EOS, forced_eos_token_id=None,
        scale_embedding=True, init_std=0.1, share_encoder_decoder_embeddings=False, tie_word_embeddings=False)
    hf = transformers.MarianMTModel(config).eval()
    d = tmp_path_factory.mktemp("marian")
    hf.save_pretrained(d)
    return load_model(d), hf


def sources(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four right-padded sources of lengths 7, 4, 2 and 6, each ending with EOS."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, PAD, (4, 7), generator=g)
    mask = torch.zeros_like(ids)
    for row, length in enumerate((7, 4, 2, 6)):
        mask[row, :length] = 1
        ids[row, length - 1] = EOS
    return ids.masked_fill(mask == 0, PAD), mask


CASES = {
    "greedy": dict(max_new_tokens=12),
    "beam4": dict(max_new_tokens=12, num_beams=4),
    "beam4-lp0.6": dict(max_new_tokens=10, num_beams=4, length_penalty=0.6),
    "beam3-lp2-early": dict(max_new_tokens=12, num_beams=3, length_penalty=2.0, early_stopping=True),
    "beam4-never-nbest3": dict(max_new_tokens=9, num_beams=4, early_stopping="never", num_return_sequences=3),
    "beam2-no-repeat": dict(max_new_tokens=12, num_beams=2, no_repeat_ngram_size=2),
}


@pytest.mark.parametrize("case", CASES)
def test_decoding_equals_marian_generate(models, case):
    ours, hf = models
    ids, mask = sources()
    settings = CASES[case]
    with torch.no_grad():
        expected = hf.generate(input_ids=ids, attention_mask=mask, **settings)
    assert (expected == EOS).any(), "the case should see finished sequences"
    for use_cache in (True, False):
        got = decode_encoder_decoder(ours, ids, mask, GenerationConfig(use_cache=use_cache, **settings),
                                     decoder_start_token_id=PAD, eos_token_id=EOS, pad_token_id=PAD)
        assert torch.equal(got.sequences, expected), (case, use_cache)
    assert torch.equal(ours.generate(ids, mask, **settings), expected)


def test_a_padded_source_translates_as_it_does_alone(models):
    ours, _ = models
    ids, mask = sources(1)
    together = ours.generate(ids, mask, num_beams=3, max_new_tokens=8)
    for row in range(ids.shape[0]):
        length = int(mask[row].sum())
        alone = ours.generate(ids[row:row + 1, :length], num_beams=3, max_new_tokens=8)
        width = alone.shape[1]
        assert torch.equal(together[row, :width], alone[0])
        assert bool((together[row, width:] == PAD).all())


def test_cross_attention_keys_are_computed_once_per_source(models):
    ours, _ = models
    ids, mask = sources()
    calls = []
    cross = ours.model.decoder.layers[0].cross_attention
    handle = cross.key_value.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        ours.generate(ids, mask, num_beams=4, max_new_tokens=6)
    finally:
        handle.remove()
    assert calls == [ids.shape[0] * 4]  # one projection of the (beam-repeated) sources, at the first step
