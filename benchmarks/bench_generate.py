"""Text generation: hanformer's decoding loop + KV cache vs transformers' `generate`, side by side.

Same weights (transformers' GPT2LMHeadModel is loaded from the checkpoint our GPTForCausalLM
saves), same prompts, greedy decoding of exactly `--new-tokens` tokens (no EOS), KV cache on in
both. The two take turns on every repeat (see common.py) and the generated ids are compared, so
the speed-up is for identical output. Batch 1 measures per-token overhead (what dominates
interactive use on a CPU); batch 8 uses prompts of different lengths, left-padded.

    python benchmarks/bench_generate.py                       # presets small and gpt2-small, batch 1 and 8
    python benchmarks/bench_generate.py --presets tiny --batches 1 --new-tokens 64 --threads 2

Reports generated tokens per second (batch x new tokens / seconds, prefill included), the
ratio ours / transformers, and the peak memory of one generate call above the memory before it
(measured in a fresh process per implementation, see common.py).
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
from common import alternate, format_table, machine_facts, median, print_facts, write_results  # noqa: E402


def prompts(batch: int, prompt_len: int, vocab: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded random prompts; with batch > 1 their lengths range over [prompt_len/2, prompt_len]."""
    g = torch.Generator().manual_seed(seed)
    lengths = [prompt_len] if batch == 1 else torch.randint(prompt_len // 2, prompt_len + 1, (batch,), generator=g).tolist()
    width = max(lengths)
    ids = torch.randint(3, vocab, (batch, width), generator=g)
    mask = torch.zeros(batch, width, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, width - n:] = 1
    return ids.masked_fill(mask == 0, 0), mask


def generators(preset: str, batch: int, args: argparse.Namespace) -> tuple[dict, dict, object]:
    """The two implementations as zero-argument calls, their outputs, and our config."""
    import transformers

    from hanformer.generation.config import GenerationConfig
    from hanformer.generation.search import decode
    from hanformer.models.gpt.config import GPTConfig
    from hanformer.models.gpt.model import GPTForCausalLM

    torch.manual_seed(0)
    config = GPTConfig.preset(preset, vocab_size=args.vocab, n_positions=args.prompt_len + args.new_tokens,
                              pad_token_id=0)
    ours = GPTForCausalLM(config).eval()
    with tempfile.TemporaryDirectory() as d:
        ours.save_pretrained(d)
        ref = transformers.GPT2LMHeadModel.from_pretrained(d).eval()
    ref.generation_config.eos_token_id = None  # exactly new_tokens tokens, on both sides
    ref.generation_config.pad_token_id = 0
    ids, mask = prompts(batch, args.prompt_len, args.vocab)
    gen = GenerationConfig(max_new_tokens=args.new_tokens)
    outputs: dict[str, torch.Tensor] = {}

    def run_ours(_: int = 0) -> None:
        outputs["ours"] = decode(ours, ids, mask, gen, eos_token_id=None, pad_token_id=0).sequences

    @torch.inference_mode()
    def run_ref(_: int = 0) -> None:
        outputs["transformers"] = ref.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens,
                                               do_sample=False, min_new_tokens=args.new_tokens)

    return {"transformers": run_ref, "ours": run_ours}, outputs, config


def memory_probe(args: argparse.Namespace) -> None:
    """In a fresh process: peak memory of one generate call above the memory before it (common.py)."""
    baseline = common.rss_bytes()
    fns, _, _ = generators(args.presets, int(args.batches), args)
    print(json.dumps(common.step_peak_memory(lambda: fns[args.impl](0), "cpu", baseline)))


def run_case(preset: str, batch: int, args: argparse.Namespace) -> dict:
    (fns, outputs, config) = generators(preset, batch, args)
    run_ref, run_ours = fns["transformers"], fns["ours"]
    times = alternate({"transformers": run_ref, "ours": run_ours}, warmup=args.warmup, repeats=args.repeats)
    identical = torch.equal(outputs["ours"], outputs["transformers"])
    tokens = batch * args.new_tokens
    row = {"preset": preset, "layers": config.n_layer, "hidden": config.n_embd, "batch": batch,
           "new_tokens": args.new_tokens, "prompt_len": args.prompt_len,
           "ref_tokens_per_s": tokens / median(times["transformers"]),
           "ours_tokens_per_s": tokens / median(times["ours"]), "identical_output": identical}
    row["speedup"] = row["ours_tokens_per_s"] / row["ref_tokens_per_s"]
    if common.memory_available() and args.memory:
        for impl, key in (("transformers", "ref_peak_mib"), ("ours", "ours_peak_mib")):
            probe = common.memory_probe(__file__, [
                "--impl", impl, "--presets", preset, "--batches", str(batch), "--new-tokens", str(args.new_tokens),
                "--prompt-len", str(args.prompt_len), "--vocab", str(args.vocab), "--threads", str(args.threads)])
            row[key] = probe["step"] if probe else float("nan")
            row[key.replace("peak", "process_peak")] = probe["total"] if probe else float("nan")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="small,gpt2-small", help="GPT presets, comma-separated")
    parser.add_argument("--batches", default="1,8", help="batch sizes, comma-separated")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per sequence")
    parser.add_argument("--prompt-len", type=int, default=32, help="prompt length (batch > 1: the longest)")
    parser.add_argument("--vocab", type=int, default=32000, help="vocabulary size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the peak-memory probes (one fresh process per implementation and case)")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="ours", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args)
        return
    facts = machine_facts()
    print_facts(facts)
    rows = []
    for preset in args.presets.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            row = run_case(preset, batch, args)
            rows.append(row)
            print(f"{preset} batch {batch}: ours {row['ours_tokens_per_s']:.1f} tok/s, transformers "
                  f"{row['ref_tokens_per_s']:.1f} tok/s, x{row['speedup']:.2f}, identical={row['identical_output']}",
                  flush=True)
    headers = ["preset", "layers x hidden", "batch", "transformers tok/s", "hanformer tok/s", "ours / ref",
               "identical ids"]
    table = [[r["preset"], f"{r['layers']} x {r['hidden']}", r["batch"], r["ref_tokens_per_s"],
              r["ours_tokens_per_s"], f"{r['speedup']:.2f}x", r["identical_output"]] for r in rows]
    if rows and "ours_peak_mib" in rows[0]:
        headers += ["peak MiB of a call: transformers / ours", "process peak MiB (weights included)"]
        for t, r in zip(table, rows, strict=True):
            t += [f"{r['ref_peak_mib']:.1f} / {r['ours_peak_mib']:.1f}",
                  f"{r['ref_process_peak_mib']:.0f} / {r['ours_process_peak_mib']:.0f}"]
    print()
    print(format_table(headers, table))
    path = write_results("generate", {"machine": facts, "settings": vars(args), "results": rows})
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
