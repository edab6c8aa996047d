"""RNN language models (LSTM/GRU): the model, truncated BPTT through the Trainer, exact resume,
save/load, scoring, sampling and the `hanformer rnn` commands, on a tiny patterned corpus."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from _pretrain_corpus import make_tokenizer, write_patterned_corpus  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.generation.config import GenerationConfig  # noqa: E402
from hanformer.generation.search import decode  # noqa: E402
from hanformer.models.rnn.config import RNNConfig  # noqa: E402
from hanformer.models.rnn.model import RNNLanguageModel  # noqa: E402
from hanformer.models.rnn.score import score_stream  # noqa: E402
from hanformer.models.rnn.settings import RNNTrainConfig  # noqa: E402
from hanformer.models.rnn.tbptt import StreamWindows  # noqa: E402
from hanformer.models.rnn.train import train_rnn  # noqa: E402
from hanformer.tokenization.tokenizer import Tokenizer  # noqa: E402
from hanformer.training.config import TrainerConfig  # noqa: E402

SMALL = ["--embedding-size", "32", "--hidden-size", "48", "--num-layers", "1", "--batch-size", "8",
         "--bptt", "16", "--threads", "1", "--no-progress", "--peak-tflops", "1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("rnn")
    text = write_patterned_corpus(root / "corpus.txt", n_docs=120)
    return text, make_tokenizer(text, root / "tok", vocab_size=300)


def config(corpus, out: Path, **trainer) -> RNNTrainConfig:
    text, tok = corpus
    settings = {"max_steps": 8, "log_every": 2, "threads": 1, "progress": False, "peak_tflops": 1.0,
                "tensorboard": False, **trainer}
    return RNNTrainConfig(input=[str(text)], tokenizer=str(tok), out=str(out), embedding_size=32, hidden_size=48,
                          num_layers=2, dropout=0.2, batch_size=8, bptt=16, valid_fraction=0.1,
                          trainer=TrainerConfig(output_dir=str(out), lr=1e-2, **settings))


def tiny_model(cell: str = "lstm", **kw) -> RNNLanguageModel:
    torch.manual_seed(0)
    return RNNLanguageModel(RNNConfig(vocab_size=40, cell=cell, embedding_size=12, hidden_size=16, num_layers=2,
                                      **kw))


# ------------------------------------------------------------------------------------ the model
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("tied,hidden", [(True, 12), (True, 16), (False, 16)])
def test_parameter_count_and_tied_storage(cell, tied, hidden):
    model = RNNLanguageModel(RNNConfig(vocab_size=40, cell=cell, embedding_size=12, hidden_size=hidden,
                                       num_layers=2, tie_embeddings=tied))
    assert model.num_parameters() == model.config.parameter_count()
    assert (model.projection is not None) == (tied and hidden != 12)
    shared = model.decoder.weight.data_ptr() == model.embedding.weight.data_ptr()
    assert shared == tied and (model.decoder.weight is model.embedding.weight) == tied


def test_tied_embedding_gets_both_gradients_and_stays_shared_after_loading(tmp_path):
    model = tiny_model()
    ids = torch.randint(0, 40, (2, 7))
    model(ids, targets=ids).loss.backward()
    # One matrix, so one gradient: the input lookup's rows and the output layer's, summed.
    assert model.embedding.weight.grad is model.decoder.weight.grad
    model.save_pretrained(tmp_path)
    assert "decoder.weight" not in load_file(tmp_path / "model.safetensors")
    loaded = RNNLanguageModel.from_pretrained(tmp_path)
    assert loaded.decoder.weight.data_ptr() == loaded.embedding.weight.data_ptr()


@pytest.mark.parametrize("cell,kw", [("lstm", {}), ("gru", {"tie_embeddings": False})])
def test_save_load_roundtrip_gives_identical_logits(tmp_path, cell, kw):
    model = tiny_model(cell, **kw).eval()
    model.save_pretrained(tmp_path)
    loaded = RNNLanguageModel.from_pretrained(tmp_path)
    ids = torch.randint(0, 40, (3, 9))
    a, b = model(ids), loaded(ids)
    assert torch.equal(a.logits, b.logits)
    assert all(torch.equal(x, y) for x, y in zip(a.state.tensors, b.state.tensors, strict=True))
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "rnn_lm"


def test_carried_state_continues_the_text_exactly():
    """Windows fed one after another with the carried state = one pass over the whole text."""
    model = tiny_model().eval()
    ids = torch.randint(0, 40, (2, 30))
    whole = model(ids).logits
    state, parts = None, []
    for start in range(0, 30, 7):
        out = model(ids[:, start:start + 7], state=state)
        state, parts = out.state, [*parts, out.logits]
    assert torch.allclose(torch.cat(parts, 1), whole, atol=1e-6)


def test_score_stream_is_the_mean_next_token_loss():
    model = tiny_model().eval()
    ids = np.random.default_rng(0).integers(0, 40, 50)
    with torch.no_grad():
        one = score_stream(model, ids, streams=1, window=8)
        logits = model(torch.from_numpy(ids[None, :-1])).logits[0]
        expected = F.cross_entropy(logits, torch.from_numpy(ids[1:]))
        split = score_stream(model, ids, streams=4, window=8)
    assert one.predicted == 49 and one.loss == pytest.approx(float(expected), rel=1e-5)
    assert split.predicted == 50 - 4  # the first token of each piece has no context


def test_stream_windows_are_consecutive_and_resume_with_the_carried_state():
    ids = np.arange(100)
    windows = StreamWindows(ids, batch_size=4, bptt=7)
    seen = [windows.next_batch() for _ in range(windows.windows_per_epoch())]
    inputs = torch.cat([b["input_ids"] for b in seen], 1)
    assert torch.equal(inputs, torch.arange(100).reshape(4, 25)[:, :-1])  # batchify: rows are contiguous pieces
    assert all(torch.equal(b["targets"], b["input_ids"] + 1) for b in seen)
    windows.carried = tiny_model().eval()(torch.zeros(4, 1, dtype=torch.long)).state
    saved = windows.state_dict()
    again = StreamWindows(ids, batch_size=4, bptt=7)
    again.load_state_dict(saved)
    assert torch.equal(again.carried.tensors[1], windows.carried.tensors[1])
    first = windows.next_batch()  # the epoch ends: back to the start, from a zero state
    assert torch.equal(again.next_batch()["input_ids"], first["input_ids"]) and windows.carried is None


def test_generation_loops_drive_the_model():
    model = tiny_model().eval()
    prompt = torch.tensor([[3, 5, 7]])
    sampled = [decode(model, prompt, None, GenerationConfig(max_new_tokens=6, do_sample=True, seed=1, top_k=0),
                      eos_token_id=None, pad_token_id=0).sequences for _ in range(2)]
    assert torch.equal(sampled[0], sampled[1]) and sampled[0].shape == (1, 9)
    beams = decode(model, prompt, None, GenerationConfig(max_new_tokens=5, num_beams=3, num_return_sequences=2),
                   eos_token_id=None, pad_token_id=0)
    assert beams.sequences.shape == (2, 8)
    # Greedy with the cache (the carried state) = greedy recomputing the whole prefix every step.
    cached, full = (decode(model, prompt, None, GenerationConfig(max_new_tokens=6, use_cache=c), eos_token_id=None,
                           pad_token_id=0).sequences for c in (True, False))
    assert torch.equal(cached, full)


def test_cpu_bf16_autocast_runs_the_recurrence_in_float32():
    # oneDNN has no bfloat16 LSTM kernel on CPUs without native bf16: it used to fail outright.
    model = tiny_model()
    ids = torch.randint(0, 40, (2, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, targets=ids)
        again = model(ids, targets=ids, state=out.state)
    again.loss.backward()
    assert out.state.tensors[0].dtype == torch.float32 and torch.isfinite(again.loss)


# ------------------------------------------------------------------------------------ training
def test_learns_the_patterned_corpus(corpus, tmp_path):
    cfg = config(corpus, tmp_path / "learn", max_steps=150, log_every=50)
    cfg.dropout, cfg.num_layers = 0.0, 1
    result = train_rnn(cfg)
    metrics = result.eval_metrics
    vocab = RNNLanguageModel.from_pretrained(result.final_dir).config.vocab_size
    assert metrics["perplexity"] < vocab / 20 and metrics["perplexity"] < metrics["unigram_perplexity"] / 4


def test_resume_from_half_way_gives_identical_weights(corpus, tmp_path):
    """8 steps straight = 4 steps, checkpoint, resume, 4 more (dropout on, so the RNG streams
    must be restored too, and the carried state from step 4 must be the one step 5 starts from)."""
    reference = train_rnn(config(corpus, tmp_path / "ref", save_every=4, keep_last=5))
    state = torch.load(tmp_path / "ref/checkpoints/step-00000004/state.pt", weights_only=True)
    assert state["data"]["position"] == 4 * 16 and state["data"]["carried"] is not None
    out = tmp_path / "resumed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "ref/checkpoints/step-00000004", out / "checkpoints/step-00000004")
    resumed = train_rnn(config(corpus, out, save_every=4, keep_last=5), resume=True)
    assert resumed.step == 8
    a, b = load_file(reference.final_dir / "model.safetensors"), load_file(resumed.final_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_train_perplexity_sample(corpus, tmp_path, capsys):
    text, tok = corpus
    out = tmp_path / "cli"
    assert main(["rnn", "train", "--input", str(text), "--tokenizer", str(tok), "--out", str(out), "--cell", "gru",
                 "--max-steps", "6", "--log-every", "3", "--no-tensorboard", *SMALL]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 6 and summary["eval"]["perplexity"] > 1
    held = tmp_path / "held.txt"
    held.write_text("서울 도시의 상징 색은 빨강 색이다.\n", encoding="utf-8")
    assert main(["rnn", "perplexity", "--model", str(out / "final"), "--input", str(held), "--device", "cpu"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["predicted_tokens"] == scored["tokens"] - 1 and scored["perplexity"] > 1
    assert main(["rnn", "sample", "--model", str(out / "final"), "--num", "2", "--max-new-tokens", "5",
                 "--device", "cpu"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    # `hanformer generate` takes the same folder: prompts of different lengths, greedy, each the
    # argmax continuation of [separator] + its pieces with the state carried.
    prompts = ["서울", "서울 도시의 상징"]
    assert main(["generate", "--model", str(out / "final"), "--prompt", prompts[0], "--prompt", prompts[1],
                 "--max-new-tokens", "4", "--json"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    model = RNNLanguageModel.from_pretrained(out / "final").eval()
    tokenizer = Tokenizer.from_pretrained(out / "final")
    sep = model.config.separator_id
    for prompt, result in zip(prompts, results, strict=True):
        ids = [sep, *tokenizer.encode(prompt, add_special_tokens=False).ids]
        assert result["prompt"] == prompt and result["prompt_tokens"] == len(ids)
        expected, state, step_ids = [], None, ids
        with torch.no_grad():
            for _ in range(4):
                out_step = model(torch.tensor([step_ids]), state=state)
                state, token = out_step.state, int(out_step.logits[0, -1].argmax())
                expected.append(token)
                if token == sep:
                    break
                step_ids = [token]
        assert result["generated_tokens"] == len(expected)
        assert result["text"] == tokenizer.decode(ids + expected, skip_special_tokens=True)[
            len(tokenizer.decode(ids, skip_special_tokens=True)):]


def test_empty_held_out_file_is_a_one_line_error(corpus, tmp_path, capsys):
    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    from hanformer.tokenization.tokenizer import Tokenizer

    Tokenizer.from_pretrained(corpus[1]).save_pretrained(tmp_path / "m")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    capsys.readouterr()
    assert main(["rnn", "perplexity", "--model", str(tmp_path / "m"), "--input", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "empty.txt" in err and "no text" in err


def test_train_needs_one_text_source(tmp_path, capsys):
    assert main(["rnn", "train", "--out", str(tmp_path / "x")]) == 2
    assert "--input" in capsys.readouterr().err
