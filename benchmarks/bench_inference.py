"""Inference: hanformer's BertForSequenceClassification vs transformers' (SDPA), no gradients.

Both models hold the same weights (ours is loaded from the reference's checkpoint); their
logits on the first batch are compared as a check. Measured alternately in one process:

* batches of `--batch` sequences, fixed length `--seq` or variable 16..seq (padded to the
  longest), reported as real (non-padding) tokens per second;
* batch-1 latency: one sequence of `--latency-len` tokens, milliseconds per call.

    python benchmarks/bench_inference.py
    python benchmarks/bench_inference.py --configs mini,small,base --repeats 7
"""

from __future__ import annotations

import argparse
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

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def models(preset: str, vocab: int, device: torch.device) -> dict[str, torch.nn.Module]:
    import transformers

    from hanformer.models.bert.heads import BertForSequenceClassification

    torch.manual_seed(0)
    reference = transformers.BertForSequenceClassification(common.hf_config(preset, vocab, num_labels=2))
    ours = common.same_weights(reference, BertForSequenceClassification)
    return {"reference": reference.to(device).eval(), "ours": ours.to(device).eval()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="mini,small", help="model presets, comma-separated")
    p.add_argument("--dtypes", default="fp32,bf16", help="fp32 and/or bf16 (autocast; skipped where not native)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--latency-len", type=int, default=32, help="tokens of the batch-1 latency sequence")
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--latency-repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force-bf16", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    facts = common.machine_facts(device)
    common.print_facts(facts)
    dtypes = [d for d in args.dtypes.split(",") if d]
    if "bf16" in dtypes and not (facts["bf16_native"] or args.force_bf16):
        print("bf16: skipped, no native bfloat16 matmul on this CPU (pass --force-bf16 to run it anyway)")
        dtypes.remove("bf16")

    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []
    keys = ("input_ids", "attention_mask", "token_type_ids")
    for preset in args.configs.split(","):
        ms = models(preset, args.vocab, device)
        workloads = {}
        for kind in ("fixed", "variable"):
            batches = common.make_batches(3, args.batch, args.seq, args.vocab, kind == "variable", seed=1)
            workloads[kind] = [{k: b[k].to(device) for k in keys} for b in batches]
        single = common.make_batches(1, 1, args.latency_len, args.vocab, False, seed=2)[0]
        workloads["batch-1"] = [{k: single[k].to(device) for k in keys}]
        with torch.no_grad():
            first = workloads["variable"][0]
            diff = (ms["reference"](**first).logits - ms["ours"](**first).logits).abs().max().item()
        print(f"[{preset}] max |logits difference| on a variable-length batch: {diff:.2e}")
        for dname in dtypes:
            ctx = (lambda d=DTYPES[dname]: torch.autocast(device.type, dtype=d)) if dname != "fp32" else nullcontext
            for kind, batches in workloads.items():
                def run(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]] = batches,
                        ctx: Any = ctx):
                    def call(round_index: int) -> None:
                        with torch.inference_mode(), ctx():
                            model(**batches[round_index % len(batches)])
                    return call

                latency = kind == "batch-1"
                times = common.alternate({n: run(m) for n, m in ms.items()}, args.warmup,
                                         args.latency_repeats if latency else args.repeats, device)
                med = {n: common.median(t) for n, t in times.items()}
                real = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
                if latency:
                    ref_v, our_v = 1000 * med["reference"], 1000 * med["ours"]
                    ratio = med["reference"] / med["ours"]
                    unit = "ms"
                else:
                    ref_v, our_v = real / med["reference"], real / med["ours"]
                    ratio = our_v / ref_v
                    unit = "tok/s"
                rows.append([preset, dname, kind, unit, ref_v, our_v, f"{ratio:.2f}x"])
                results.append({"config": preset, "dtype": dname, "workload": kind, "seconds": times,
                                "median_s": med, "real_tokens": real, "speedup": ratio})
                print(f"[{preset} {dname} {kind}] reference {ref_v:,.1f} {unit}, ours {our_v:,.1f} {unit}, "
                      f"speed-up {ratio:.2f}x", flush=True)
        del ms
    print()
    print(f"Inference (sequence classification, no grad), batch {args.batch}, seq {args.seq}; "
          f"batch-1 latency at {args.latency_len} tokens; medians, alternating")
    print(common.format_table(["config", "dtype", "workload", "unit", "reference", "ours", "speed-up"], rows))
    path = common.write_results("inference", {"facts": facts, "args": vars(args), "results": results})
    print(f"results: {path.relative_to(common.BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()
