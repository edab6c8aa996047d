"""The model itself: config checks, padding invariance, unpadded == padded, masked-only MLM, blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hanformer.errors import ConfigError, InputError
from hanformer.models.bert.config import PRESETS, BertConfig
from hanformer.models.bert.heads import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
)
from hanformer.models.bert.model import BertModel
from hanformer.models.common.layers import (
    KVCache,
    MultiHeadAttention,
    TokenLayout,
    TransformerBlock,
    causal_mask,
)

VOCAB = 53


def tiny(**overrides) -> BertConfig:
    values = dict(vocab_size=VOCAB, max_position_embeddings=32, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
    return BertConfig.preset("tiny", **{**values, **overrides})


def test_presets_have_the_published_shapes():
    expected = {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "medium": (8, 512),
                "base": (12, 768), "large": (24, 1024)}
    for name, (layers, hidden) in expected.items():
        cfg = BertConfig.preset(name)
        assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size) == (layers, hidden, 4 * hidden)
        assert cfg.hidden_size % cfg.num_attention_heads == 0
    assert set(PRESETS) == set(expected)
    base = BertModel(BertConfig.preset("base"))
    assert abs(base.num_parameters() - 109_482_240) == 0  # bert-base-uncased


def test_config_errors_name_the_field_and_fix():
    with pytest.raises(ConfigError, match="hidden_size 100 is not divisible by num_attention_heads 3"):
        BertConfig(hidden_size=100, num_attention_heads=3)
    with pytest.raises(ConfigError, match="unknown model preset 'huge'"):
        BertConfig.preset("huge")
    with pytest.raises(ConfigError, match="unknown key 'hidden_sise'.*did you mean 'hidden_size'"):
        BertConfig.preset("tiny", hidden_sise=3)
    with pytest.raises(ConfigError, match="relative positions"):
        BertConfig.from_dict({"position_embedding_type": "relative_key"})


def test_config_json_round_trip_keeps_labels(tmp_path):
    cfg = tiny(id2label={0: "neg", 1: "pos", 2: "neutral"}, norm_placement="pre")
    cfg.save_pretrained(tmp_path)
    back = BertConfig.from_pretrained(tmp_path)
    assert back == cfg and back.num_labels == 3


def test_inputs_that_cannot_work_are_one_line_errors():
    model = BertModel(tiny()).eval()
    with pytest.raises(InputError, match="token id 53 is outside the vocabulary \\(vocab_size 53\\)"):
        model(torch.tensor([[1, 53]]))
    with pytest.raises(InputError, match="token id -1"):
        model(torch.tensor([[1, -1]]))
    with pytest.raises(InputError, match=r"sequence length 40 exceeds this model's limit of 32 positions.*"
                                         r"truncation=True, max_length=32"):
        model(torch.ones(1, 40, dtype=torch.long))
    with pytest.raises(InputError, match="only 2 segment types"):
        model(torch.ones(1, 4, dtype=torch.long), token_type_ids=torch.full((1, 4), 2))
    with pytest.raises(InputError, match="must have shape \\(batch, seq\\)"):
        model(torch.ones(4, dtype=torch.long))


@pytest.mark.parametrize("variant", [{}, {"norm_placement": "pre"}, {"position_embedding_type": "sinusoidal"}],
                         ids=["post-LN", "pre-LN", "sinusoidal"])
def test_padding_invariance(variant):
    """A sentence's outputs do not depend on how much padding its batch has."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny(**variant)).eval()
    sentence = torch.randint(1, VOCAB, (1, 7))
    with torch.no_grad():
        alone = model.bert(sentence)
        for pad in (1, 9, 20):
            ids = torch.cat([sentence, torch.zeros(1, pad, dtype=torch.long)], 1)
            other = torch.randint(1, VOCAB, (1, 7 + pad))
            batch = torch.cat([ids, other])
            mask = torch.cat([torch.cat([torch.ones(1, 7), torch.zeros(1, pad)], 1), torch.ones(1, 7 + pad)]).long()
            for unpad in (True, False):
                model.bert.unpad = unpad
                out = model.bert(batch, mask)
                assert (out.last_hidden_state[0, :7] - alone.last_hidden_state[0]).abs().max() <= 1e-5
                assert (out.pooler_output[0] - alone.pooler_output[0]).abs().max() <= 1e-5
    model.bert.unpad = True


