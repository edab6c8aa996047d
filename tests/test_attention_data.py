"""Attention data and its aggregations (mean over heads, rollout) and the offline HTML file."""

from __future__ import annotations

import base64
import json
import re

import pytest
import torch

from hanformer.errors import ConfigError
from hanformer.visualization.attention import AttentionData, attention_rollout, mean_over_heads
from hanformer.visualization.html import render_attention_html, write_attention_html


def random_attention(layers=3, heads=4, seq=6, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(layers, heads, seq, seq, generator=g) * 2, dim=-1)


def sample_data(**kw) -> AttentionData:
    tokens = ["[CLS]", "나는", "학교", "##에", "갔다", "[SEP]"]
    return AttentionData(tokens=tokens, type_ids=[0] * 6, attentions=random_attention(**kw),
                         text="나는 학교에 갔다", special_mask=[True, False, False, False, False, True])


def test_rollout_matches_the_definition():
    att = random_attention(layers=3, heads=4, seq=5)
    eye = torch.eye(5, dtype=torch.float64)
    expected = eye
    out = attention_rollout(att)
    for layer in range(3):
        a = 0.5 * att[layer].double().mean(0) + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        expected = a @ expected
        torch.testing.assert_close(out[layer].double(), expected, rtol=1e-5, atol=1e-6)
    # Rows are distributions over the input tokens.
    torch.testing.assert_close(out.sum(-1), torch.ones(3, 5))


def test_rollout_without_residual_is_the_product_of_head_means():
    att = random_attention(layers=2, heads=3, seq=4)
    mean = mean_over_heads(att)
    torch.testing.assert_close(attention_rollout(att, residual=False)[1], mean[1] @ mean[0])


def test_identity_attention_rolls_out_to_identity():
    att = torch.eye(4).expand(2, 3, 4, 4).clone()
    torch.testing.assert_close(attention_rollout(att), torch.eye(4).expand(2, 4, 4))


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[layers, heads, seq, seq\]"):
        mean_over_heads(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="3 tokens but attention over 6 positions"):
        AttentionData(tokens=["a", "b", "c"], type_ids=[0, 0, 0], attentions=random_attention())


def test_packed_and_plain_dicts_hold_the_same_numbers():
    data = sample_data()
    plain = data.to_dict()
    packed = data.to_dict(packed=True)
    assert plain["tokens"] == packed["tokens"] == data.tokens
    assert (plain["num_layers"], plain["num_heads"]) == (3, 4)
    raw = base64.b64decode(packed["attentions"]["data"])
    assert packed["attentions"]["shape"] == [3, 4, 6, 6] and len(raw) == 3 * 4 * 6 * 6
    unpacked = torch.tensor(list(raw), dtype=torch.float32).view(3, 4, 6, 6) / 255
    torch.testing.assert_close(unpacked, data.attentions, atol=0.5 / 255 + 1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(plain["rollout"]), data.rollout(), atol=1e-4, rtol=0)
    json.dumps(plain), json.dumps(packed)  # both are JSON-ready


def embedded_payload(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="attention-data">(.*?)</script>', page, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


def test_html_is_self_contained_and_carries_the_data(tmp_path):
    data = sample_data()
    data.text = "</script><script>alert(1)</script> {{JS}}"
    path = write_attention_html(data, tmp_path / "views" / "a.html", layer=1, heads=[2, 0])
    page = path.read_text(encoding="utf-8")
    # Offline: nothing is fetched from anywhere.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
    assert "@import" not in page
    # The shared JS and CSS are inlined, and the user's text cannot break out of the data block.
    assert "HanformerAttention" in page and ".hfa-chip" in page
    assert page.count("</script>") == 3
    payload = embedded_payload(page)
    assert payload["options"] == {"layer": 1, "heads": [0, 2], "mode": "heads", "view": "head"}
    assert payload["data"]["text"] == data.text
    assert payload["data"]["tokens"] == data.tokens
    assert "{{JS}}" in page  # the user's text is shown as typed, not expanded


def test_html_defaults_to_the_last_layer_and_rejects_bad_choices():
    data = sample_data()
    assert embedded_payload(render_attention_html(data))["options"]["layer"] == 2
    assert embedded_payload(render_attention_html(data, layer=-1))["options"]["layer"] == 2
    with pytest.raises(ConfigError, match=r"--layer 3 is out of range: the model has 3 layers"):
        render_attention_html(data, layer=3)
    with pytest.raises(ConfigError, match=r"--heads 4,7 out of range: the model has 4 heads"):
        render_attention_html(data, heads=[1, 4, 7])


def test_notebooks_show_the_page_in_an_iframe():
    import html

    data = sample_data()
    shown = data._repr_html_()
    m = re.fullmatch(r'<iframe srcdoc="([^"]*)" style="[^"]*" sandbox="allow-scripts"></iframe>', shown)
    assert m, shown[:200]
    assert html.unescape(m.group(1)) == render_attention_html(data)
