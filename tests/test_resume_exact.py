"""A resumed run ends with exactly the weights of the uninterrupted run (max abs difference 0),
with default settings, on every way a run is cut short: a regular checkpoint copied into a new
output dir, SIGTERM, SIGKILL after a checkpoint, fine-tuning, and a recipe stage.

Default settings matter: the MFU peak is then measured at the start of every run, and that
measurement used to draw from the global random stream after the checkpoint's RNG state had been
restored, so the dropout masks after a resume differed (weights off by 1e-2). The older resume
tests passed --peak-tflops, which skips the measurement, and so never saw it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from _pretrain_corpus import make_shards, make_tokenizer, write_corpus  # noqa: E402
from _tiny_checkpoints import make_checkpoint  # noqa: E402
from _tiny_checkpoints import make_tokenizer as make_small_tokenizer  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.training.checkpointing import list_checkpoints  # noqa: E402
from hanformer.training.progress import read_metrics  # noqa: E402

# A tiny BERT with dropout (the preset's 0.1), otherwise default trainer settings. --threads 1
# keeps float sums identical between this process and the subprocesses.
MODEL = ["--model", "tiny", "--model-config", "hidden_size=32,num_attention_heads=2,intermediate_size=64",
         "--seq-len", "64", "--batch-size", "8", "--eval-batches", "2", "--threads", "1", "--no-progress"]
STEPS = ["--max-steps", "12", "--save-every", "4", "--keep-last", "5", "--log-every", "2"]

# Runs the CLI with batch building slowed down, so a signal reliably lands mid-run.
SLOW_CLI = """
import sys, time
from hanformer.data.batches import NSPBatches
build = NSPBatches.build
def slow(self, epoch, index):
    if self.name == "train":
        time.sleep(0.1)
    return build(self, epoch, index)
NSPBatches.build = slow
from hanformer.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def max_abs_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Shards, and the uninterrupted reference run (12 steps, a checkpoint every 4)."""
    root = tmp_path_factory.mktemp("exact")
    shards = make_shards(root, n_docs=40)
    args = ["pretrain", "--data", str(shards), *MODEL, *STEPS]
    assert main([*args, "--output-dir", str(root / "reference")]) == 0
    return shards, root / "reference", args


def pretrain_args(pretrained, out: Path) -> list[str]:
    return [*pretrained[2], "--output-dir", str(out)]


def start_slow_run(pretrained, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", SLOW_CLI, *pretrain_args(pretrained, out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not list_checkpoints(out):
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its first checkpoint: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint appeared in time")
        time.sleep(0.02)


def resume_and_compare(pretrained, out: Path, capsys) -> None:
    capsys.readouterr()
    assert main([*pretrain_args(pretrained, out), "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().err
    assert max_abs_diff(out / "final", pretrained[1] / "final") == 0.0
    steps = [r["step"] for r in read_metrics(out, "train")]
    assert steps == sorted(set(steps)) and steps[-1] == 12  # records past the checkpoint were not kept twice
    assert {r["step"] for r in read_metrics(pretrained[1], "train")} <= set(steps)


def test_resume_from_a_copied_checkpoint_is_exact(pretrained, tmp_path, capsys):
    out = tmp_path / "copy"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copytree(pretrained[1] / "checkpoints" / "step-00000004", out / "checkpoints" / "step-00000004")
    capsys.readouterr()
    assert main([*pretrain_args(pretrained, out), "--resume"]) == 0
    assert max_abs_diff(out / "final", pretrained[1] / "final") == 0.0


def test_sigterm_then_resume_is_exact(pretrained, tmp_path, capsys):
    out = tmp_path / "term"
    proc = start_slow_run(pretrained, out)
    wait_for_checkpoint(proc, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "interrupted (SIGTERM)" in err.decode()
    assert not (out / "final").exists()
    resume_and_compare(pretrained, out, capsys)


def test_sigkill_then_resume_from_the_last_checkpoint_is_exact(pretrained, tmp_path, capsys):
    out = tmp_path / "kill"
    proc = start_slow_run(pretrained, out)
    wait_for_checkpoint(proc, out)
    time.sleep(0.3)  # a step or two past the checkpoint: those steps are logged, then lost
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "final").exists()
    resume_and_compare(pretrained, out, capsys)


# ----------------------------------------------------------------------------- fine-tuning

POS = ["정말 좋아요", "좋아요 최고", "재미있어요 좋아요", "good movie", "완전 좋아요"]
NEG = ["너무 싫어요", "싫어요 최악", "지루해요 싫어요", "bad movie", "완전 싫어요"]


@pytest.fixture(scope="module")
def finetune_args(tmp_path_factory):
    root = tmp_path_factory.mktemp("exact-ft")
    model = make_checkpoint(root / "model", make_small_tokenizer(root / "tok"), "BertForPreTraining")
    rows = ["id\tdocument\tlabel"] + [f"{i}\t{(POS if i % 2 else NEG)[i % 5]}\t{i % 2}" for i in range(48)]
    train = root / "train.tsv"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return ["finetune", "--task", "nsmc", "--model", str(model), "--train", str(train), "--batch-size", "8",
            "--max-steps", "10", "--log-every", "2", "--threads", "1", "--no-progress"]


def test_finetune_sigterm_exits_130_and_resumes_exactly(finetune_args, tmp_path, monkeypatch, capsys):
    from hanformer.data.loader import ResumableLoader

    assert main([*finetune_args, "--out", str(tmp_path / "reference")]) == 0
    original = ResumableLoader.next_batch
    calls = {"n": 0}

    def next_batch(self):
        calls["n"] += 1
        if calls["n"] == 6:  # during step 6: the run stops after it, with a checkpoint
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(ResumableLoader, "next_batch", next_batch)
    out = tmp_path / "part"
    capsys.readouterr()
    assert main([*finetune_args, "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and "interrupted (SIGTERM) at step 6" in captured.err
    assert [p.name for p in list_checkpoints(out)] == ["step-00000006"]
    monkeypatch.setattr(ResumableLoader, "next_batch", original)
    assert main([*finetune_args, "--out", str(out), "--resume", "auto"]) == 0
    assert max_abs_diff(out / "final", tmp_path / "reference" / "final") == 0.0


# ----------------------------------------------------------------------------- recipes

def test_recipe_stage_resume_is_exact(tmp_path, monkeypatch, capsys):
    from hanformer.data.batches import NSPBatches

    corpus = write_corpus(tmp_path / "wiki.txt", n_docs=40)
    tok = make_tokenizer(corpus, tmp_path / "tok")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f"""
