"""`pretrain` / `hanformer pretrain` end to end on tiny data: outputs, evaluation, resume, errors."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _pretrain_corpus import make_shards, make_tokenizer, write_corpus, write_patterned_corpus  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.data.prepare import PrepareConfig, prepare_data  # noqa: E402
from hanformer.errors import InputError  # noqa: E402
from hanformer.training.progress import read_metrics  # noqa: E402

TINY = ["--model", "tiny", "--model-config", "hidden_size=32,num_attention_heads=2,intermediate_size=64",
        "--seq-len", "64", "--batch-size", "8", "--no-progress", "--no-tensorboard", "--peak-tflops", "1",
        "--lr", "0.002", "--warmup-steps", "2", "--log-every", "1", "--eval-batches", "3"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("pretrain"))


@pytest.mark.slow
def test_cli_pretrain_end_to_end(shards, tmp_path, capsys):
    from hanformer.models.bert.heads import BertForPreTraining
    from hanformer.tokenization.tokenizer import Tokenizer

    toml = tmp_path / "run.toml"
    toml.write_text(f'data = "{shards.as_posix()}"\nwhole_word_masking = true\n[trainer]\n'
                    f'output_dir = "{(tmp_path / "run").as_posix()}"\nmax_steps = 6\neval_every = 3\n',
                    encoding="utf-8")
    assert main(["pretrain", "--config", str(toml), *TINY]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 6 and summary["stopped"] == "max_steps"
    evals = read_metrics(tmp_path / "run", "eval")
    assert [e["step"] for e in evals] == [3, 6]
    for key in ("mlm_accuracy", "perplexity", "nsp_accuracy", "unigram_accuracy", "unigram_perplexity", "mlm_loss"):
        assert key in evals[-1]
    assert 0 < evals[-1]["masked_tokens"] and 0 <= evals[-1]["nsp_accuracy"] <= 1
    train = read_metrics(tmp_path / "run", "train")
    assert len(train) == 6 and all(r["tokens_per_s"] > 0 and r["mfu"] > 0 for r in train)
    # The final checkpoint is a Hugging Face layout with the tokenizer, loadable as is.
    final = tmp_path / "run" / "final"
    model = BertForPreTraining.from_pretrained(final)
    assert model.config.hidden_size == 32
    assert Tokenizer.from_pretrained(final).vocab_size == model.config.vocab_size
    assert json.loads((final / "metrics.json").read_text())["step"] == 6


@pytest.mark.slow
def test_pretrain_interrupted_and_resumed_matches(shards, tmp_path, monkeypatch, capsys):
    from hanformer.data.batches import NSPBatches

    args = [*TINY, "--data", str(shards), "--max-steps", "6", "--grad-accum", "2", "--dropout", "0.1"]
    assert main(["pretrain", *args, "--output-dir", str(tmp_path / "full")]) == 0
    original = NSPBatches.build

    def build(self, epoch, index):
        if (self.name, epoch, index) == ("train", 0, 5):  # while step 3's batches are made
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, epoch, index)

    monkeypatch.setattr(NSPBatches, "build", build)
    assert main(["pretrain", *args, "--output-dir", str(tmp_path / "part")]) == 130
    monkeypatch.setattr(NSPBatches, "build", original)
    assert '"stopped": "interrupted"' in capsys.readouterr().out
    assert main(["pretrain", *args, "--output-dir", str(tmp_path / "part"), "--resume"]) == 0
    full = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "full", "train")]
    part = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "part", "train")]
    assert [s for s, _ in part] == [1, 2, 3, 4, 5, 6]
    assert [v for _, v in part] == pytest.approx([v for _, v in full], abs=1e-5)


def test_masked_lm_only_objective_has_no_nsp(shards, tmp_path, capsys):
    from hanformer.models.bert.heads import BertForMaskedLM

    assert main(["pretrain", *TINY, "--data", str(shards), "--objective", "mlm", "--max-steps", "2",
                 "--eval-every", "2", "--output-dir", str(tmp_path / "mlm")]) == 0
    capsys.readouterr()
    last = read_metrics(tmp_path / "mlm", "eval")[-1]
    assert last["masked_tokens"] > 0 and 0 <= last["mlm_accuracy"] <= 1 and "nsp_accuracy" not in last
    config = json.loads((tmp_path / "mlm" / "final" / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]
    model = BertForMaskedLM.from_pretrained(tmp_path / "mlm" / "final")
    assert not hasattr(model, "nsp") and model.bert.pooler is None


def test_bad_inputs_are_one_line_errors(shards, tmp_path, capsys):
    # Unknown keys in the TOML are named (with a suggestion).
    toml = tmp_path / "bad.toml"
    toml.write_text(f'data = "{shards.as_posix()}"\nseq_length = 64\n[trainer]\nmax_step = 3\n', encoding="utf-8")
    assert main(["pretrain", "--config", str(toml)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'seq_length' (did you mean 'seq_len'?)" in err
    # Shards made with another vocabulary: detected by the vocab hash.
    other = make_tokenizer(write_corpus(tmp_path / "other.txt", n_docs=10, seed=5), tmp_path / "tok2", 400)
    assert main(["pretrain", "--data", str(shards), "--tokenizer", str(other), *TINY,
                 "--output-dir", str(tmp_path / "x")]) == 2
    assert "shards were made with another vocabulary" in capsys.readouterr().err
    # Too little data for one batch: counts are given.
    assert main(["pretrain", "--data", str(shards), *TINY, "--batch-size", "100000",
                 "--output-dir", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "gives 0 batches of 100000" in err and "documents" in err and "tokens" in err
    # Not a shard directory.
    with pytest.raises(InputError, match="not a shard directory"):
        from hanformer.data.shards import ShardSet

        ShardSet(tmp_path)


@pytest.mark.slow
def test_resume_with_another_model_shape_is_refused(shards, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["pretrain", "--data", str(shards), *TINY, "--max-steps", "1", "--output-dir", out]) == 0
    capsys.readouterr()
    wider = [a.replace("hidden_size=32", "hidden_size=64") for a in TINY]
    assert main(["pretrain", "--data", str(shards), *wider, "--max-steps", "2", "--output-dir", out,
                 "--resume"]) == 2
    assert "another model shape" in capsys.readouterr().err


@pytest.mark.slow
def test_pretraining_learns_beyond_the_unigram_baseline(tmp_path):
    """Labels, masking, model and optimizer wired together actually learn from context."""
    from hanformer.pretraining.config import PretrainConfig
    from hanformer.pretraining.run import pretrain
    from hanformer.training.config import TrainerConfig

    text = write_patterned_corpus(tmp_path / "c.txt")
    tok = make_tokenizer(text, tmp_path / "tok", 300)
    prepare_data([text], tok, tmp_path / "shards", PrepareConfig(progress=False, valid_fraction=0.05))
    cfg = PretrainConfig(data=str(tmp_path / "shards"), model="tiny", seq_len=64, batch_size=16, eval_batches=5,
                         model_config={"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128},
                         trainer=TrainerConfig(output_dir=str(tmp_path / "run"), max_steps=50, lr=3e-3,
                                               warmup_steps=10, log_every=10, progress=False,
                                               tensorboard=False, peak_tflops=1.0))
    result = pretrain(cfg)
    metrics = result.eval_metrics
    assert metrics["unigram_accuracy"] < 0.1
    assert metrics["mlm_accuracy"] > 2.5 * metrics["unigram_accuracy"]
    assert metrics["perplexity"] < metrics["unigram_perplexity"]
