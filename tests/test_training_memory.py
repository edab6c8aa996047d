"""The memory estimator: within 10% of measured peaks, DeepSpeed's ZeRO totals, the CLI."""

from __future__ import annotations

import pytest

from hanformer.cli.main import main as cli_main
from hanformer.errors import ConfigError
from hanformer.training.config import TrainerConfig
from hanformer.training.memory import estimate_memory, largest_batch, model_config, parse_size
from hanformer.training.memory_probe import measure_peak

GPT = dict(n_layer=2, n_embd=64, n_head=2, vocab_size=500, n_positions=64)
BERT = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=256,
            vocab_size=500, max_position_embeddings=64)


@pytest.mark.parametrize("family, fields, batch, precision, optimizer, checkpointing, dropout", [
    ("gpt", GPT, 4, "fp32", "adamw", False, 0.0),
    ("gpt", GPT, 4, "bf16", "sgd", True, 0.0),
    ("bert", BERT, 8, "fp32", "adamw", False, 0.1),
    ("bert", BERT, 8, "bf16", "adamw", True, 0.0),
])
def test_estimate_is_within_ten_percent_of_the_measured_peak(family, fields, batch, precision, optimizer,
                                                            checkpointing, dropout):
    drop = (dict(resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout) if family == "gpt" else
            dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))
    config = model_config("tiny", family, **fields, **drop)
    trainer = TrainerConfig(precision=precision, optimizer=optimizer, activation_checkpointing=checkpointing,
                            device="cpu")
    measured = measure_peak(config, trainer, batch_size=batch, seq_len=64)
    est = estimate_memory(config, batch_size=batch, seq_len=64, precision=precision, optimizer=optimizer,
                          activation_checkpointing=checkpointing, fused_attention=dropout == 0)
    assert est.total == pytest.approx(measured, rel=0.10)


def test_model_states_follow_the_zero_formulas():
    config = model_config("base", "bert")
    psi = estimate_memory(config, batch_size=1, seq_len=8).settings["params"]

    def states(**kw):
        est = estimate_memory(config, batch_size=1, seq_len=8, **kw)
        return [est.line(n).bytes for n in ("parameters", "gradients", "optimizer states")]

    # Replicated (DDP): 4Ψ + 4Ψ + KΨ with K = 8 for Adam (fp32 moments), 4 for SGD momentum.
    assert states(world_size=8) == [4 * psi, 4 * psi, 8 * psi]
    assert states(world_size=8, optimizer="sgd")[2] == 4 * psi
    # ZeRO-3 (FSDP, bf16 mixed precision): DeepSpeed's (2 + 2 + 12)Ψ/N per device in all.
    assert sum(states(world_size=8, strategy="fsdp", precision="bf16")) == pytest.approx((2 + 2 + 12) * psi / 8)
    # ZeRO-2 shards the same states; what it adds is the gathered copy, a temporary.
    zero2 = estimate_memory(config, batch_size=1, seq_len=8, world_size=8, strategy="fsdp", precision="bf16",
                            reshard_after_forward=False)
    zero3 = estimate_memory(config, batch_size=1, seq_len=8, world_size=8, strategy="fsdp", precision="bf16")
    assert zero2.total > zero3.total


def test_largest_batch_is_the_last_that_fits():
    config = model_config("small", "gpt")
    device = parse_size("2GiB")
    best = largest_batch(config, device, seq_len=256, precision="bf16")
    assert best >= 1
    assert estimate_memory(config, batch_size=best, seq_len=256, precision="bf16").total <= device
    assert estimate_memory(config, batch_size=best + 1, seq_len=256, precision="bf16").total > device
    assert largest_batch(config, parse_size("1MiB"), seq_len=256) == 0


def test_bad_sizes_are_one_line_errors():
    with pytest.raises(ConfigError, match="80 gigs"):
        parse_size("80 gigs")
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        estimate_memory(model_config("tiny", "bert"), batch_size=0, seq_len=8)


def test_cli_prints_every_line_and_explains(capsys):
    assert cli_main(["memory", "--family", "gpt", "--preset", "tiny", "--batch-size", "4", "--seq-len", "64",
                     "--world-size", "2", "--strategy", "fsdp", "--precision", "bf16", "--device-memory",
                     "1GiB", "--explain"]) == 0
    out = capsys.readouterr().out
    for line in ("parameters", "gradients", "optimizer states", "activations", "temporaries", "total (peak"):
        assert line in out
    assert "4Ψ/N" in out and "ZeRO-3" in out and "largest batch per device that fits 1.00 GiB" in out
