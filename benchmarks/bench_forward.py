"""Forward pass: hanformer's BERT vs transformers' (SDPA attention), side by side in one process.

Same weights, same batches, same dtype; the two models take turns on every repeat so
machine noise hits both alike. Reports real (non-padding) tokens per second, the ratio
ours / reference, peak memory of one forward, and the max difference of the outputs.

    python benchmarks/bench_forward.py            # short: mini and small, fp32 and bf16, fixed and variable
    python benchmarks/bench_forward.py --full     # mini, small, base x both heads x fp32/bf16 x fixed/variable
    python benchmarks/bench_forward.py --configs base --dtypes bfloat16 --device cuda --seq-len 512

"Variable" batches have lengths drawn uniformly from [seq_len/8, seq_len] (about 45% padding),
padded to the longest, as a tokenizer with padding=True produces them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import common  # noqa: E402

HEADS = {"model": ("BertModel", "last_hidden_state"),
         "cls": ("BertForSequenceClassification", "logits")}


def make_batch(batch_size: int, seq_len: int, variable: bool, vocab: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if variable:
        lengths = torch.randint(max(2, seq_len // 8), seq_len + 1, (batch_size,), generator=g)
    else:
        lengths = torch.full((batch_size,), seq_len)
    width = int(lengths.max())
    ids = torch.randint(1, vocab, (batch_size, width), generator=g)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    ids = ids * mask
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}, int(lengths.sum())


def build(impl: str, config_name: str, head: str, dtype: torch.dtype, args, workdir: Path):
    """Our model or transformers' with the same weights (saved once by us, loaded by both)."""
    from hanformer.models.bert.config import BertConfig
    from hanformer.models.registry import architectures

    class_name, _ = HEADS[head]
    path = workdir / f"{config_name}-{head}"
    if not (path / "model.safetensors").exists():
        config = BertConfig.preset(config_name, vocab_size=args.vocab,
                                   max_position_embeddings=max(512, args.seq_len))
        torch.manual_seed(0)
        architectures("bert")[class_name](config).save_pretrained(path)
    if impl == "ours":
        model = architectures("bert")[class_name].from_pretrained(path)
    else:
        import transformers

        transformers.logging.set_verbosity_error()
        model = getattr(transformers, class_name).from_pretrained(path, attn_implementation="sdpa")
    return model.to(args.device, dtype).eval()


def batches_for(variable: bool, args):
    return [make_batch(args.batch_size, args.seq_len, variable, args.vocab, args.device, seed) for seed in range(4)]


def forward_all(model, batches) -> None:
    with torch.inference_mode():
        for batch, _ in batches:
            model(**batch)


def memory_probe(args) -> None:
    """In a fresh process: peak memory of one forward over the 4 batches (see common.py)."""
    baseline = common.rss_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        model = build(args.impl, args.configs, args.heads, getattr(torch, args.dtypes), args, Path(tmp))
        batches = batches_for(args.lengths == "variable", args)
        print(json.dumps(common.step_peak_memory(lambda: forward_all(model, batches), args.device, baseline)))


def run_case(config_name: str, head: str, dtype: torch.dtype, variable: bool, args, workdir: Path) -> dict:
    _, field = HEADS[head]
    ours = build("ours", config_name, head, dtype, args, workdir)
    ref = build("ref", config_name, head, dtype, args, workdir)
    batches = batches_for(variable, args)
    real_tokens = sum(n for _, n in batches)

    # Same answer first (real tokens only; padding positions are meaningless).
    with torch.inference_mode():
        batch, _ = batches[0]
        a, b = getattr(ours(**batch), field), getattr(ref(**batch), field)
        if a.dim() == 3:
            keep = batch["attention_mask"].bool()
            a, b = a[keep], b[keep]
        max_diff = (a.float() - b.float()).abs().max().item()

    times = common.alternate({"ref": lambda _: forward_all(ref, batches), "ours": lambda _: forward_all(ours, batches)},
                             warmup=1, repeats=args.repeats, device=args.device)
    result = {name: real_tokens / common.median(t) for name, t in times.items()}
    result["diff"] = max_diff
    result["padding"] = 1 - real_tokens / sum(b["input_ids"].numel() for b, _ in batches)
    if args.memory and (common.memory_available() or args.device.startswith("cuda")):
        for impl in ("ours", "ref"):
            probe = common.memory_probe(__file__, [
                "--impl", impl, "--configs", config_name, "--heads", head, "--dtypes", str(dtype).split(".")[1],
                "--lengths", "variable" if variable else "fixed", "--batch-size", str(args.batch_size),
                "--seq-len", str(args.seq_len), "--vocab", str(args.vocab), "--device", args.device]
                + (["--threads", str(args.threads)] if args.threads else []))
            result[f"{impl}_mem"] = probe["step"] if probe else float("nan")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="the whole matrix: mini, small, base; both heads")
    p.add_argument("--configs", default=None, help="comma-separated presets (default: mini,small; --full adds base)")
    p.add_argument("--heads", default=None,
                   help="model (BertModel) and/or cls (BertForSequenceClassification); default: cls (--full: both)")
    p.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated: float32, bfloat16, float16")
    p.add_argument("--lengths", default="fixed,variable", help="fixed and/or variable")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    p.add_argument("--seq-len", type=int, default=128, help="(maximum) tokens per sentence")
    p.add_argument("--vocab", type=int, default=32000, help="vocabulary size")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds of 4 batches per model (alternating)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip the peak-memory probes (one fresh process per model and case)")
    p.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", default="ours", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args)
        return 0
    configs = (args.configs or ("mini,small,base" if args.full else "mini,small")).split(",")
    heads = (args.heads or ("model,cls" if args.full else "cls")).split(",")
    dtypes = [getattr(torch, d) for d in args.dtypes.split(",")]
    lengths = args.lengths.split(",")

    facts = common.machine_facts(args.device)
    print(f"forward pass: batch {args.batch_size}, seq {args.seq_len}, vocab {args.vocab}, 4 batches per round")
    common.print_facts(facts)
    headers = ["config", "head", "dtype", "lengths", "pad %", "ref tok/s", "ours tok/s", "ratio",
               "ref MiB", "ours MiB", "max diff"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config_name in configs:
            for head in heads:
                for dtype in dtypes:
                    for kind in lengths:
                        r = run_case(config_name, head, dtype, kind == "variable", args, Path(tmp))
                        row = [config_name, head, str(dtype).replace("torch.", ""), kind, 100 * r["padding"],
                               r["ref"], r["ours"], f"{r['ours'] / r['ref']:.2f}x",
                               r.get("ref_mem", float("nan")), r.get("ours_mem", float("nan")), f"{r['diff']:.1e}"]
                        rows.append(row)
                        print(" | ".join(common._fmt(c) for c in row), flush=True)
    print()
    print(common.format_table(headers, rows))
    path = common.write_results("forward", {"facts": facts, "args": vars(args), "headers": headers, "rows": rows})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
