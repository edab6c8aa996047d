"""Causal-LM pretraining on token shards: packed batches, `pretrain --objective clm`, then generate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hanformer.data.clm import PackedCLMBatches
from hanformer.data.shards import ShardSplit, ShardWriter

SEP = 3


def make_split(directory: Path, documents: list[list[list[int]]]) -> ShardSplit:
    writer = ShardWriter(directory, vocab_size=100)
    for doc in documents:
        writer.add_document([(np.array(s), np.ones(len(s), dtype=np.uint8)) for s in doc])
    writer.close()
    return ShardSplit(directory, np.dtype(np.uint16))


def test_packed_rows_are_the_document_stream_with_separators(tmp_path):
    docs = [[[10, 11], [12]], [[20, 21, 22, 23]], [[30]], [[40, 41], [42, 43, 44]]]
    split = make_split(tmp_path, docs)
    stream = [10, 11, 12, SEP, 20, 21, 22, 23, SEP, 30, SEP, 40, 41, 42, 43, 44, SEP]
    batches = PackedCLMBatches(split, seq_len=4, batch_size=2, separator_id=SEP, seed=0, shuffle=False)
    assert batches.rows == len(stream) // 4 and batches.num_batches(0) == 2
    rows = torch.cat([batches.build(0, i)["input_ids"] for i in range(2)]).tolist()
    assert rows == [stream[i:i + 4] for i in range(0, 16, 4)]
    batch = batches.build(0, 0)
    assert torch.equal(batch["labels"], batch["input_ids"])


def test_shuffled_order_is_a_seeded_permutation_of_the_rows(tmp_path):
    split = make_split(tmp_path, [[[i % 90 + 5 for i in range(d * 7, d * 7 + 13)]] for d in range(20)])
    a = PackedCLMBatches(split, seq_len=8, batch_size=5, separator_id=SEP, seed=7)
    b = PackedCLMBatches(split, seq_len=8, batch_size=5, separator_id=SEP, seed=7)
    plain = PackedCLMBatches(split, seq_len=8, batch_size=5, separator_id=SEP, seed=7, shuffle=False)
    assert torch.equal(a.build(1, 2)["input_ids"], b.build(1, 2)["input_ids"])
    assert sorted(a.row_order(0).tolist()) == list(range(a.rows))
    assert a.row_order(0).tolist() != a.row_order(1).tolist()
    every = sorted(map(tuple, torch.cat([a.build(0, i)["input_ids"] for i in range(a.num_batches(0))]).tolist()))
    same = sorted(map(tuple, torch.cat([plain.build(0, i)["input_ids"] for i in range(plain.num_batches(0))]).tolist()))
    assert every == same


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny GPT trained for a few steps with `hanformer pretrain --objective clm`."""
    sys.path.insert(0, str(Path(__file__).parent))
    from _pretrain_corpus import make_tokenizer, write_corpus
    from hanformer.cli.main import main
    from hanformer.data.prepare import PrepareConfig, prepare_data

    d = tmp_path_factory.mktemp("clm")
    text = write_corpus(d / "wiki.txt", n_docs=60)
    tok = make_tokenizer(text, d / "tok")
    prepare_data([text], tok, d / "shards", PrepareConfig(progress=False, valid_fraction=0.1))
    args = ["pretrain", "--objective", "clm", "--data", str(d / "shards"), "--model", "tiny",
            "--model-config", "n_embd=32,n_head=2", "--seq-len", "32", "--batch-size", "8", "--max-steps", "8",
            "--eval-every", "4", "--eval-batches", "2", "--lr", "0.003", "--warmup-steps", "2", "--log-every", "4",
            "--no-progress", "--no-tensorboard", "--peak-tflops", "1", "--threads", "1",
            "--output-dir", str(d / "run")]
    assert main(args) == 0
    return d / "run"


