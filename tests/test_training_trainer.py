"""The generic Trainer: exact resume, signals, checkpoints, NaN stop, optimizers, schedules."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _training_toy import ToyClassifier, collate, toy_examples  # noqa: E402
from hanformer.data.loader import ResumableLoader  # noqa: E402
from hanformer.errors import CheckpointError, ConfigError  # noqa: E402
from hanformer.training import Trainer, TrainerConfig, TrainingError, seed_everything  # noqa: E402
from hanformer.training.checkpointing import list_checkpoints  # noqa: E402
from hanformer.training.optim import Lamb, param_groups  # noqa: E402
from hanformer.training.progress import read_metrics  # noqa: E402
from hanformer.training.schedule import lr_factor  # noqa: E402
from hanformer.utils.config import load_config  # noqa: E402


def make(out: Path, steps: int = 8, dropout: float = 0.2, seed: int = 0, **kw) -> Trainer:
    seed_everything(seed)
    model = ToyClassifier(dropout=dropout)
    loader = ResumableLoader(toy_examples(40), collate, 8, seed=3)  # 5 batches/epoch: wraps
    # No peak_tflops: the default measures the MFU peak at every start, which must not disturb
    # the random streams a resumed run restores (with it set, resume tests cannot see that).
    settings = dict(output_dir=str(out), max_steps=steps, lr=0.05, warmup_steps=2, log_every=1,
                    progress=False, tensorboard=False)
    cfg = TrainerConfig(**{**settings, **kw})
    return Trainer(model, cfg, loader)


class InterruptAt:
    """Wraps a batch source and sends this process SIGINT while batch `n` is being consumed."""

    def __init__(self, inner, n: int) -> None:
        self.inner, self.n, self.count = inner, n, 0

    def next_batch(self):
        self.count += 1
        if self.count == self.n:
            os.kill(os.getpid(), signal.SIGINT)
        return self.inner.next_batch()

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, s):
        self.inner.load_state_dict(s)


def losses(out: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(out, "train")]


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    full = make(tmp_path / "full", grad_accum=2)
    full.train()
    reference = losses(tmp_path / "full")
    assert len(reference) == 8

    part = make(tmp_path / "part", grad_accum=2)
    part.train_batches = InterruptAt(part.train_batches, 7)  # during step 4
    result = part.train()
    assert result.stopped == "interrupted" and result.step == 4
    assert result.final_dir is None and result.checkpoint.name == "step-00000004"
    # A fresh process: another init seed, so everything must come from the checkpoint.
    resumed = make(tmp_path / "part", seed=123, grad_accum=2)
    result = resumed.train(resume=True)
    assert result.stopped == "max_steps" and result.step == 8
    got = losses(tmp_path / "part")
    assert [s for s, _ in got] == list(range(1, 9))
    assert [v for _, v in got] == pytest.approx([v for _, v in reference], abs=1e-6)
    assert torch.equal(full.model.out.weight, resumed.model.out.weight)
    assert (tmp_path / "part" / "final" / "model.pt").is_file()


def test_checkpoints_every_n_keep_last(tmp_path):
    t = make(tmp_path, steps=7, save_every=2, keep_last=2)
    t.train()
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step-00000006", "step-00000007"]
    state = json.loads((tmp_path / "checkpoints" / "step-00000007" / "trainer_state.json").read_text())
    assert state["step"] == 7
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


def test_resume_into_another_model_shape_is_refused(tmp_path):
    make(tmp_path, steps=2).train()
    seed_everything(0)
    other = Trainer(ToyClassifier(hidden=8), TrainerConfig(output_dir=str(tmp_path), max_steps=4, progress=False,
                                                            tensorboard=False, peak_tflops=1.0),
                    ResumableLoader(toy_examples(40), collate, 8))
    with pytest.raises(CheckpointError, match=r"another model shape: emb.weight is \(50, 16\) there but \(50, 8\) here"):
        other.train(resume=True)


def test_nan_loss_stops_with_step_and_last_checkpoint(tmp_path):
    t = make(tmp_path, steps=10, save_every=2, log_every=5)

    class Poison:
        def __init__(self, inner):
            self.inner, self.n = inner, 0

        def next_batch(self):
            self.n += 1
            b = self.inner.next_batch()
            if self.n == 3:
                t.model.out.bias.data.fill_(float("nan"))
            return b

        def state_dict(self):
            return self.inner.state_dict()

        def load_state_dict(self, s):
            self.inner.load_state_dict(s)

    t.train_batches = Poison(t.train_batches)
    with pytest.raises(TrainingError, match=r"NaN/inf at step 3; the last good checkpoint is .*step-00000002"):
        t.train()


def test_time_budget_stops_and_decays(tmp_path):
    t = make(tmp_path, steps=10_000, max_time="1s")
    result = t.train()
    assert result.stopped == "max_time" and 0 < result.step < 10_000
    assert result.elapsed >= 1.0
    last_lr = read_metrics(tmp_path, "train")[-1]["lr"]
    assert last_lr < 0.05 * 0.5  # the schedule followed time, not the 10,000 steps


def test_eval_hook_best_model_and_early_stopping(tmp_path):
    scores = iter([0.5, 0.7, 0.6, 0.6, 0.6])
    t = make(tmp_path, steps=20, eval_every=2, metric_for_best="acc", early_stopping_patience=2)
    t.eval_fn = lambda model: {"acc": next(scores)}
    result = t.train()
    assert result.stopped == "early_stopping" and result.step == 8
    assert result.best_metric == 0.7
    best = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert best == {"step": 4, "acc": 0.7}
    evals = read_metrics(tmp_path, "eval")
    assert [e["step"] for e in evals] == [2, 4, 6, 8]


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="fp16' needs a CUDA device"):
        make(tmp_path, precision="fp16")


def test_bf16_autocast_trains(tmp_path):
    result = make(tmp_path, steps=4, precision="bf16").train()
    assert result.train_loss is not None and result.train_loss == result.train_loss


def test_config_from_toml_names_unknown_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rate'"):
        load_config(TrainerConfig, {"learning_rate": 1e-3}, "pretrain.toml")
    with pytest.raises(ConfigError, match="cannot read duration"):
        load_config(TrainerConfig, {"max_time": "soon"})


def test_no_weight_decay_on_biases_and_norms():
    groups = param_groups(ToyClassifier(), 0.01)
    decayed = {id(p) for p in groups[0]["params"]}
    m = ToyClassifier()
    groups = param_groups(m, 0.01)
    decayed = {id(p) for p in groups[0]["params"]}
    assert decayed == {id(m.emb.weight), id(m.out.weight)}
    assert groups[1]["weight_decay"] == 0.0
    assert {id(p) for p in groups[1]["params"]} == {id(m.norm.weight), id(m.norm.bias), id(m.out.bias)}


def test_lamb_trust_ratio_and_descent():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 4))
    opt = Lamb([w], lr=0.1)
    w.grad = torch.ones(4, 4)
    before = w.detach().clone()
    opt.step()
    # First Adam update is sign(grad) = 1 everywhere; LAMB rescales it to ||w|| per tensor.
    step = before - w.detach()
    assert torch.allclose(step, torch.full((4, 4), 0.1 * before.norm().item() / 4), atol=1e-5)


@pytest.mark.parametrize("kind,expected", [("linear", [0.5, 1.0, 1.0, 0.5, 0.0]),
                                           ("cosine", [0.5, 1.0, 1.0, 0.5, 0.0])])
def test_schedule_warmup_then_decay(kind, expected):
    got = [lr_factor(0, 0.0, 2, kind, 0.0), lr_factor(1, 0.0, 2, kind, 0.0),
           lr_factor(2, 0.0, 2, kind, 0.0), lr_factor(5, 0.5, 2, kind, 0.0), lr_factor(9, 1.0, 2, kind, 0.0)]
    assert got == pytest.approx(expected)
    assert lr_factor(9, 1.0, 2, kind, 0.1) == pytest.approx(0.1)


def test_time_budget_warms_up_over_a_fraction_of_the_budget(tmp_path):
    # progress is the whole run's here (warmup included): 10% warmup, then linear decay to 0
    got = [lr_factor(s, p, 0, "linear", 0.0, 0.1) for s, p in [(0, 0.05), (3, 0.1), (7, 0.55), (9, 1.0)]]
    assert got == pytest.approx([0.5, 1.0, 0.5, 0.0])
    trainer = make(tmp_path, steps=100000, warmup_steps=0, warmup_ratio=0.1, max_time="10m")
    assert trainer.warmup_by_time and trainer.warmup_steps == 0  # not 10% of the step cap
    trainer.elapsed, trainer.step = 30.0, 5
    assert trainer._progress(trainer.elapsed) == pytest.approx(0.05)


def test_resumed_message_is_printed_without_a_progress_bar(tmp_path, capsys):
    first = make(tmp_path, steps=2)
    first.train()
    capsys.readouterr()
    again = make(tmp_path, steps=4)  # progress=False, as --no-progress
    again.train(resume="auto")
    err = capsys.readouterr().err
    assert f"resumed from {again.output_dir / 'checkpoints' / 'step-00000002'} at step 2" in err
    assert "train:" not in err and "it/s" not in err and "step/s" not in err  # still no bar
