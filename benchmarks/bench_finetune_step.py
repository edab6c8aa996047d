"""Fine-tuning step: hanformer's task heads vs transformers' (SDPA), side by side.

Three tasks, each hanformer's head against the transformers class of the same name:

    seq    BertForSequenceClassification  2 labels, one per sequence (pooled [CLS])
    token  BertForTokenClassification     9 labels, one per real token (-100 on [CLS]/[SEP]/padding)
    qa     BertForQuestionAnswering       start_positions/end_positions inside the real tokens

One step = forward with the task loss + backward + AdamW step (the pretraining bench's fused
AdamW, no decay on biases and LayerNorms), on the same batches, dropout on. Both models start
from the same weights (ours is loaded from the reference's checkpoint), and their eval-mode
losses on the first batch are printed as a check. Batches: `--batch` sentence pairs of `--seq`
tokens (fixed) or of 16..seq real tokens padded to the longest (variable), as in the pretraining
bench but without masking.

    python benchmarks/bench_finetune_step.py                      # mini, all tasks, fp32(+bf16 if native)
    python benchmarks/bench_finetune_step.py --configs mini,small --tasks seq,qa --lengths variable

Tokens/s counts real (non-padding) tokens only. MFU counts useful work only (see the printed
formula) against the GEMM rate measured during the run in the same dtype.

QA loss: transformers' span softmax runs over every position, padding included; ours leaves
padding out (an answer cannot lie there). With variable lengths the two losses therefore differ;
the check also prints the reference's loss recomputed with padding left out, which must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import common  # noqa: E402
from bench_pretrain_step import DTYPES, make_step  # noqa: E402  (same AdamW and step as pretraining)

PRESETS = common.PRESETS
# task -> (class name in both libraries, num_labels)
TASKS = {"seq": ("BertForSequenceClassification", 2), "token": ("BertForTokenClassification", 9),
         "qa": ("BertForQuestionAnswering", 2)}

FLOP_FORMULA = (
    "useful FLOPs per training step = 3 x forward (backward = 2 x forward), forward =\n"
    "    2*L*(4*H^2 + 2*H*I) * real_tokens            (Q,K,V,O and feed-forward on real tokens)\n"
    "  + 4*L*H * sum(n_i^2)                          (QK^T and PV within each sequence of n_i real tokens)\n"
    "  + head: seq   2*(H^2 + 2*H) * batch           (pooler + 2-way classifier)\n"
    "          token 2*H*9 * real_tokens             (9-way classifier on every real token)\n"
    "          qa    2*H*2 * real_tokens             (start/end logits on every real token)\n"
    "  L layers, H hidden, I intermediate; padding counts 0; embeddings and losses are not counted.")


def reference_model(task: str, preset: str, vocab: int) -> torch.nn.Module:
    import transformers

    name, num_labels = TASKS[task]
    torch.manual_seed(0)
    return getattr(transformers, name)(common.hf_config(preset, vocab, num_labels=num_labels))


def our_model(task: str, reference: torch.nn.Module) -> torch.nn.Module:
    """hanformer's head of the same name with the reference's weights (through its checkpoint)."""
    from hanformer.models.bert import heads

    return common.same_weights(reference, getattr(heads, TASKS[task][0]))


def task_batches(task: str, n: int, batch: int, seq: int, vocab: int, variable: bool,
                 seed: int) -> list[dict[str, torch.Tensor]]:
    """The pretraining bench's sentence pairs (no masking) with labels of the task."""
    g = torch.Generator().manual_seed(seed + 1)
    out = []
    for b in common.make_batches(n, batch, seq, vocab, variable, seed, mask_prob=0.0):
        ids, real = b["input_ids"], b["attention_mask"].bool()
        item = {"input_ids": ids, "attention_mask": b["attention_mask"], "token_type_ids": b["token_type_ids"]}
        if task == "seq":
            item["labels"] = torch.randint(0, TASKS[task][1], (batch,), generator=g)
        elif task == "token":
            labels = torch.randint(0, TASKS[task][1], ids.shape, generator=g)
            item["labels"] = labels.masked_fill(~real | (ids < common.SPECIAL), -100)
        else:  # an answer span of up to 30 tokens between [CLS] and the final [SEP]
            lengths = real.sum(1)
            start = (torch.rand(batch, generator=g) * (lengths - 2)).long() + 1
            span = torch.randint(0, 30, (batch,), generator=g)
            item["start_positions"] = start
            item["end_positions"] = torch.minimum(start + span, lengths - 2)
        out.append(item)
    return out


def head_flops(task: str, hidden: int, lengths: list[int]) -> float:
    if task == "seq":
        return 2.0 * (hidden**2 + 2 * hidden) * len(lengths)
    return 2.0 * hidden * TASKS[task][1] * sum(lengths)


