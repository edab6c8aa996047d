"""Settings are checked before the first step, and a run never continues something else: bad
values are one-line errors naming the flag, a misspelt --metric-for-best stops before training,
an output dir of an earlier run is not silently mixed with a new one, checkpoints and
--init-from of another vocabulary are refused, half-written saves are cleaned up, and under
torchrun only rank 0 reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _pretrain_corpus import make_shards  # noqa: E402
from _tiny_checkpoints import make_checkpoint, make_tokenizer  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.data.prepare import PrepareConfig, prepare_data  # noqa: E402
from hanformer.errors import ConfigError  # noqa: E402
from hanformer.tokenization.tokenizer import Tokenizer  # noqa: E402
from hanformer.training import TrainerConfig  # noqa: E402
from hanformer.training.checkpointing import list_checkpoints  # noqa: E402
from hanformer.training.progress import read_metrics  # noqa: E402

TINY = ["--model", "tiny", "--model-config", "hidden_size=32,num_attention_heads=2,intermediate_size=64",
        "--seq-len", "64", "--batch-size", "8", "--eval-batches", "2", "--no-progress", "--no-tensorboard",
        "--peak-tflops", "1", "--threads", "1", "--log-every", "1"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("validation"), n_docs=40)


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("hanformer: error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


# ----------------------------------------------------------------------------- bad values

@pytest.mark.parametrize("flags,expected", [
    (["--lr", "nan"], "lr (--lr) must be a finite number > 0, got nan"),
    (["--lr", "inf"], "lr (--lr) must be a finite number > 0, got inf"),
    (["--lr", "-0.1"], "lr (--lr) must be a finite number > 0, got -0.1"),
    (["--seed", "-1"], "seed (--seed) must be a whole number from 0 to 2**63-1, got -1"),
    (["--device", "banana"], "device (--device) 'banana' is not a device"),
    (["--max-time", "0s"], "max_time (--max-time) must be > 0, got '0s'"),
    (["--grad-clip", "nan"], "grad_clip (--grad-clip) must be a finite number >= 0"),
    (["--beta2", "1"], "beta2 (--beta2) must be a finite number >= 0 and < 1"),
])
def test_bad_pretrain_settings_are_one_line_errors(flags, expected, shards, tmp_path, capsys):
    assert main(["pretrain", "--data", str(shards), *TINY, "--output-dir", str(tmp_path / "o"), *flags]) == 2
    assert expected in error_line(capsys)
    assert not (tmp_path / "o").exists()  # nothing was started


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
def test_a_missing_gpu_is_a_one_line_error(shards, tmp_path, capsys):
    assert main(["pretrain", "--data", str(shards), *TINY, "--output-dir", str(tmp_path / "o"),
                 "--device", "cuda:7"]) == 2
    assert "device (--device) 'cuda:7': this machine has" in error_line(capsys)


def test_output_paths_that_cannot_be_folders(shards, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["pretrain", "--data", str(shards), *TINY, "--output-dir", str(afile)]) == 2
    assert "output_dir (--output-dir)" in (line := error_line(capsys)) and "is an existing file" in line
    assert main(["pretrain", "--data", str(shards), *TINY, "--output-dir", str(afile / "sub")]) == 2
    assert "is a file, so the folder cannot be created" in error_line(capsys)
    assert main(["finetune", "--task", "nsmc", "--model", str(tmp_path), "--train", str(afile),
                 "--out", str(afile)]) == 2
    assert "out (--out)" in (line := error_line(capsys)) and "is an existing file" in line
    assert afile.read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (a folder nobody can write in)")
def test_an_unwritable_output_dir_is_a_one_line_error(shards, capsys):
    assert main(["pretrain", "--data", str(shards), *TINY, "--max-steps", "1",
                 "--output-dir", "/proc/hanformer-output"]) == 2
    assert "output_dir (--output-dir) '/proc/hanformer-output': cannot write there" in error_line(capsys)


def test_negative_fine_tuning_seeds_are_one_line_errors(tmp_path, capsys):
    train = tmp_path / "t.tsv"
    train.write_text("id\tdocument\tlabel\n1\t좋아요\t1\n", encoding="utf-8")
    base = ["finetune", "--task", "nsmc", "--model", str(tmp_path), "--train", str(train), "--out", str(tmp_path / "o")]
    assert main([*base, "--seeds", "1,-2"]) == 2
    assert "seeds (--seeds) must be a whole number from 0 to 2**63-1, got -2" in error_line(capsys)
    assert main([*base, "--seed", "-5"]) == 2
    assert "seed (--seed) must be a whole number" in error_line(capsys)


@pytest.mark.parametrize("field,value,flag", [
    ("lr", float("nan"), "--lr"), ("weight_decay", -1.0, "--weight-decay"), ("eps", 0.0, "--eps"),
    ("min_lr_ratio", 2.0, "--min-lr-ratio"), ("peak_tflops", float("inf"), "--peak-tflops"),
    ("max_steps", 0, "--max-steps"), ("keep_last", 0, "--keep-last"), ("momentum", 1.5, "--momentum"),
    ("metric_for_best", " ", "--metric-for-best"),
])
def test_every_trainer_setting_is_checked(field, value, flag):
    with pytest.raises(ConfigError, match=f"\\({flag}\\)"):
        TrainerConfig(**{field: value}).validate()


# ----------------------------------------------------------------------------- metric_for_best

def test_a_misspelt_metric_for_best_stops_before_training(shards, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", "--data", str(shards), *TINY, "--max-steps", "3", "--output-dir", str(out),
                 "--metric-for-best", "perplexty"]) == 2
    line = error_line(capsys)
    assert "metric_for_best (--metric-for-best) 'perplexty' is not among the evaluation metrics" in line
    assert "(did you mean 'perplexity'?)" in line
    assert not read_metrics(out) and not list_checkpoints(out)  # no step was trained


@pytest.fixture(scope="module")
def finetune_args(tmp_path_factory):
    """A tiny random BERT and 30 reviews: `hanformer finetune` arguments without --out."""
    root = tmp_path_factory.mktemp("validation-ft")
    model = make_checkpoint(root / "model", make_tokenizer(root / "tok"), "BertForPreTraining")
    train = root / "t.tsv"
    train.write_text("id\tdocument\tlabel\n" + "".join(f"{i}\t좋아요 {i}\t{i % 2}\n" for i in range(30)),
                     encoding="utf-8")
    return ["finetune", "--task", "nsmc", "--model", str(model), "--train", str(train), "--no-progress",
            "--batch-size", "4", "--max-steps", "2"]


def test_a_misspelt_metric_for_best_in_fine_tuning_stops_before_training(finetune_args, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main([*finetune_args, "--out", str(out), "--metric-for-best", "acuracy"]) == 2
    assert "'acuracy' is not among the evaluation metrics (did you mean 'accuracy'?)" in error_line(capsys)
    assert not out.exists() or not any(out.iterdir())


# ----------------------------------------------------------------------------- output dirs

def test_an_output_dir_of_an_earlier_run_needs_resume_or_overwrite(shards, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pretrain", "--data", str(shards), *TINY, "--output-dir", str(out)]
    assert main([*args, "--max-steps", "3"]) == 0
    capsys.readouterr()
    assert main([*args, "--max-steps", "2"]) == 2
    line = error_line(capsys)
    assert "already holds checkpoints of an earlier run (latest step-00000003)" in line
    assert "pass --resume to continue it, choose a new output dir, or pass --overwrite" in line
    assert main([*args, "--max-steps", "2", "--overwrite"]) == 0
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002"]
    assert [r["step"] for r in read_metrics(out, "train")] == [1, 2]  # the old run's records are gone


def test_resume_with_nothing_to_resume_says_so(shards, tmp_path, capsys):
    out = tmp_path / "fresh"
    assert main(["pretrain", "--data", str(shards), *TINY, "--max-steps", "1", "--output-dir", str(out),
                 "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"resume: no checkpoint in {out / 'checkpoints'}; starting from step 0" in err


def test_half_written_saves_are_cleaned_and_never_resumed(shards, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pretrain", "--data", str(shards), *TINY, "--output-dir", str(out)]
    assert main([*args, "--max-steps", "2"]) == 0
    partial = out / "checkpoints" / ".step-00000099.k1ll3d"
    partial.mkdir()
    (partial / "state.pt").write_bytes(b"torn")
    export = out / ".final.k1ll3d"
    export.mkdir()
    capsys.readouterr()
    assert main([*args, "--max-steps", "3", "--resume"]) == 0
    assert "at step 2" in capsys.readouterr().err
    assert not partial.exists() and not export.exists()
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002", "step-00000003"]


# ----------------------------------------------------------------------------- other vocabularies

@pytest.fixture(scope="module")
def permuted_shards(shards, tmp_path_factory):
    """The same text tokenized with a vocabulary of the same size whose ids are permuted."""
    root = tmp_path_factory.mktemp("permuted")
    vocab = Tokenizer.from_pretrained(shards / "tokenizer").get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    permuted = tokens[:5] + tokens[5:][::-1]
    tok = Tokenizer.build({t: i for i, t in enumerate(permuted)})
    tok.save_pretrained(root / "tok")
    assert tok.vocab_size == len(vocab)
    corpus = shards.parent / "wiki.txt"
    prepare_data([corpus], root / "tok", root / "shards", PrepareConfig(progress=False, valid_fraction=0.1))
    return root / "shards"


def test_resume_on_shards_of_another_vocabulary_is_refused(shards, permuted_shards, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", "--data", str(shards), *TINY, "--max-steps", "1", "--output-dir", str(out)]) == 0
    capsys.readouterr()
    assert main(["pretrain", "--data", str(permuted_shards), *TINY, "--max-steps", "2", "--output-dir", str(out),
                 "--resume"]) == 2
    assert "checkpoint was trained with another vocabulary" in error_line(capsys)


def test_init_from_a_checkpoint_of_another_vocabulary_is_refused(shards, permuted_shards, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", "--data", str(shards), *TINY, "--max-steps", "1", "--output-dir", str(out)]) == 0
    capsys.readouterr()
    assert main(["pretrain", "--data", str(permuted_shards), *TINY, "--max-steps", "1", "--init-from",
                 str(out / "final"), "--output-dir", str(tmp_path / "again")]) == 2
    line = error_line(capsys)
    assert "shards were made with another vocabulary" in line and f"--init-from {out / 'final'}" in line


def test_resume_with_other_settings_is_refused(shards, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pretrain", "--data", str(shards), *TINY, "--output-dir", str(out)]
    assert main([*args, "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--max-steps", "2", "--resume", "--lr", "0.5", "--seq-len", "32"]) == 2
    line = error_line(capsys)
    assert "checkpoint belongs to a run with other settings (pretrain.seq_len, trainer.lr differ)" in line
    assert main([*args, "--max-steps", "2", "--resume", "--log-every", "2"]) == 0  # run length, logging: fine


# ----------------------------------------------------------------------------- torchrun

def test_fine_tuning_reports_on_rank_0_only(finetune_args, tmp_path, monkeypatch, capsys):
    """RANK=1 of WORLD_SIZE=2 (no process group: the trainer is replaced) prints nothing."""
    import hanformer.tasks.finetune as finetune_module
    import hanformer.training.trainer as trainer_module

    class FakeTrainer:
        def __init__(self, model, config, loader, *args, dist_info=None, **kwargs):
            self.config, self.dist = config, dist_info

        def train(self, resume=None):
            return trainer_module.TrainResult(step=3, stopped="max_steps", elapsed=0.1, train_loss=0.5,
                                              eval_metrics={"accuracy": 0.5}, best_metric=None, checkpoint=None,
                                              final_dir=None, output_dir=Path(self.config.output_dir))

    monkeypatch.setattr(finetune_module, "Trainer", FakeTrainer)
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("LOCAL_RANK", rank)
        assert main([*finetune_args, "--out", str(tmp_path / f"rank{rank}")]) == 0
        captured = capsys.readouterr()
        if rank == "1":
            assert captured.out == "" and captured.err == ""
            assert not (tmp_path / "rank1" / "finetune.json").exists()
        else:
            assert json.loads(captured.out)["metrics"] == {"accuracy": 0.5}
            assert "training examples" in captured.err
            assert (tmp_path / "rank0" / "finetune.json").is_file()
