"""DDP through torchrun on CPU (gloo): 2 processes equal 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _training_toy import run  # noqa: E402
from hanformer.training.progress import read_metrics  # noqa: E402

TOY = Path(__file__).parent / "_training_toy.py"


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path, capsys):
    # One process: micro-batch 4, 2 accumulation steps = global batch 8.
    run(str(tmp_path / "single"), batch_size=4, grad_accum=2, steps=5)
    single_weights = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["weights"]
    # Two processes: micro-batch 4 each, no accumulation = global batch 8.
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", str(TOY),
                           str(tmp_path / "ddp"), "4", "1", "5"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp_weights = json.loads(proc.stdout.strip().splitlines()[-1])["weights"]
    single = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "single", "train")]
    ddp = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "ddp", "train")]
    assert [s for s, _ in ddp] == [1, 2, 3, 4, 5]
    assert [v for _, v in ddp] == pytest.approx([v for _, v in single], abs=1e-5)
    assert ddp_weights == pytest.approx(single_weights, abs=1e-5)
    # Only rank 0 wrote checkpoints and the final model.
    assert [p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()] == ["step-00000005"]
