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

from hanformer.entities.kiwi import KiwiEntityDetector
from hanformer.evaluation.qa import qa_scores
from hanformer.tasks.examples import QAExample
from hanformer.tasks.finetune_config import DataConfig, read_examples
from hanformer.tasks.inference import predict_examples
from hanformer.tasks.registry import get_task
from hanformer.tasks.split import carve_validation
from hanformer.tasks.task_model import TaskModel


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
    contexts = sorted({e.context for e in valid})
    spans = dict(zip(contexts, KiwiEntityDetector(args.tags.split(",")).detect(contexts), strict=True))

    def is_entity(e: QAExample) -> bool:
        a = e.answers[0]
        return any(s.start < a.end and a.start < s.end for s in spans[e.context])

    groups = {"all": valid, "entity": [e for e in valid if is_entity(e)],
              "other": [e for e in valid if not is_entity(e)]}
    print(", ".join(f"{name}: {len(exs)} questions" for name, exs in groups.items()))
    results = {}
    for model_dir in args.models:
        model = TaskModel.load(model_dir, args.task, "cpu")
        predicted = predict_examples(model.task, model.model, model.encoder, valid, model.settings, model.labels)
        by_id = {e.id: p for e, p in zip(valid, predicted.labels, strict=True)}
        results[model_dir] = {
            name: qa_scores({e.id: by_id[e.id] for e in exs}, {e.id: [a.text for a in e.answers] for e in exs},
                            "korquad" if args.task == "korquad" else "squad")
            for name, exs in groups.items()}
        print(model_dir, " · ".join(f"{name} EM {s['exact_match']:.2f} F1 {s['f1']:.2f}"
                                    for name, s in results[model_dir].items()))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
