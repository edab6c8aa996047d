"""Pretraining batch construction: ours (NSP pairs from shards + batch-time masking) vs
transformers' DataCollatorForLanguageModeling on the same sequences, in one process.

Ours builds each batch from memory-mapped shards: slices A and B, adds [CLS]/[SEP], pads to the
longest sequence, and masks (exact 15% per sequence, 80/10/10, optional whole-word). The
reference gets the already-assembled [CLS] A [SEP] B [SEP] id lists (so it does strictly less
work: no slicing) and pads + masks them. Both produce the same tensors a training step needs.

    python benchmarks/bench_pretrain_data.py [--batches 200] [--batch-size 32] [--seq-len 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, format_table, machine_facts, median, print_facts, write_results  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
VOCAB = 32000


def synthetic_shards(root: Path, docs: int, seed: int = 0):
    from hanformer.data.shards import ShardSplit, ShardWriter

    rng = np.random.default_rng(seed)
    w = ShardWriter(root / "train", VOCAB)
    for _ in range(docs):
        sents = []
        for _ in range(int(rng.integers(2, 30))):
            n = int(rng.integers(5, 45))
            ids = np.minimum(rng.zipf(1.3, n) + 4, VOCAB - 1)
            sents.append((ids, rng.random(n) < 0.45))
        w.add_document(sents)
    w.close()
    return ShardSplit(root / "train", w.dtype)


def hf_tokenizer(root: Path):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(VOCAB - 5)]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(root / "vocab.txt"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--docs", type=int, default=3000)
    args = ap.parse_args()

    import torch
    from transformers import DataCollatorForLanguageModeling

    from hanformer.data.batches import NSPBatches
    from hanformer.data.masking import Masker, MaskingSpec

    torch.set_num_threads(1)
    facts = machine_facts("cpu")
    print_facts(facts)
    tmp = Path(tempfile.mkdtemp())
    split = synthetic_shards(tmp, args.docs)
    special = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}

    def builder(whole_word: bool) -> NSPBatches:
        masker = Masker(MaskingSpec(whole_word=whole_word), VOCAB, 4, list(special.values()))
        return NSPBatches(split, seq_len=args.seq_len, batch_size=args.batch_size, short_seq_prob=0.1,
                          masker=masker, special_ids=special, seed=0)

    ours, ours_wwm = builder(False), builder(True)
    start = time.perf_counter()
    inst = ours.instances(0)
    instance_s = time.perf_counter() - start
    ours_wwm.instances(0)
    n = min(args.batches, len(inst) // args.batch_size)
    tokens = np.asarray(split.tokens)
    examples = [{"input_ids": [2, *tokens[a0:a1].tolist(), 3, *tokens[b0:b1].tolist(), 3],
                 "token_type_ids": [0] * (a1 - a0 + 2) + [1] * (b1 - b0 + 1), "next_sentence_label": r}
                for a0, a1, b0, b1, r in inst[: n * args.batch_size].tolist()]
    collator = DataCollatorForLanguageModeling(hf_tokenizer(tmp), mlm_probability=0.15, pad_to_multiple_of=8,
                                               return_tensors="pt")
    real_tokens = sum(len(e["input_ids"]) for e in examples)

    def run_ours(builder_):
        return lambda _r: [builder_.build(0, i) for i in range(n)]

    def run_ref(_r):
        return [collator(examples[i * args.batch_size:(i + 1) * args.batch_size]) for i in range(n)]

    times = alternate({"transformers collator": run_ref, "ours": run_ours(ours),
                       "ours (whole-word)": run_ours(ours_wwm)}, warmup=1, repeats=3)
    ref = median(times["transformers collator"])
    rows = []
    for name, ts in times.items():
        t = median(ts)
        rows.append([name, n / t, real_tokens / t, ref / t])
    print(f"\n{n} batches of {args.batch_size} x <= {args.seq_len} tokens, 1 thread; NSP instances for one epoch "
          f"({len(inst):,}) built in {instance_s:.2f} s ({len(inst) / instance_s:,.0f} instances/s)\n")
    print(format_table(["implementation", "batches/s", "real tokens/s", "x reference"], rows))
    write_results("pretrain_data", {"facts": facts, "batches": n, "batch_size": args.batch_size,
                                    "seq_len": args.seq_len, "instances_per_s": len(inst) / instance_s,
                                    "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
