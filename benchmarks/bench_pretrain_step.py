"""Pretraining step: hanformer's BertForPreTraining vs transformers' (SDPA), side by side.

One step = forward (masked-LM + next-sentence loss) + backward + AdamW step, on the same
batches and the same optimizer (fused AdamW, no decay on biases and LayerNorms, as the
Trainer builds it). Both models start from the same weights (ours is loaded from the
reference's checkpoint), and their eval-mode losses on the first batch are printed as a check.
Batches: `--batch` sequences of `--seq` tokens (fixed) or of 16..seq real tokens padded to the
longest (variable), 15% of the real non-special tokens masked, segments A/B, random NSP labels.

    python benchmarks/bench_pretrain_step.py                      # mini+small, fp32(+bf16 if native)
    python benchmarks/bench_pretrain_step.py --configs mini --lengths variable --repeats 5

Tokens/s counts real (non-padding) tokens only. MFU counts useful work only (see the printed
formula) against the measured GEMM peak of the same dtype.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

import common  # noqa: E402

DTYPES = common.DTYPES
PRESETS = common.PRESETS
make_batches = common.make_batches


def reference_model(preset: str, vocab: int) -> torch.nn.Module:
    import transformers

    torch.manual_seed(0)
    return transformers.BertForPreTraining(common.hf_config(preset, vocab))


def our_model(reference: torch.nn.Module) -> torch.nn.Module:
    """hanformer's BertForPreTraining with the reference's weights (through its checkpoint)."""
    from hanformer.models.bert.heads import BertForPreTraining

    return common.same_weights(reference, BertForPreTraining)


def adamw(model: torch.nn.Module) -> torch.optim.Optimizer:
    """The Trainer's AdamW: fused kernel, decay on matrices only."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                             lr=1e-4, fused=True)


def make_step(model: torch.nn.Module, dtype: torch.dtype, device: torch.device):
    opt = adamw(model)
    model.train()
    ctx = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype != torch.float32 else nullcontext

    def step(batch: dict[str, torch.Tensor]) -> None:
        with ctx():
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def batch_stats(batches: list[dict[str, torch.Tensor]]) -> tuple[list[list[int]], list[int]]:
    lengths = [b["attention_mask"].sum(1).tolist() for b in batches]
    masked = [int((b["labels"] != -100).sum()) for b in batches]
    return lengths, masked


def memory_probe(args: argparse.Namespace) -> None:
    """Child process: peak memory of one step of one implementation (see common.py)."""
    device = torch.device(args.device)
    baseline = common.rss_bytes()
    reference = reference_model(args.configs, args.vocab)
    model = reference if args.impls == "reference" else our_model(reference)
    if model is not reference:
        del reference
    model.to(device)
    batches = [{k: v.to(device) for k, v in b.items()}
               for b in make_batches(1, args.batch, args.seq, args.vocab, args.lengths == "variable", args.seed)]
    step = make_step(model, DTYPES[args.dtypes], device)
    print(json.dumps(common.step_peak_memory(lambda: step(batches[0]), device, baseline)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="mini,small", help="model presets, comma-separated")
    common.add_step_arguments(p)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile our Transformer blocks (dynamic shapes); the first step's time, "
                        "compilation included, is printed separately and not part of the medians")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args)
        return

    device = torch.device(args.device)
    facts, dtypes, peaks = common.machine_and_dtypes(device, args.dtypes, args.force_bf16)
    print(common.FLOP_FORMULA)
    impls = args.impls.split(",")
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []
    for preset in args.configs.split(","):
        layers, hidden, heads = PRESETS[preset]
        reference = reference_model(preset, args.vocab)
        models = {"reference": reference, "ours": our_model(reference)}
        for m in models.values():
            m.to(device)
        if args.compile:
            blocks = models["ours"].bert.layers
            for i, block in enumerate(blocks):
                blocks[i] = torch.compile(block, dynamic=True)
        kinds = args.lengths.split(",")
        all_batches = {kind: [{k: v.to(device) for k, v in b.items()}
                              for b in make_batches(args.batches, args.batch, args.seq, args.vocab,
                                                    kind == "variable", args.seed)]
                       for kind in kinds}
        # Same weights, same batch, no dropout: the losses must agree (before any training step).
        with torch.no_grad():
            for kind in kinds:
                check = {n: float(m.eval()(**all_batches[kind][0]).loss) for n, m in models.items()}
                print(f"[{preset} {kind}] eval loss on batch 0 (same weights): "
                      + ", ".join(f"{n}={v:.6f}" for n, v in check.items()))
        for lengths_kind in kinds:
            batches = all_batches[lengths_kind]
            lengths, masked = batch_stats(batches)
            for dname in dtypes:
                dtype = DTYPES[dname]
                steps = {n: make_step(models[n], dtype, device) for n in impls}
                if args.compile and "ours" in steps:
                    with common.Timer(device) as first:
                        steps["ours"](batches[0])
                    print(f"[{preset} {dname} {lengths_kind}] ours, first step with compilation: "
                          f"{first.seconds:.1f}s", flush=True)
                work = [3 * common.bert_forward_flops(layers, hidden, 4 * hidden, args.vocab, n, m)
                        for n, m in zip(lengths, masked, strict=True)]
                timing = common.time_steps(steps, batches, lengths, work, dtype, device, args.warmup, args.repeats)
                mem = common.peak_memories(__file__, impls, [
                    "--configs", preset, "--dtypes", dname, "--lengths", lengths_kind,
                    "--batch", str(args.batch), "--seq", str(args.seq), "--vocab", str(args.vocab),
                    "--seed", str(args.seed), "--device", args.device, "--threads", str(torch.get_num_threads())],
                    not args.no_memory)
                ratio, cells = common.comparison_cells(timing, mem)
                rows.append([preset, dname, lengths_kind, *cells])
                results.append({"config": preset, "dtype": dname, "lengths": lengths_kind,
                                **common.timing_record(timing), "memory_mib": mem, "ratio": ratio})
                print(common.timing_line(f"{preset} {dname} {lengths_kind}", timing, ratio), flush=True)
        del models, reference
    common.finish_step_benchmark(
        "pretrain_step", f"Pretraining step, batch {args.batch}, seq {args.seq}, vocab {args.vocab}, AdamW; "
        f"real tokens/s (median of {args.repeats}, alternating)", ["config", "dtype", "lengths"], rows,
        {"facts": facts, "gemm_peak_flops": peaks, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
