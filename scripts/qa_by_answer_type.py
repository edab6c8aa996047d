"""Score fine-tuned QA models on the validation carve fine-tuning used, split by answer type:
answers that overlap a proper noun Kiwi finds in the context ("entity") and the others.

    python scripts/qa_by_answer_type.py --train korquad_v1_train_part.json \
        runs/entities-korquad/finetune/korquad/pretrained/seed-42/best \
        runs/entities-korquad/finetune/korquad/entities/seed-42/best

The carve is the one `hanformer finetune` makes from --train (same --valid-fraction and
--split-seed), so each model is scored on exactly the questions it was validated on. Prints one
line of EM / F1 per model and group, and writes them as JSON with --out.
"""

from __future__ import annotations

import argparse
import json

from hanformer.tasks.answer_types import scores_by_answer_type
from hanformer.tasks.finetune_config import DataConfig, read_examples
from hanformer.tasks.registry import get_task
from hanformer.tasks.split import carve_validation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="MODEL_DIR", help="fine-tuned QA model folders")
    parser.add_argument("--train", required=True, help="the training file the models were fine-tuned on")
    parser.add_argument("--task", default="korquad")
    parser.add_argument("--valid-fraction", type=float, default=0.1)
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument("--tags", default="NNP", help="Kiwi tags that make an answer an entity")
    parser.add_argument("--out", default=None, help="also write the scores to this JSON file")
    args = parser.parse_args()

    task = get_task(args.task)
    examples, _ = read_examples(task, args.train, DataConfig(), log=lambda _: None)
    _, valid = carve_validation(examples, args.valid_fraction, args.split_seed, task.group)
    scores = scores_by_answer_type(args.models, args.task, valid, args.tags.split(","))
    print(", ".join(f"{name}: {n} questions" for name, n in scores["questions"].items()))
    results = dict(zip(args.models, scores["runs"], strict=True))
    for model_dir, run in results.items():
        print(model_dir, " · ".join(f"{k} {v:.2f}" for k, v in run.items()))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"questions": scores["questions"], "models": results}, f, indent=1)


if __name__ == "__main__":
    main()
