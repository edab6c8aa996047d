"""What a run reports is honest: a time-budgeted bar counts the steps the budget allows (its ETA
agrees with "time left"), and an estimated MFU is labelled as one and never above 100%."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from _training_toy import ToyClassifier, collate, toy_examples  # noqa: E402
from hanformer.data.loader import ResumableLoader  # noqa: E402
from hanformer.training import Trainer, TrainerConfig  # noqa: E402
from hanformer.training import mfu as mfu_module  # noqa: E402
from hanformer.training.mfu import PeakFlops, measure_peak_flops  # noqa: E402
from hanformer.training.progress import ProgressBar, read_metrics  # noqa: E402

CPU = torch.device("cpu")


def test_a_time_budget_sets_the_bar_total_and_eta():
    bar = ProgressBar(1_000_000, 0, 100.0, enabled=True)
    try:
        assert bar.bar.total is None  # no rate yet: no made-up total
        bar.update(10, {"loss": 1.0, "lr": 1e-3}, elapsed=10.0)
        assert bar.bar.total == 100  # 1 step/s for the 90 s left, not the 1,000,000-step cap
        assert bar.bar.postfix.endswith("time left=0:01:30")
        line = tqdm.format_meter(n=10, total=bar.bar.total, elapsed=10.0)
        assert "00:10<01:30" in line  # ETA = time left
    finally:
        bar.close()


def test_the_step_cap_bounds_a_budgeted_bar_and_resumed_runs_use_their_own_rate():
    bar = ProgressBar(50, 40, 3600.0, enabled=True, initial_elapsed=1000.0)
    try:
        bar.update(45, {"loss": 1.0}, elapsed=1010.0)
        assert bar.bar.total == 50  # the budget would allow more: max_steps ends the run first
    finally:
        bar.close()
    assert ProgressBar(50, 40, 3600.0, enabled=False, initial_elapsed=1000.0).expected_total(45, 1100.0) == 50
    assert ProgressBar(10**6, 40, 1200.0, enabled=False, initial_elapsed=1000.0).expected_total(50, 1100.0) == 60
    assert ProgressBar(700, 0, None, enabled=False).expected_total(5, 1.0) == 700


def test_an_estimated_mfu_is_labelled():
    bar = ProgressBar(10, 0, None, enabled=True, mfu_estimated=True)
    try:
        bar.update(1, {"loss": 1.0, "mfu": 0.25}, elapsed=1.0)
        assert "mfu=≈25.0%" in bar.bar.postfix
    finally:
        bar.close()


def test_a_slow_probe_never_gives_an_mfu_above_one(tmp_path, monkeypatch):
    # A probe that ran while other work had the cores: 1 FLOP/s, far below what training reaches.
    monkeypatch.setattr(mfu_module, "measure_peak_flops", lambda device, dtype: 1.0)
    cfg = TrainerConfig(output_dir=str(tmp_path), max_steps=6, log_every=1, lr=0.05, progress=False,
                        tensorboard=False)
    Trainer(ToyClassifier(), cfg, ResumableLoader(toy_examples(16), collate, 4)).train()
    records = read_metrics(tmp_path, "train")
    assert len(records) == 6
    assert all(0 < r["mfu"] <= 1.0 and r["mfu_estimated"] is True for r in records)


def test_a_configured_peak_is_taken_as_given(tmp_path):
    peak = PeakFlops(2.0, CPU, torch.float32, measure=lambda d, t: pytest.fail("must not measure"))
    assert not peak.estimated and peak.value == 2e12
    assert peak.mfu(1e12) == 0.5 and peak.mfu(4e12) == 2.0  # a wrong --peak-tflops stays visible
    assert not peak.probe_if_due()


def test_the_estimate_is_re_measured_and_keeps_the_best():
    readings = iter([1e9, 5e9, 2e9])
    peak = PeakFlops(0.0, CPU, torch.float32, reprobe_seconds=0.0, measure=lambda d, t: next(readings))
    assert peak.estimated and peak.value == 1e9
    assert peak.probe_if_due() and peak.value == 5e9
    assert peak.probe_if_due() and peak.value == 5e9  # a slower reading does not lower it
    assert peak.mfu(2.5e9) == 0.5
    assert peak.mfu(1e10) == 1.0 and peak.value == 1e10  # training outran the probe: the probe read low


def test_measuring_the_peak_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    assert measure_peak_flops(CPU, torch.float32, n=64, repeats=2) > 0
    assert torch.equal(torch.get_rng_state(), before)