def test_unpadded_training_step_equals_padded():
    """Skipping padding changes neither the loss nor any gradient."""
    torch.manual_seed(0)
    model = BertForPreTraining(tiny())
    ids = torch.randint(1, VOCAB, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    mask[2, 9:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 2], labels[2, 8] = 4, 9, 11
    nsp = torch.tensor([0, 1, 0])
    results = []
    for unpad in (True, False):
        model.bert.unpad = unpad
        model.zero_grad()
        loss = model(ids, mask, labels=labels, next_sentence_label=nsp).loss
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (l1, g1), (l2, g2) = results
    assert abs(l1 - l2) <= 1e-5
    for name in g1:
        assert (g1[name] - g2[name]).abs().max() <= 1e-5, name


def test_masked_lm_projects_only_masked_positions_with_the_same_loss():
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny()).eval()
    ids = torch.randint(1, VOCAB, (2, 10))
    labels = torch.full_like(ids, -100)
    labels[0, 1], labels[1, 4], labels[1, 7] = 3, 5, 8
    with torch.no_grad():
        out = model(ids, labels=labels)
        full = model(ids).logits
    assert out.logits.shape == (3, VOCAB)
    assert full.shape == (2, 10, VOCAB)
    selected = labels != -100
    assert torch.allclose(out.logits, full[selected], atol=1e-6)
    assert abs(out.loss.item() - F.cross_entropy(full[selected], labels[selected]).item()) <= 1e-6
    # Nothing masked: a zero loss, not NaN, still differentiable.
    model.train()
    empty = model(ids, labels=torch.full_like(ids, -100)).loss
    assert empty.item() == 0.0 and empty.requires_grad


def test_decoder_is_tied_to_word_embeddings():
    model = BertForPreTraining(tiny())
    assert model.mlm.decoder_weight is model.bert.embeddings.word_embeddings.weight
    assert not any("decoder" in k for k in model.state_dict())


def test_sequence_classification_regression_and_question_answering_losses():
    torch.manual_seed(0)
    reg = BertForSequenceClassification(tiny(num_labels=1)).eval()
    ids = torch.randint(1, VOCAB, (2, 6))
    out = reg(ids, labels=torch.tensor([0.5, -0.5]))
    assert out.logits.shape == (2, 1)
    assert abs(out.loss.item() - F.mse_loss(out.logits.squeeze(), torch.tensor([0.5, -0.5])).item()) < 1e-6
    qa = BertForQuestionAnswering(tiny()).eval()
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    start, end = torch.tensor([2, 1]), torch.tensor([3, 2])
    with torch.no_grad():
        padded = qa(ids, mask, start_positions=start, end_positions=end).loss
        trimmed = (qa(ids[:1], mask[:1], start_positions=start[:1], end_positions=end[:1]).loss
                   + qa(ids[1:, :3], start_positions=start[1:], end_positions=end[1:]).loss) / 2
    assert abs(padded.item() - trimmed.item()) <= 1e-5  # padding is never a candidate answer