def step_flops(task: str, layers: int, hidden: int, vocab: int, lengths: list[int]) -> float:
    encoder = common.bert_forward_flops(layers, hidden, 4 * hidden, vocab, lengths, 0, mlm=False, pooler=False)
    return 3 * (encoder + head_flops(task, hidden, lengths))


def qa_loss_without_padding(out: Any, batch: dict[str, torch.Tensor]) -> float:
    """transformers' QA loss with padding left out of the span softmax (what ours computes)."""
    pad = batch["attention_mask"] == 0
    losses = [F.cross_entropy(logits.float().masked_fill(pad, torch.finfo(torch.float32).min), target)
              for logits, target in ((out.start_logits, batch["start_positions"]),
                                     (out.end_logits, batch["end_positions"]))]
    return float(sum(losses) / 2)


def memory_probe(args: argparse.Namespace) -> None:
    """Child process: peak memory of one step of one implementation (see common.py)."""
    device = torch.device(args.device)
    baseline = common.rss_bytes()
    reference = reference_model(args.tasks, args.configs, args.vocab)
    model = reference if args.impls == "reference" else our_model(args.tasks, reference)
    if model is not reference:
        del reference
    model.to(device)
    batches = [{k: v.to(device) for k, v in b.items()}
               for b in task_batches(args.tasks, 1, args.batch, args.seq, args.vocab, args.lengths == "variable",
                                     args.seed)]
    step = make_step(model, DTYPES[args.dtypes], device)
    print(json.dumps(common.step_peak_memory(lambda: step(batches[0]), device, baseline)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="mini", help="model presets, comma-separated (e.g. mini,small)")
    p.add_argument("--tasks", default="seq,token,qa", help="seq, token and/or qa")
    common.add_step_arguments(p)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args)
        return

    device = torch.device(args.device)
    facts, dtypes, peaks = common.machine_and_dtypes(device, args.dtypes, args.force_bf16)
    print(FLOP_FORMULA)
    impls = args.impls.split(",")
    kinds = args.lengths.split(",")
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []
    for preset in args.configs.split(","):
        layers, hidden, heads = PRESETS[preset]
        for task in args.tasks.split(","):
            reference = reference_model(task, preset, args.vocab)
            models = {"reference": reference, "ours": our_model(task, reference)}
            for m in models.values():
                m.to(device)
            all_batches = {kind: [{k: v.to(device) for k, v in b.items()}
                                  for b in task_batches(task, args.batches, args.batch, args.seq, args.vocab,
                                                        kind == "variable", args.seed)]
                           for kind in kinds}
            # Same weights, same batch, no dropout: the losses must agree (before any training step).
            with torch.no_grad():
                for kind in kinds:
                    batch0 = all_batches[kind][0]
                    outs = {n: m.eval()(**batch0) for n, m in models.items()}
                    text = ", ".join(f"{n}={float(o.loss):.6f}" for n, o in outs.items())
                    if task == "qa":
                        text += (f", reference with padding left out of the span softmax="
                                 f"{qa_loss_without_padding(outs['reference'], batch0):.6f}")
                    print(f"[{preset} {task} {kind}] eval loss on batch 0 (same weights): {text}")
                    del outs
            for lengths_kind in kinds:
                batches = all_batches[lengths_kind]
                lengths = [b["attention_mask"].sum(1).tolist() for b in batches]
                for dname in dtypes:
                    dtype = DTYPES[dname]
                    steps = {n: make_step(models[n], dtype, device) for n in impls}
                    work = [step_flops(task, layers, hidden, args.vocab, n) for n in lengths]
                    timing = common.time_steps(steps, batches, lengths, work, dtype, device, args.warmup,
                                               args.repeats)
                    mem = common.peak_memories(__file__, impls, [
                        "--configs", preset, "--tasks", task, "--dtypes", dname, "--lengths", lengths_kind,
                        "--batch", str(args.batch), "--seq", str(args.seq), "--vocab", str(args.vocab),
                        "--seed", str(args.seed), "--device", args.device,
                        "--threads", str(torch.get_num_threads())], not args.no_memory)
                    ratio, cells = common.comparison_cells(timing, mem)
                    rows.append([preset, task, dname, lengths_kind, *cells])
                    results.append({"config": preset, "task": task, "dtype": dname, "lengths": lengths_kind,
                                    **common.timing_record(timing), "memory_mib": mem, "ratio": ratio})
                    print(common.timing_line(f"{preset} {task} {dname} {lengths_kind}", timing, ratio), flush=True)
                    del steps
            del models, reference, all_batches
    common.finish_step_benchmark(
        "finetune_step", f"Fine-tuning step, batch {args.batch}, seq {args.seq}, vocab {args.vocab}, AdamW; "
        f"real tokens/s (median of {args.repeats}, alternating)", ["config", "task", "dtype", "lengths"], rows,
        {"facts": facts, "gemm_peak_flops": peaks, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
