"""`hanformer attention` end to end, and attention parity with transformers on a real checkpoint."""

from __future__ import annotations

import base64
import json
import re

import pytest
import torch

from _tiny_checkpoints import make_checkpoint, make_tokenizer
from hanformer.cli.main import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tokenizer = make_tokenizer(tmp_path_factory.mktemp("tok"))
    return make_checkpoint(tmp_path_factory.mktemp("pre"), tokenizer, "BertForPreTraining", layers=2, heads=4)


def payload_of(path):
    html = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="attention-data">(.*?)</script>', html, re.S).group(1))


def test_cli_writes_the_views_of_the_models_attention(model_dir, tmp_path, capsys):
    from hanformer.models.checkpoint import load_model
    from hanformer.tokenization.tokenizer import Tokenizer
    from hanformer.visualization.attention import attention_data

    out = tmp_path / "views" / "a.html"
    assert main(["attention", "--model", str(model_dir), "--text", "나는 오늘 학교에 갔다.",
                 "--pair", "The cat sat.", "--out", str(out), "--mode", "rollout", "--view", "model"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    payload = payload_of(out)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    expected = attention_data(load_model(model_dir), tokenizer, "나는 오늘 학교에 갔다.", "The cat sat.")
    data = payload["data"]
    assert data["tokens"] == tokenizer.encode("나는 오늘 학교에 갔다.", pair="The cat sat.").tokens
    # Hangul syllables stay whole: no conjoining jamo in any token.
    assert not any("\u1100" <= ch <= "\u11ff" for tok in data["tokens"] for ch in tok)
    assert any("학" in tok for tok in data["tokens"])
    assert data["special_mask"][0] and data["special_mask"][-1] and not any(data["special_mask"][1:4])
    raw = torch.frombuffer(bytearray(base64.b64decode(data["attentions"]["data"])), dtype=torch.uint8)
    unpacked = raw.float().view(*data["attentions"]["shape"]) / 255
    torch.testing.assert_close(unpacked, expected.attentions, atol=0.5 / 255 + 1e-6, rtol=0)
    assert payload["options"] == {"layer": 1, "heads": None, "mode": "rollout", "view": "model"}


@pytest.mark.parametrize("args, message", [
    (["--text", "나는 학교에 갔다.", "--layer", "5"], "--layer 5 is out of range: the model has 2 layers"),
    (["--text", "나는 학교에 갔다.", "--heads", "1,9"], "--heads 9 out of range: the model has 4 heads"),
    (["--text", "  "], "--text is empty"),
    (["--text", "나는 오늘 학교에 갔다. " * 10, "--max-length", "16"], "more than max_length=16"),
    (["--text", "a", "--mode", "max"], "invalid choice"),
])
def test_cli_errors_are_one_line(model_dir, tmp_path, capsys, args, message):
    try:
        code = main(["attention", "--model", str(model_dir), "--out", str(tmp_path / "a.html"), *args])
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "a.html").exists()


@pytest.mark.slow
def test_attention_matches_transformers_on_minilm(minilm_dir):
    """Our attention probabilities for a real checkpoint equal transformers' (eager attention)."""
    transformers = pytest.importorskip("transformers")
    from hanformer.models.checkpoint import load_model
    from hanformer.tokenization.tokenizer import Tokenizer
    from hanformer.visualization.attention import attention_data

    tokenizer = Tokenizer.from_pretrained(minilm_dir)
    data = attention_data(load_model(minilm_dir), tokenizer, "The cat sat on the mat.", pair="It was happy.")
    reference = transformers.BertModel.from_pretrained(str(minilm_dir), attn_implementation="eager").eval()
    enc = tokenizer.encode("The cat sat on the mat.", pair="It was happy.")
    with torch.no_grad():
        out = reference(torch.tensor([enc.ids]), token_type_ids=torch.tensor([enc.type_ids]), output_attentions=True)
    expected = torch.stack([a[0] for a in out.attentions])
    assert data.attentions.shape == expected.shape == (6, 12, len(enc.ids), len(enc.ids))
    torch.testing.assert_close(data.attentions, expected, atol=1e-5, rtol=1e-4)
    assert data.tokens[:3] == ["[CLS]", "the", "cat"] and data.type_ids[-1] == 1
