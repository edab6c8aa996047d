"""Generate from one GPT checkpoint with each decoding strategy; print samples and diversity.

    python scripts/compare_decoding.py --model runs/pretrain-kowiki-gpt-mini/final
    python scripts/compare_decoding.py --model DIR --prompt "서울은" --prompt "조선의" --max-new-tokens 40

For every strategy: one sample per prompt, then distinct-1/2 (higher = more varied) and the
repeated 2-/3-gram rates (higher = more looping), counted in word pieces over all prompts and
`--samples` samples each (sampling strategies use seeds 0, 1, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

STRATEGIES = {
    "greedy": dict(),
    "greedy + repetition_penalty 1.3": dict(repetition_penalty=1.3),
    "beam 4": dict(num_beams=4),
    "beam 4 + no_repeat_ngram 3": dict(num_beams=4, no_repeat_ngram_size=3),
    "sampling T=1.0 (pure)": dict(do_sample=True, top_k=0),
    "sampling top-k 40": dict(do_sample=True, top_k=40),
    "sampling top-p 0.9, T=0.8": dict(do_sample=True, top_k=0, top_p=0.9, temperature=0.8),
}
PROMPTS = ["대한민국의 수도는", "조선 시대에", "이 영화는", "컴퓨터 과학에서"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="GPT checkpoint directory (with tokenizer files)")
    parser.add_argument("--prompt", action="append", default=None, help="prompt (repeatable; default: 4 Korean prompts)")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--samples", type=int, default=3, help="samples per prompt for the sampling strategies")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, metavar="FILE", help="also write everything to this JSON file")
    args = parser.parse_args()

    import torch

    from hanformer.generation.api import generate, load_generator
    from hanformer.generation.diversity import distinct_n, repeated_ngram_rate

    torch.set_num_threads(args.threads)
    model, tokenizer = load_generator(args.model)
    prompts = args.prompt or PROMPTS
    report = []
    for name, settings in STRATEGIES.items():
        runs = range(args.samples) if settings.get("do_sample") else [None]
        results = []
        for seed in runs:
            results += generate(model, prompts, tokenizer=tokenizer, max_new_tokens=args.max_new_tokens,
                                seed=seed, **settings)
        pieces = [r.token_ids[:-1] if r.finish_reason == "eos" else r.token_ids for r in results]
        row = {"strategy": name, "distinct_1": distinct_n(pieces, 1), "distinct_2": distinct_n(pieces, 2),
               "repeated_2gram": repeated_ngram_rate(pieces, 2), "repeated_3gram": repeated_ngram_rate(pieces, 3),
               "samples": [{"prompt": r.prompt, "text": r.text} for r in results[:len(prompts)]]}
        report.append(row)
        print(f"\n## {name}")
        for s in row["samples"]:
            print(f"- {s['prompt']}▸{s['text']}")
    print("\n| strategy | distinct-1 | distinct-2 | repeated 2-grams | repeated 3-grams |")
    print("|---|---|---|---|---|")
    for r in report:
        print(f"| {r['strategy']} | {r['distinct_1']:.2f} | {r['distinct_2']:.2f} | {r['repeated_2gram']:.2f} | "
              f"{r['repeated_3gram']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