@pytest.mark.slow
def test_pretrain_clm_reports_held_out_perplexity_and_saves_a_gpt2_checkpoint(trained):
    from hanformer.models.checkpoint import load_model
    from hanformer.models.gpt.model import GPTForCausalLM
    from hanformer.training.progress import read_metrics

    evals = read_metrics(trained, "eval")
    assert [e["step"] for e in evals] == [4, 8]
    last = evals[-1]
    assert last["perplexity"] == pytest.approx(np.exp(last["loss"]), rel=1e-6)
    assert last["predicted_tokens"] == 2 * 8 * 31 and last["unigram_perplexity"] > 1
    assert evals[-1]["loss"] < evals[0]["loss"] + 0.5  # no divergence in a few steps
    model = load_model(trained / "final")
    assert isinstance(model, GPTForCausalLM) and model.config.n_positions == 32
    sep = json.loads((trained / "final" / "config.json").read_text())["eos_token_id"]
    assert model.config.bos_token_id == sep
    transformers = pytest.importorskip("transformers")
    hf, info = transformers.GPT2LMHeadModel.from_pretrained(trained / "final", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


@pytest.mark.slow
def test_generate_cli_streams_and_api_matches(trained, capsys):
    from hanformer.cli.main import main
    from hanformer.generation.api import generate

    final = str(trained / "final")
    assert main(["generate", "--model", final, "--prompt", "서울은", "--max-new-tokens", "6"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("서울은")
    results = generate(final, "서울은", max_new_tokens=6)
    assert printed == "서울은" + results[0].text + "\n"

    assert main(["generate", "--model", final, "--prompt", "서울은", "--prompt", "", "--num-beams", "3",
                 "--max-new-tokens", "5", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["prompt"] for r in rows] == ["서울은", ""] and rows[1]["prompt_tokens"] == 1  # BOS only

    reasons = []
    for seed in range(3):  # streamed text is the returned text, and a stop string is never shown
        pieces: list[str] = []
        result = generate(final, "서울은", do_sample=True, top_k=0, seed=seed, max_new_tokens=12, stop_strings=["다", "."],
                          on_text=lambda row, text, pieces=pieces: pieces.append(text))[0]
        assert "".join(pieces) == result.text and "다" not in result.text and "." not in result.text
        reasons.append(result.finish_reason)
    assert "stop_string" in reasons

    sampled = generate(final, ["서울은", "부산의"], do_sample=True, seed=3, max_new_tokens=8, num_return_sequences=2)
    again = generate(final, ["서울은", "부산의"], do_sample=True, seed=3, max_new_tokens=8, num_return_sequences=2)
    assert [r.prompt for r in sampled] == ["서울은", "서울은", "부산의", "부산의"]
    assert [r.text for r in sampled] == [r.text for r in again]


@pytest.mark.slow
def test_generate_bad_input_and_prompt_fitting(trained, capsys, caplog):
    from hanformer.cli.main import main
    from hanformer.generation.api import generate

    final = str(trained / "final")
    long_prompt = " ".join(["도시"] * 40)
    assert main(["generate", "--model", final, "--prompt", long_prompt, "--max-new-tokens", "4",
                 "--long-prompt", "error"]) == 2
    err = capsys.readouterr().err
    assert "fit (context window 32 - max_new_tokens 4)" in err and err.count("\n") == 1
    with caplog.at_level("WARNING", logger="hanformer.generation"):
        result = generate(final, long_prompt, max_new_tokens=4)[0]
    assert result.prompt_tokens == 28 and "keeping its last 28" in caplog.text
    assert main(["generate", "--model", final, "--prompt", "x", "--max-new-tokens", "32"]) == 2
    assert "leaves no room for a prompt" in capsys.readouterr().err
    assert main(["generate", "--model", final, "--prompt", "x", "--do-sample", "--num-beams", "2"]) == 2
    assert "beam search with sampling is not supported" in capsys.readouterr().err
    assert main(["generate", "--model", final, "--prompt", "x", "--do-sample", "--top-p", "0"]) == 2
    assert "top_p = 0.0: must be in (0, 1]" in capsys.readouterr().err
    assert main(["generate", "--model", final]) == 2
    assert "no prompt given" in capsys.readouterr().err


@pytest.mark.slow
def test_clm_pretraining_interrupted_and_resumed_matches_an_uninterrupted_run(trained, tmp_path, monkeypatch, capsys):
    import os
    import signal

    from hanformer.cli.main import main
    from hanformer.training.progress import read_metrics

    args = ["pretrain", "--objective", "clm", "--data", str(trained.parent / "shards"), "--model", "tiny",
            "--model-config", "n_embd=32,n_head=2", "--seq-len", "32", "--batch-size", "4", "--max-steps", "5",
            "--grad-accum", "2", "--dropout", "0.1", "--eval-batches", "1", "--lr", "0.003", "--log-every", "1",
            "--no-progress", "--no-tensorboard", "--peak-tflops", "1", "--threads", "1", "--prefetch", "0"]
    assert main([*args, "--output-dir", str(tmp_path / "full")]) == 0
    original = PackedCLMBatches.build

    def build(self, epoch, index):
        if (self.name, epoch, index) == ("train", 0, 5):  # while step 3's batches are made
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, epoch, index)

    monkeypatch.setattr(PackedCLMBatches, "build", build)
    assert main([*args, "--output-dir", str(tmp_path / "part")]) == 130
    monkeypatch.setattr(PackedCLMBatches, "build", original)
    assert main([*args, "--output-dir", str(tmp_path / "part"), "--resume"]) == 0
    full = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "full", "train")]
    part = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "part", "train")]
    assert [s for s, _ in part] == [1, 2, 3, 4, 5]
    assert [v for _, v in part] == pytest.approx([v for _, v in full], abs=1e-5)