def test_mean_pooling_classifier_averages_real_tokens_only():
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny(num_labels=3, classifier_pooling="mean")).eval()
    ids = torch.randint(5, VOCAB, (2, 7))
    mask = torch.tensor([[1] * 7, [1, 1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        logits = model(ids, mask).logits
        hidden = model.bert(ids[1:, :4]).last_hidden_state
        alone = model.classifier(hidden.mean(1))
    assert torch.allclose(logits[1:], alone, atol=1e-5)  # padding neither counted nor attended
    assert model.bert.pooler is not None  # kept, so the checkpoint layout stays BERT's


def test_token_layout_round_trip():
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    layout = TokenLayout.from_mask(mask)
    x = torch.arange(6.0).view(2, 3, 1)
    packed = layout.unpad(x)
    assert packed.squeeze(1).tolist() == [0.0, 1.0, 4.0, 5.0]
    assert layout.pad(packed).squeeze(-1).tolist() == [[0.0, 1.0, 0.0], [0.0, 4.0, 5.0]]


def test_causal_attention_with_kv_cache_equals_full_pass():
    """The decoder hook: feeding tokens one by one through a cache gives the full causal result."""
    torch.manual_seed(0)
    block = TransformerBlock(32, 4, 64, dropout=0.0, attention_dropout=0.0, norm_placement="pre").eval()
    x = torch.randn(2, 6, 32)
    with torch.no_grad():
        full, _ = block(x, is_causal=True)
        cache = KVCache()
        steps = [block(x[:, :3], is_causal=True, cache=cache)[0]]  # a prompt, then one token at a time
        for t in range(3, 6):
            steps.append(block(x[:, t:t + 1], is_causal=True, cache=cache)[0])
        explicit, probs = block(x, is_causal=True, need_weights=True)
    assert len(cache) == 6
    assert (torch.cat(steps, 1) - full).abs().max() <= 1e-5
    assert (explicit - full).abs().max() <= 1e-5
    assert probs.triu(1).abs().max() == 0  # nothing attends to the future


def test_masks_broadcast_and_cross_attention():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, context_size=24).eval()
    x, context = torch.randn(2, 5, 16), torch.randn(2, 7, 24)
    key_mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])[:, None, None, :]
    with torch.no_grad():
        out, probs = attn(x, key_mask, context=context, need_weights=True)
        fast, _ = attn(x, key_mask, context=context)
        # The masked keys of row 1 do not matter.
        changed = context.clone()
        changed[1, 4:] = 100.0
        again, _ = attn(x, key_mask, context=changed)
    assert out.shape == (2, 5, 16) and probs.shape == (2, 2, 5, 7)
    assert (out - fast).abs().max() <= 1e-5
    assert probs[1, :, :, 4:].abs().max() == 0
    assert (again[1] - fast[1]).abs().max() <= 1e-5
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


def test_save_and_load_round_trip_for_variants(tmp_path):
    torch.manual_seed(0)
    for i, variant in enumerate([{"norm_placement": "pre"}, {"position_embedding_type": "sinusoidal"}]):
        model = BertForPreTraining(tiny(**variant)).eval()
        model.save_pretrained(tmp_path / str(i))
        back = BertForPreTraining.from_pretrained(tmp_path / str(i))
        ids = torch.randint(1, VOCAB, (2, 9))
        with torch.no_grad():
            assert torch.equal(model(ids).prediction_logits, back(ids).prediction_logits)
        assert back.config.norm_placement == model.config.norm_placement


def test_bfloat16_forward_runs_and_stays_close():
    torch.manual_seed(0)
    model = BertModel(tiny()).eval()
    ids = torch.randint(1, VOCAB, (2, 9))
    mask = torch.tensor([[1] * 9, [1] * 4 + [0] * 5])
    with torch.no_grad():
        ref = model(ids, mask).last_hidden_state
        low = model.to(torch.bfloat16)(ids, mask).last_hidden_state
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref)[mask.bool()].abs().max() < 0.1


def test_outputs_index_like_transformers_and_sinusoidal_table():
    from hanformer.models.bert.embeddings import sinusoidal_table

    model = BertForSequenceClassification(tiny()).eval()
    with torch.no_grad():
        out = model(torch.randint(1, VOCAB, (2, 5)), labels=torch.tensor([0, 1]))
    assert out[0] is out.loss and out[1] is out["logits"] and out.keys() == ["loss", "logits"]
    table = sinusoidal_table(4, 6)
    assert table[0].tolist() == [0.0, 1.0] * 3
    assert abs(table[1, 0].item() - torch.sin(torch.tensor(1.0)).item()) < 1e-6
    assert abs(table[3, 3].item() - torch.cos(torch.tensor(3 / 10000 ** (2 / 6))).item()) < 1e-6


def test_3d_and_4d_attention_masks_equal_the_padding_mask():
    torch.manual_seed(0)
    model = BertModel(tiny()).eval()
    ids = torch.randint(1, VOCAB, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    square = mask[:, None, :].expand(2, 6, 6)
    with torch.no_grad():
        ref = model(ids, mask).last_hidden_state
        for m in (square, square[:, None]):
            assert (model(ids, m).last_hidden_state - ref)[mask.bool()].abs().max() <= 1e-5
