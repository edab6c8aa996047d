"""Scoring speed and agreement: our metrics vs the reference implementations, side by side.

1. Entity-level F1 (`hanformer.evaluation.entity_scores`) vs `seqeval` 1.2 (`precision_score`,
   `recall_score`, `f1_score`, default mode) on CoNLL-2003 validation (3,250 sentences, 51,362
   tokens) against a seeded perturbation of the gold tags.
2. KLUE-NER character-level macro F1 (`char_macro_f1`) vs scikit-learn's `f1_score(average="macro")`
   over the same labels, on the 4,000 KLUE-NER sentences.

Values are checked to be equal before timing; both sides run alternately in one process.

    python benchmarks/bench_metrics.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import alternate, format_table, machine_facts, median, print_facts, write_results  # noqa: E402
from hanformer.evaluation import char_macro_f1, entity_scores  # noqa: E402
from hanformer.tasks.registry import KLUE_NER_TAGS, get_task  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def perturb(sentences: list[list[str]], tags: list[str], rate: float, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(tags) if rng.random() < rate else t for t in s] for s in sentences]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.1, help="fraction of tags replaced at random")
    args = parser.parse_args()
    from seqeval import metrics as seqeval
    from sklearn.metrics import f1_score

    facts = machine_facts()
    print_facts(facts)
    rows, results = [], {}

    conll = get_task("conll2003")
    gold = [e.tags for e in conll.read(DATA / "conll2003" / "valid.txt").examples]
    pred = perturb(gold, list(conll.labels), args.rate, 0)
    ours = entity_scores(gold, pred)
    ref = (seqeval.precision_score(gold, pred), seqeval.recall_score(gold, pred), seqeval.f1_score(gold, pred))
    assert abs(ours.precision - ref[0]) < 1e-12 and abs(ours.recall - ref[1]) < 1e-12 and abs(ours.f1 - ref[2]) < 1e-12
    times = alternate({"ours": lambda _: entity_scores(gold, pred),
                       "seqeval": lambda _: (seqeval.precision_score(gold, pred), seqeval.recall_score(gold, pred),
                                             seqeval.f1_score(gold, pred))}, warmup=1, repeats=args.repeats)
    t_ours, t_ref = median(times["ours"]), median(times["seqeval"])
    rows.append(["entity P/R/F1, CoNLL-2003 valid", f"{ours.f1:.4f}", f"{ref[2]:.4f}", t_ours * 1e3, t_ref * 1e3,
                 t_ref / t_ours])
    results["entity_f1"] = {"ours_s": t_ours, "reference_s": t_ref, "f1": ours.f1}

    klue = get_task("klue-ner")
    gold = [e.tags for e in klue.read(DATA / klue.data).examples]
    pred = perturb(gold, list(KLUE_NER_TAGS), args.rate, 1)
    labels = [t for t in KLUE_NER_TAGS if t != "O"]
    flat_g = [t for s in gold for t in s]
    flat_p = [t for s in pred for t in s]
    ours_c = char_macro_f1(gold, pred, labels)
    ref_c = f1_score(flat_g, flat_p, labels=labels, average="macro", zero_division=1)
    assert abs(ours_c - ref_c) < 1e-12
    times = alternate({"ours": lambda _: char_macro_f1(gold, pred, labels),
                       "sklearn": lambda _: f1_score(flat_g, flat_p, labels=labels, average="macro", zero_division=1)},
                      warmup=1, repeats=args.repeats)
    t_ours, t_ref = median(times["ours"]), median(times["sklearn"])
    rows.append(["char macro F1, KLUE-NER", f"{ours_c:.4f}", f"{ref_c:.4f}", t_ours * 1e3, t_ref * 1e3, t_ref / t_ours])
    results["char_f1"] = {"ours_s": t_ours, "reference_s": t_ref, "f1": ours_c}

    print(format_table(["metric", "ours", "reference", "ours ms", "reference ms", "speed-up"], rows))
    print(write_results("metrics", {"facts": facts, "results": results}))


if __name__ == "__main__":
    main()
