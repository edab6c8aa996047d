"""The memory estimator against measured peaks of real training steps (CPU).

    python benchmarks/bench_memory_estimator.py            # one process, then two (torchrun, gloo)
    python benchmarks/bench_memory_estimator.py --no-fsdp  # one process only

Each row is one configuration: the estimated per-device peak (`hanformer.training.memory`),
the peak PyTorch's tensor-memory tracker measured over two steps
(`hanformer.training.memory_probe`), and their ratio. The two-process rows shard the model with
FSDP2 and report rank 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from hanformer.training.config import TrainerConfig
from hanformer.training.distributed import env_dist_info, init_distributed
from hanformer.training.memory import estimate_memory, model_config
from hanformer.training.memory_probe import measure_peak

GPT_SMALL = dict(n_layer=2, n_embd=64, n_head=2, vocab_size=500, n_positions=64)
GPT_WIDER = dict(n_layer=4, n_embd=128, n_head=4, vocab_size=1000, n_positions=128)
BERT_SMALL = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=256,
                  vocab_size=500, max_position_embeddings=64)
BERT_WIDER = dict(num_hidden_layers=4, hidden_size=128, num_attention_heads=4, intermediate_size=512,
                  vocab_size=1000, max_position_embeddings=128)

# family, model fields, batch, seq, precision, optimizer, activation checkpointing, dropout
CASES: list[tuple[str, dict[str, int], int, int, str, str, bool, float]] = [
    ("gpt", GPT_SMALL, 4, 64, "fp32", "adamw", False, 0.0),
    ("gpt", GPT_SMALL, 4, 64, "bf16", "adamw", False, 0.0),
    ("gpt", GPT_WIDER, 8, 128, "fp32", "sgd", True, 0.0),
    ("gpt", GPT_WIDER, 8, 128, "fp32", "adamw", False, 0.1),
    ("bert", BERT_SMALL, 8, 64, "fp32", "adamw", False, 0.0),
    ("bert", BERT_SMALL, 8, 64, "fp32", "adamw", False, 0.1),
    ("bert", BERT_WIDER, 8, 128, "bf16", "adamw", True, 0.0),
    ("bert", BERT_WIDER, 16, 128, "fp32", "sgd", False, 0.0),
]
# the same, sharded over two processes: ZeRO-3 and ZeRO-2 styles
FSDP_CASES: list[tuple[str, dict[str, int], int, int, str, str, bool, bool]] = [
    ("gpt", GPT_WIDER, 8, 128, "fp32", "adamw", False, True),
    ("gpt", GPT_WIDER, 8, 128, "fp32", "adamw", False, False),
    ("gpt", GPT_WIDER, 8, 128, "bf16", "adamw", True, True),
    ("bert", BERT_WIDER, 8, 128, "fp32", "adamw", False, True),
]


def case_config(family: str, fields: dict[str, int], dropout: float) -> Any:
    drop = (dict(resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout) if family == "gpt" else
            dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))
    return model_config("tiny", family, **fields, **drop)


def one_process(family: str, fields: dict[str, int], batch: int, seq: int, precision: str, optimizer: str,
                checkpointing: bool, dropout: float) -> dict[str, Any]:
    config = case_config(family, fields, dropout)
    trainer = TrainerConfig(precision=precision, optimizer=optimizer,  # type: ignore[arg-type]
                            activation_checkpointing=checkpointing, device="cpu")
    measured = measure_peak(config, trainer, batch_size=batch, seq_len=seq)
    # On CPU attention with dropout falls back to the unfused kernel, which keeps its scores.
    est = estimate_memory(config, batch_size=batch, seq_len=seq, precision=precision,  # type: ignore[arg-type]
                          optimizer=optimizer, activation_checkpointing=checkpointing,  # type: ignore[arg-type]
                          fused_attention=dropout == 0)
    name = f"{family} L{config_layers(config)} b{batch} s{seq} {precision} {optimizer}" + \
        (" ac" if checkpointing else "") + (f" drop{dropout:g}" if dropout else "")
    return {"config": name, "world": 1, "strategy": "-", "estimate": est.total, "measured": measured,
            "peak_at": est.peak_at}


def config_layers(config: Any) -> int:
    return int(getattr(config, "n_layer", None) or config.num_hidden_layers)


def fsdp_worker() -> None:
    """Under torchrun: measure every FSDP case on this rank; rank 0 prints the rows as JSON."""
    info = env_dist_info()
    init_distributed(torch.device("cpu"), info)
    rows = []
    for family, fields, batch, seq, precision, optimizer, checkpointing, reshard in FSDP_CASES:
        config = case_config(family, fields, 0.0)
        trainer = TrainerConfig(precision=precision, optimizer=optimizer,  # type: ignore[arg-type]
                                activation_checkpointing=checkpointing, device="cpu", parallelism="fsdp",
                                reshard_after_forward=reshard)
        measured = measure_peak(config, trainer, batch_size=batch, seq_len=seq, dist=info)
        est = estimate_memory(config, batch_size=batch, seq_len=seq, precision=precision,  # type: ignore[arg-type]
                              optimizer=optimizer, world_size=info.world_size,  # type: ignore[arg-type]
                              strategy="fsdp", reshard_after_forward=reshard, activation_checkpointing=checkpointing)
        rows.append({"config": f"{family} L{config_layers(config)} b{batch} s{seq} {precision} {optimizer}"
                     + (" ac" if checkpointing else ""), "world": info.world_size,
                     "strategy": "fsdp " + ("ZeRO-3" if reshard else "ZeRO-2"), "estimate": est.total,
                     "measured": measured, "peak_at": est.peak_at})
    if info.is_main:
        print(json.dumps(rows))


def two_processes() -> list[dict[str, Any]]:
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", __file__, "--fsdp-worker"],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    rows: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-fsdp", action="store_true", help="skip the two-process FSDP rows")
    parser.add_argument("--fsdp-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fsdp_worker:
        fsdp_worker()
        return
    torch.set_num_threads(1)
    rows = [one_process(*case) for case in CASES]
    if not args.no_fsdp:
        rows += two_processes()
    print(f"| {'config':<38} | N | strategy     | estimate MiB | measured MiB | ratio | peak at")
    print(f"|{'-' * 40}|---|--------------|--------------|--------------|-------|--------")
    for r in rows:
        print(f"| {r['config']:<38} | {r['world']} | {r['strategy']:<12} | {r['estimate'] / 2**20:>12.2f} | "
              f"{r['measured'] / 2**20:>12.2f} | {r['estimate'] / r['measured']:.3f} | {r['peak_at']}")


if __name__ == "__main__":
    main()
