"""The fast training path computes the same function as the straightforward one.

Fast: dense layers on real tokens only, attention in length buckets without re-padding to the
longest sentence, masked-LM projection only at masked positions. Straightforward: everything
on the padded (batch, seq) grid, the vocabulary projection at every position, and the loss
taken over the masked ones. Losses and every parameter's gradient must agree in float32.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import BertForPreTraining
from hanformer.models.common.layers import TokenLayout
from hanformer.models.common.unpad import AttentionBuckets, bucketed_attention, plan_buckets

VOCAB = 97


def _model() -> BertForPreTraining:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    return BertForPreTraining(cfg).train()


def _batch(lengths: list[int], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    lens = torch.tensor(lengths)
    real = torch.arange(width)[None, :] < lens[:, None]
    ids = torch.randint(5, VOCAB, (len(lengths), width), generator=g).masked_fill(~real, 0)
    types = ((torch.arange(width)[None, :] >= lens[:, None] // 2) & real).long()
    masked = real & (torch.rand(len(lengths), width, generator=g) < 0.3)
    masked[:, 1] = real[:, 1]  # at least one masked token per sentence of length > 1
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    nsp = torch.randint(0, 2, (len(lengths),), generator=g)
    return {"input_ids": ids, "attention_mask": real.long(), "token_type_ids": types, "labels": labels,
            "next_sentence_label": nsp}


def _straightforward_loss(model: BertForPreTraining, b: dict[str, torch.Tensor]) -> torch.Tensor:
    """Padded grid everywhere, logits at every position, loss over the masked ones."""
    model.bert.unpad = False
    try:
        out = model.bert(b["input_ids"], b["attention_mask"], b["token_type_ids"])
    finally:
        model.bert.unpad = True
    logits = model.mlm(out.last_hidden_state)  # (batch, seq, vocab)
    mlm = F.cross_entropy(logits.reshape(-1, VOCAB), b["labels"].reshape(-1), ignore_index=-100)
    return mlm + F.cross_entropy(model.nsp(out.pooler_output), b["next_sentence_label"])


def _loss_and_grads(model, fn):
    model.zero_grad(set_to_none=True)
    loss = fn()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lengths", [
    [5, 17, 32, 9, 2, 30, 11, 23],   # spread: several buckets
    [32, 32, 31],                    # nearly fixed length
    [7],                             # one sentence
    [3, 3, 3, 40, 3, 3],             # one long outlier
])
def test_fast_path_loss_and_gradients_equal_straightforward(lengths):
    model = _model()
    b = _batch(lengths, seed=sum(lengths))
    fast_loss, fast = _loss_and_grads(model, lambda: model(**b).loss)
    ref_loss, ref = _loss_and_grads(model, lambda: _straightforward_loss(model, b))
    assert torch.allclose(fast_loss, ref_loss, rtol=1e-5, atol=1e-6), (fast_loss, ref_loss)
    assert fast.keys() == ref.keys()
    for name in ref:
        scale = ref[name].abs().max().item() + 1e-6
        assert (fast[name] - ref[name]).abs().max().item() <= 1e-5 * max(1.0, scale), name


def test_bucketed_attention_equals_padded_attention_with_empty_rows():
    torch.manual_seed(1)
    lengths = [9, 0, 1, 16, 4, 16, 12]
    mask = (torch.arange(16)[None, :] < torch.tensor(lengths)[:, None]).long()
    layout = TokenLayout.from_mask(mask, max_buckets=3)
    heads, hidden = 2, 8
    qkv = torch.randn(layout.num_tokens, 3 * hidden, dtype=torch.float64, requires_grad=True)
    fast = bucketed_attention(qkv, layout.buckets, heads)
    grid = layout.pad(qkv).view(len(lengths), 16, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
    padded = F.scaled_dot_product_attention(grid[0], grid[1], grid[2], attn_mask=mask.bool()[:, None, None, :])
    slow = layout.unpad(padded.transpose(1, 2).reshape(len(lengths), 16, hidden))
    assert torch.allclose(fast, slow, atol=1e-12)
    weights = torch.randn_like(fast)
    g_fast, = torch.autograd.grad((fast * weights).sum(), qkv)
    g_slow, = torch.autograd.grad((slow * weights).sum(), qkv)
    assert torch.allclose(g_fast, g_slow, atol=1e-12)
    with torch.no_grad():  # the inference layout (gathered grids, no scatter) gives the same outputs
        assert torch.allclose(bucketed_attention(qkv, layout.buckets, heads), slow, atol=1e-12)


def test_bucket_plan_is_optimal_and_covers_every_nonempty_row():
    lengths = [5, 0, 17, 3, 3, 9, 12, 1]
    for k in (1, 2, 3):
        groups = plan_buckets(lengths, k)
        assert sorted(r for g in groups for r in g) == [r for r, n in enumerate(lengths) if n > 0]
        assert len(groups) <= k

        def cost(gs):
            return sum(len(g) * max(lengths[r] for r in g) ** 2 for g in gs)

        # Brute force over all cut points of the length-sorted rows.
        rows = sorted((r for r, n in enumerate(lengths) if n > 0), key=lambda r: -lengths[r])
        best = min(cost([rows[i:j] for i, j in zip((0, *cuts), (*cuts, len(rows)), strict=True)])
                   for m in range(k) for cuts in itertools.combinations(range(1, len(rows)), m))
        assert cost(groups) == best


def test_buckets_restore_packed_order():
    lengths = torch.tensor([4, 1, 6, 6, 2])
    buckets = AttentionBuckets.from_lengths(lengths, max_buckets=2)
    assert buckets.num_tokens == 19
    assert torch.equal(buckets.order[buckets.restore], torch.arange(19))
    assert sum(buckets.counts) == 19
