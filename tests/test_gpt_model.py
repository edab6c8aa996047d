"""GPT: numerical parity with transformers' GPT-2, checkpoint layout both ways, KV cache, bad input."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from hanformer.errors import CheckpointError, ConfigError, InputError
from hanformer.models.common.layers import KVCache, StaticKVCache, TransposedWeight
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM, GPTModel

transformers = pytest.importorskip("transformers")


def tiny_config(**overrides) -> GPTConfig:
    values = dict(vocab_size=101, n_positions=48, n_embd=32, n_layer=3, n_head=4,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0)
    values.update(overrides)
    return GPTConfig(**values)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Our random GPT and transformers' GPT2LMHeadModel loaded from what we saved."""
    torch.manual_seed(0)
    ours = GPTForCausalLM(tiny_config()).eval()
    d = tmp_path_factory.mktemp("gpt")
    ours.save_pretrained(d)
    hf, info = transformers.GPT2LMHeadModel.from_pretrained(d, output_loading_info=True)
    return ours, hf.eval(), info, d


def test_saved_checkpoint_loads_into_transformers_without_missing_or_unexpected_keys(pair):
    _, _, info, d = pair
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert info["mismatched_keys"] == set()
    config = json.loads((d / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]


def test_logits_and_loss_equal_transformers(pair):
    ours, hf, _, _ = pair
    ids = torch.randint(3, 101, (2, 17))
    with torch.no_grad():
        a = ours(ids, labels=ids)
        b = hf(ids, labels=ids)
    assert (a.logits - b.logits).abs().max() <= 1e-5
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5


def test_left_padded_logits_equal_transformers_and_unpadded(pair):
    ours, hf, _, _ = pair
    ids = torch.randint(3, 101, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    mask[2, :11] = 0  # a single real token
    ids = ids.masked_fill(mask == 0, 0)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, position_ids=positions).logits
        b = hf(ids, attention_mask=mask, position_ids=positions).logits
        alone = ours(ids[1:2, 4:]).logits
    assert not a.isnan().any()
    real = mask.bool()
    assert (a[real] - b[real]).abs().max() <= 1e-5
    assert (a[1, 4:] - alone[0]).abs().max() <= 1e-5


def test_transformers_checkpoint_loads_into_ours(tmp_path):
    torch.manual_seed(1)
    hf_config = transformers.GPT2Config(vocab_size=101, n_positions=48, n_embd=32, n_layer=2, n_head=4,
                                        bos_token_id=1, eos_token_id=2)
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    hf.save_pretrained(tmp_path / "lm")
    hf.transformer.save_pretrained(tmp_path / "bare")  # GPT2Model: names without "transformer."
    ids = torch.randint(0, 101, (2, 9))
    with torch.no_grad():
        ref = hf(ids).logits
        lm = GPTForCausalLM.from_pretrained(tmp_path / "lm")
        assert (lm(ids).logits - ref).abs().max() <= 1e-5
        from_bare = GPTForCausalLM.from_pretrained(tmp_path / "bare")
        assert (from_bare(ids).logits - ref).abs().max() <= 1e-5
        bare = GPTModel.from_pretrained(tmp_path / "lm")
        assert (bare(ids).last_hidden_state - hf.transformer(ids).last_hidden_state).abs().max() <= 1e-5


@pytest.mark.parametrize("cache_class", [KVCache, StaticKVCache])
def test_incremental_decoding_with_cache_equals_full_forward(pair, cache_class):
    ours, _, _, _ = pair
    ids = torch.randint(3, 101, (2, 10))
    cache = cache_class() if cache_class is KVCache else cache_class(16)
    with torch.no_grad():
        full = ours(ids).logits
        out = ours(ids[:, :6], past_key_values=cache, use_cache=True)
        steps = [out.logits]
        for t in range(6, 10):
            out = ours(ids[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True)
            steps.append(out.logits)
    assert len(cache) == 10
    assert (torch.cat(steps, dim=1) - full).abs().max() <= 1e-5


def test_presets_and_config_errors(tmp_path):
    assert GPTConfig.preset("gpt2-small").n_layer == 12 and GPTConfig.preset("gpt2-small").n_embd == 768
    assert GPTConfig.preset("tiny", vocab_size=500).vocab_size == 500
    with pytest.raises(ConfigError, match="unknown GPT preset 'huge'"):
        GPTConfig.preset("huge")
    with pytest.raises(ConfigError, match="n_embd 30 is not divisible by n_head 4"):
        tiny_config(n_embd=30)
    with pytest.raises(ConfigError, match="scale_attn_by_inverse_layer_idx = True is not supported"):
        GPTConfig.from_dict({"scale_attn_by_inverse_layer_idx": True})
    with pytest.raises(ConfigError, match="unknown key 'n_layers'"):
        GPTConfig.from_dict({"n_layers": 3})


def test_context_overflow_and_untied_head_are_one_line_errors(pair, tmp_path):
    ours, hf, _, _ = pair
    with pytest.raises(InputError, match="exceeds this model's context window of 48"):
        ours(torch.zeros(1, 49, dtype=torch.long))
    hf.lm_head.weight = torch.nn.Parameter(hf.lm_head.weight.detach().clone() + 1)
    hf.config.tie_word_embeddings = False
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in hf.state_dict().items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(tiny_config().to_dict()))
    with pytest.raises(CheckpointError, match="lm_head.weight differs from the token embeddings"):
        GPTForCausalLM.from_pretrained(tmp_path)


def test_load_model_and_inspect_dispatch_gpt_checkpoints(pair):
    from hanformer.models.checkpoint import inspect_checkpoint, load_model

    ours, _, _, d = pair
    assert isinstance(load_model(d), GPTForCausalLM)
    info = inspect_checkpoint(d)
    assert info["architectures"] == ["GPT2LMHeadModel"] and info["layers"] == 3 and info["hidden_size"] == 32
    assert info["parameters"] == ours.num_parameters()
    assert info["heads"] == ["causal LM (tied to word embeddings)"]


def _next_token_logits(model, ids, grad: bool):
    """Logits of the last token of `ids` as a decoding step (prompt through the cache first).
    With autograd on, every product uses the ordinary weights; in inference mode a one-row step
    uses the decode-time (in, out) weight copies."""
    cache = StaticKVCache(ids.shape[1])
    context = torch.enable_grad() if grad else torch.inference_mode()
    with context:
        model(ids[:, :-1], past_key_values=cache, use_cache=True)
        return model(ids[:, -1:], past_key_values=cache, use_cache=True).logits.detach().clone()


def _copies(model):
    """The decode-time copies a model holds right now."""
    return [m._copy for m in model.modules() if isinstance(m, TransposedWeight) and m._copy is not None]


def test_decode_step_with_weight_copies_equals_plain_step_and_follows_weight_updates():
    torch.manual_seed(0)
    # 512 wide: smaller weights stay in the CPU caches and never use the copies.
    model = GPTForCausalLM(tiny_config(n_layer=2, n_embd=512)).eval()
    ids = torch.randint(3, 101, (1, 9))
    assert not _copies(model)
    plain = _next_token_logits(model, ids, grad=True)
    assert not _copies(model)  # a step that may need gradients never makes copies
    decoded = _next_token_logits(model, ids, grad=False)
    # Q/K/V, attention output and FFN up-projection of each layer, plus the tied output layer.
    assert len(_copies(model)) == 3 * 2 + 1
    assert (decoded - plain).abs().max() <= 1e-5
    assert not any("transposed" in k or "decode_head" in k for k in model.state_dict())

    # In-place updates (an optimizer step, load_state_dict) make the next step use the new weights.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    plain = _next_token_logits(model, ids, grad=True)
    assert (_next_token_logits(model, ids, grad=False) - plain).abs().max() <= 1e-5
    other = GPTForCausalLM(tiny_config(n_layer=2, n_embd=512)).eval()
    model.load_state_dict(other.state_dict())
    expected = _next_token_logits(other, ids, grad=True)
    assert (_next_token_logits(model, ids, grad=False) - expected).abs().max() <= 1e-5

    # Training mode and deep copies hold no copies; they come back on the next decoding step.
    assert not _copies(copy.deepcopy(model))
    model.train()
    assert not _copies(model)
    model.eval()
    _next_token_logits(model, ids, grad=False)
    assert len(_copies(model)) == 7