[run]
name = "exact"
seed = 3
threads = 1

[data]
input = ["{corpus.as_posix()}"]
tokenizer = "{tok.as_posix()}"
valid_fraction = 0.1
progress = false

[pretrain]
model = "tiny"
model_config = {{ hidden_size = 32, num_attention_heads = 2, intermediate_size = 64 }}
seq_len = 64
batch_size = 8
eval_batches = 2
max_steps = 10
log_every = 2
progress = false
""", encoding="utf-8")
    assert main(["run", str(recipe), "--out-dir", str(tmp_path / "reference")]) == 0
    original = NSPBatches.build

    def build(self, epoch, index):
        if (self.name, epoch, index) == ("train", 0, 5):
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, epoch, index)

    monkeypatch.setattr(NSPBatches, "build", build)
    assert main(["run", str(recipe), "--out-dir", str(tmp_path / "cut")]) == 130
    monkeypatch.setattr(NSPBatches, "build", original)
    capsys.readouterr()
    assert main(["run", str(recipe), "--out-dir", str(tmp_path / "cut")]) == 0
    assert "resume pretrain" in capsys.readouterr().err
    final = Path("pretrain") / "final"
    assert max_abs_diff(tmp_path / "cut" / "exact" / final, tmp_path / "reference" / "exact" / final) == 0.0


def test_evaluation_leaves_the_training_random_stream_alone(tmp_path):
    """An eval_fn that samples (as a generator's evaluation may) must not shift dropout after it."""
    from _training_toy import ToyClassifier, collate, toy_examples
    from hanformer.data.loader import ResumableLoader
    from hanformer.training import Trainer, TrainerConfig

    trainer = Trainer(ToyClassifier(), TrainerConfig(output_dir=str(tmp_path), progress=False, tensorboard=False),
                      ResumableLoader(toy_examples(8), collate, 4), lambda m: {"x": float(torch.rand(()))})
    before = torch.get_rng_state()
    trainer.evaluate()
    assert torch.equal(torch.get_rng_state(), before)
