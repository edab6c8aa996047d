"""The cheaper CPU dropout and the attention that uses it: the masks drop at the asked rate in
every 16-bit slice, apply the same way forward and backward, repeat under a seed, and the
attention's math (masks, causality, scaling) equals torch's kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hanformer.models.common.dropout import Dropout, dropout, keep_mask
from hanformer.models.common.sdpa import scaled_dot_product_attention


def test_keep_rate_in_every_slice_of_the_draws() -> None:
    torch.manual_seed(0)
    keep = keep_mask((1 << 20,), 0.1, torch.device("cpu"))
    # Four decisions come from each 64-bit draw; a biased bit in any slice would show here.
    for lane in range(4):
        rate = keep[lane::4].float().mean().item()
        assert abs(rate - 0.9) < 5 * (0.9 * 0.1 / (1 << 18)) ** 0.5, (lane, rate)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_forward_and_backward_apply_one_mask(dtype: torch.dtype) -> None:
    x = torch.randn(64, 33, dtype=dtype, requires_grad=True)  # an odd size: the last draw is cut
    torch.manual_seed(3)
    y = dropout(x, 0.25)
    torch.manual_seed(3)
    keep = keep_mask(x.shape, 0.25, x.device)
    assert y.dtype == dtype
    torch.testing.assert_close(y, x.detach() * keep * (1 / 0.75), rtol=0, atol=0)
    grad = torch.randn_like(y)
    y.backward(grad)
    torch.testing.assert_close(x.grad, grad * keep * (1 / 0.75), rtol=0, atol=0)


def test_repeatable_under_a_seed_and_off_in_eval() -> None:
    layer = Dropout(0.1)
    x = torch.ones(1000)
    torch.manual_seed(7)
    a = layer(x)
    torch.manual_seed(7)
    assert torch.equal(a, layer(x))
    assert not torch.equal(a, layer(x))  # the generator moved on
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(dropout(x, 1.0), torch.zeros(1000))
    assert repr(layer) == repr(torch.nn.Dropout(0.1))


@pytest.mark.parametrize("case", ["bool mask", "causal", "causal, fewer queries", "additive mask"])
def test_attention_math_equals_torch_kernel(case: str) -> None:
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 3, 5 if "fewer" in case else 9, 8, generator=g)
    k, v = torch.randn(2, 3, 9, 8, generator=g), torch.randn(2, 3, 9, 8, generator=g)
    mask = None
    if case == "bool mask":
        mask = torch.rand(2, 1, 1, 9, generator=g) > 0.3
        mask[..., 0] = True  # no row may attend nothing
    elif case == "additive mask":
        mask = torch.randn(2, 1, 9, 9, generator=g)
    causal = case.startswith("causal")
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=0.3)
    # A drop probability under 1/131072 rounds to a mask that keeps everything, so the math path
    # runs with the same result as the kernel (up to the 1 / (1 - p) factor).
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=1e-7, is_causal=causal, scale=0.3)
    torch.testing.assert_close(out, expected * (1 / (1 - 1e-7)), rtol=1e-5, atol=1e-6)


def test_attention_dropout_drops_probabilities() -> None:
    q = k = v = torch.randn(1, 1, 4, 4)
    torch.manual_seed(5)
    out = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    torch.manual_seed(5)
    keep = keep_mask((1, 1, 4, 4), 0.5, q.device)
    probs = (q @ k.transpose(-1, -2) / 2).softmax(-1)
    torch.testing.assert_close(out, (probs * keep / 0.5) @ v)


@pytest.mark.parametrize("case", ["no mask", "bool mask", "additive mask", "bfloat16"])
def test_single_query_attention_equals_torch_kernel(case: str) -> None:
    """One query per row (a decoding step) takes the matmul path on CPU; same result as torch's."""
    g = torch.Generator().manual_seed(2)
    dtype = torch.bfloat16 if case == "bfloat16" else torch.float32
    q, k, v = (torch.randn(40, 4, n, 16, generator=g).to(dtype) for n in (1, 37, 37))
    mask = None
    if case == "bool mask":
        mask = torch.rand(40, 1, 1, 37, generator=g) > 0.3
        mask[..., 0] = True
    elif case == "additive mask":
        mask = torch.randn(40, 1, 1, 37, generator=g)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    tolerance = {"rtol": 2e-2, "atol": 2e-2} if dtype == torch.bfloat16 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(out, expected, **tolerance)
