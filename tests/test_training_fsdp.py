"""FSDP2 on CPU (gloo): two processes train, checkpoint (sharded) and export exactly as one does
(BERT, GPT and the encoder-decoder Transformer).

One torchrun launch runs every two-process scenario (tests/_fsdp_toy.py `main`); the tests
compare its results with one-process runs in this process, on the same global batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _fsdp_toy import tiny_model, train  # noqa: E402
from hanformer.errors import CheckpointError, ConfigError  # noqa: E402
from hanformer.models.bert.heads import BertForMaskedLM  # noqa: E402
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM  # noqa: E402
from hanformer.models.gpt.model import GPTForCausalLM  # noqa: E402
from hanformer.training.config import TrainerConfig  # noqa: E402
from hanformer.training.fsdp import check_shardable, checkpoint_blocks  # noqa: E402
from hanformer.training.sharded_checkpoint import check_global_batch  # noqa: E402

TOY = Path(__file__).parent / "_fsdp_toy.py"


@pytest.fixture(scope="module")
def two_process(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("fsdp2")
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", str(TOY), str(root)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, json.loads(proc.stdout.strip().splitlines()[-1])


FAMILY_CLASSES = {"gpt": GPTForCausalLM, "bert": BertForMaskedLM, "seq2seq": TransformerForSeq2SeqLM}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=k)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gpt", "bert", "seq2seq"])
def test_two_process_fsdp_matches_one_process(two_process, tmp_path, family):
    root, report = two_process
    # One plain process: micro-batch 4 x 2 accumulation steps = the two processes' global batch.
    single = train(tmp_path / "single", family, grad_accum=2)
    assert report[family]["losses"] == pytest.approx(single["losses"], abs=1e-5)
    # The final model is exported whole, in the single-file Hugging Face layout, from the shards.
    cls = FAMILY_CLASSES[family]
    final = Path(report[family]["final"])
    assert (final / "model.safetensors").is_file() and (final / "config.json").is_file()
    _assert_same_weights(_weights(cls.from_pretrained(final)), _weights(cls.from_pretrained(single["final"])))


@pytest.mark.slow
def test_sharded_checkpoint_layout_and_exact_resume_on_two_processes(two_process):
    root, report = two_process
    step = root / "gpt" / "checkpoints" / "step-00000002"
    assert sorted(p.name for p in (step / "sharded").iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    state = torch.load(step / "state.pt", weights_only=True)
    assert state["sharded"] and "model" not in state and "optimizer" not in state
    assert report["gpt_resumed"]["losses"] == report["gpt"]["losses"][2:]
    _assert_same_weights(_weights(GPTForCausalLM.from_pretrained(report["gpt_resumed"]["final"])),
                         _weights(GPTForCausalLM.from_pretrained(report["gpt"]["final"])))


@pytest.mark.slow
def test_sharded_checkpoint_resumes_on_one_process(two_process, tmp_path):
    root, report = two_process
    step = root / "gpt" / "checkpoints" / "step-00000002"
    # Two processes x grad_accum 1 written; one process keeps the global batch with grad_accum 2.
    with pytest.raises(CheckpointError, match=r"step-00000002: .*pass --grad-accum 2") as e:
        train(tmp_path / "wrong", "gpt", parallelism="fsdp", resume=str(step))
    assert "\n" not in str(e.value)
    resumed = train(tmp_path / "one", "gpt", parallelism="fsdp", grad_accum=2, resume=str(step))
    assert resumed["losses"] == pytest.approx(report["gpt"]["losses"][2:], abs=1e-6)
    _assert_same_weights(_weights(GPTForCausalLM.from_pretrained(resumed["final"])),
                         _weights(GPTForCausalLM.from_pretrained(report["gpt"]["final"])))


@pytest.mark.slow
def test_activation_checkpointing_on_two_processes_changes_nothing(two_process):
    _, report = two_process
    assert report["gpt_ac"]["losses"] == pytest.approx(report["gpt"]["losses"], abs=1e-6)


def test_cpu_offload_is_refused_where_it_means_nothing(tmp_path):
    # It moves FSDP's shards from a GPU's memory to the CPU's (torch's CPUOffloadPolicy); with no
    # GPU it must be a one-line error, not torch's "Cannot access accelerator device".
    with pytest.raises(ConfigError, match="cpu_offload .* needs parallelism"):
        TrainerConfig(cpu_offload=True).validate()
    with pytest.raises(ConfigError, match="cpu_offload .* computes on the CPU"):
        train(tmp_path / "offload", "gpt", parallelism="fsdp", cpu_offload=True)


@pytest.mark.parametrize("family", ["gpt", "bert", "seq2seq"])
def test_activation_checkpointing_gives_the_same_losses(tmp_path, family):
    # With dropout: the recomputed forward must replay the very masks the first one drew.
    def dropping() -> torch.nn.Module:
        return tiny_model(family, dropout=0.1)

    plain = train(tmp_path / "plain", family, make_model=dropping, steps=3)
    checkpointed = train(tmp_path / "ac", family, make_model=dropping, steps=3, activation_checkpointing=True)
    assert checkpointed["losses"] == pytest.approx(plain["losses"], abs=1e-6)
    # The wrappers are invisible in the exported checkpoint.
    cls = FAMILY_CLASSES[family]
    _assert_same_weights(_weights(cls.from_pretrained(checkpointed["final"])),
                         _weights(cls.from_pretrained(plain["final"])))


def test_sharded_checkpoint_of_another_model_is_a_one_line_error(tmp_path):
    train(tmp_path / "small", "gpt", parallelism="fsdp", steps=1)
    step = tmp_path / "small" / "checkpoints" / "step-00000001"
    with pytest.raises(CheckpointError, match=r"step-00000001: checkpoint is for another model shape") as e:
        train(tmp_path / "wide", "gpt", parallelism="fsdp", steps=2, resume=str(step),
              make_model=lambda: tiny_model("gpt", hidden=32))
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match=r"step-00000001: .*--parallelism fsdp"):
        train(tmp_path / "ddp", "gpt", steps=2, resume=str(step))


def test_world_size_that_does_not_divide_the_global_batch_is_a_one_line_error():
    state = {"sharded": True, "trainer": {"world_size": 2, "micro_batches_per_step": 2}}
    with pytest.raises(CheckpointError, match=r"ckpt: .*2 micro-batches per step .*3 processes cannot split") as e:
        check_global_batch(state, 3, 3, "ckpt")
    assert "\n" not in str(e.value)
    check_global_batch(state, 1, 2, "ckpt")  # one process x grad_accum 2: the same global batch


def test_bad_fsdp_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="65 processes but .* at most 64 processes"):
        check_shardable(tiny_model("gpt"), 65)
    with pytest.raises(ConfigError, match="fp16.*--precision bf16"):
        TrainerConfig(parallelism="fsdp", precision="fp16").validate()
    with pytest.raises(ConfigError, match="no Transformer blocks"):
        checkpoint_blocks(torch.nn.Linear(2, 2))
