"""`generate --output` and `embed --output`: results go to a file, written atomically, and say the
same as what the commands print."""

from __future__ import annotations

import json

import pytest

from _tiny_checkpoints import make_checkpoint, make_gpt_checkpoint, make_tokenizer
from hanformer.cli.main import main


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


def test_generate_writes_its_results_to_the_output_file(tokenizer, tmp_path, capsys):
    gpt = make_gpt_checkpoint(tmp_path / "gpt", tokenizer)
    args = ["generate", "--model", str(gpt), "--prompt", "서울은", "--prompt", "The cat", "--max-new-tokens", "4",
            "--json"]
    assert main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    out = tmp_path / "gen.jsonl"
    assert main([*args, "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"wrote 2 result(s) to {out}" in captured.err
    assert out.read_text(encoding="utf-8").splitlines() == printed  # greedy: the same text both times
    assert [json.loads(line)["prompt"] for line in printed] == ["서울은", "The cat"]


def test_embed_writes_json_to_the_output_file(tokenizer, tmp_path, capsys):
    bert = make_checkpoint(tmp_path / "bert", tokenizer, "BertModel")
    texts = ["나는 오늘 학교에 갔다.", "The cat sat on the mat."]
    out = tmp_path / "emb.json"
    assert main(["embed", "--model", str(bert), *texts, "--output", str(out)]) == 0
    assert capsys.readouterr().out == ""
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["texts"] == texts and len(data["embeddings"]) == 2 and len(data["embeddings"][0]) == 32
    assert data["similarity"][0][0] == pytest.approx(1.0, abs=1e-5)
    assert data["similarity"][0][1] == pytest.approx(data["similarity"][1][0])
