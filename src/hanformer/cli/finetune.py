"""`hanformer finetune`, `hanformer evaluate`, `hanformer predict`: real tasks on top of a checkpoint."""

from __future__ import annotations

import argparse
import json
import sys

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 40

FINETUNE_HELP = """\
Put a task head on a checkpoint (ours, or any Hugging Face BERT) and fine-tune it with the same
trainer as pretraining (progress bar, bf16, resume, checkpoints). The task's official metric is
computed on the validation data after every epoch; the best model is kept in OUT/best with its
metrics (metrics.json) and everything `evaluate`/`predict` need (task.json, tokenizer).

Without --valid, a validation part is carved from --train (deterministic, --split-seed).
Malformed rows are reported by file and line and skipped (or fatal with --on-error fail); the
number skipped is always printed.

tasks: nsmc, sst2, klue-nli, korsts, klue-ner, conll2003, korquad, squad, and the generic
classification, pair-classification, regression (CSV/TSV/JSON-lines; name the columns).

examples:
  hanformer finetune --task sst2 --model all-MiniLM-L6-v2/ --train ../shared/data/sst2/train.tsv \\
      --out runs/sst2 --epochs 1 --max-train-examples 4000
  hanformer finetune --task nsmc --model runs/demo/pretrain/final --train ratings_train.txt --from-scratch
  hanformer finetune --task classification --model DIR --train reviews.csv --text-column review \\
      --label-column stars --seeds 1,2,3

entity-aware BERT: --entities kiwi finds proper nouns (Kiwi's NNP; --entity-tags NNP,NNG,SL for
more) in every text, question and context alike, puts [ENT] ... [/ENT] around them and adds an
entity embedding (zero at the start) to the model; --entities DIR takes them from a fine-tuned NER
model instead; --no-entity-markers / --no-entity-embedding keep one of the two. The fine-tuned
model remembers its entity settings, so evaluate and predict need no option.
  hanformer finetune --task korquad --model DIR --train ../shared/data/korquad_v1_part/korquad_v1_train_part.json \\
      --out runs/korquad-ent --entities kiwi
"""

EVALUATE_HELP = """\
Score a fine-tuned model on a labelled file with the task's official metrics (accuracy and
macro-F1; Pearson/Spearman; seqeval entity F1 and KLUE character F1; SQuAD/KorQuAD EM/F1),
print them and save them as JSON. The task is read from the model's task.json.

examples:
  hanformer evaluate --model runs/sst2 --data held_out.tsv
  hanformer evaluate --model runs/nsmc --data test.tsv --seeds 1,2,3   # runs/nsmc/seed-N: mean ± std
"""

PREDICT_HELP = """\
Run a fine-tuned model on raw input, one example per line (TEXT, or TEXT<TAB>PAIR for pair
tasks, QUESTION<TAB>CONTEXT for QA; a SQuAD-format .json file also works for QA), and write JSON
lines: labels with probabilities, scores, entities with character spans, or answers with
character spans and scores.

examples:
  echo "이 영화 정말 재밌어요" | hanformer predict --model runs/nsmc
  hanformer predict --model runs/korquad --input questions.tsv --output answers.jsonl
  hanformer predict --model runs/korquad-ent --entities runs/klue-ner/best --input questions.tsv
      # an entity-aware model, its entities from a NER model instead of the source it was trained with
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.tasks.evaluate import EvaluateConfig
    from hanformer.tasks.finetune_config import FinetuneConfig
    from hanformer.tasks.predict import PredictConfig

    p = add_command(subparsers, "finetune", "fine-tune a checkpoint on a task (classification, NER, QA, ...)",
                    FINETUNE_HELP)
    p.add_argument("--list-tasks", action="store_true", help="list the tasks and their formats, then exit")
    # --out places the trainer's output and --max-steps/--epochs its length: no trainer flags for them.
    add_settings(p, FinetuneConfig, skip=("trainer.output_dir", "trainer.max_steps"))
    p.set_defaults(func=_finetune)

    p = add_command(subparsers, "evaluate", "score a fine-tuned model with the task's official metrics",
                    EVALUATE_HELP)
    add_settings(p, EvaluateConfig)
    p.set_defaults(func=_evaluate)

    p = add_command(subparsers, "predict", "predict labels, entities or answers as JSON lines", PREDICT_HELP)
    add_settings(p, PredictConfig)
    p.set_defaults(func=_predict)


def _finetune(args: argparse.Namespace) -> int:
    from hanformer.tasks.finetune import finetune
    from hanformer.tasks.finetune_config import FinetuneConfig
    from hanformer.tasks.registry import TASKS
    from hanformer.training.distributed import env_dist_info

    if args.list_tasks:
        for t in TASKS.values():
            print(f"{t.name:<20} {t.kind:<15} {t.description}")
        return 0
    result = finetune(settings(args, FinetuneConfig))
    interrupted = 130 if result.stopped == "interrupted" else 0  # as pretrain: the checkpoint is saved
    if interrupted or not env_dist_info().is_main:  # rank 0 prints the result of a finished run
        return interrupted
    print(json.dumps({"best_model": str(result.model_dir), "metrics": result.best_metrics,
                      "summary": result.summary or None, "skipped_rows": result.skipped},
                     ensure_ascii=False, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from hanformer.tasks.evaluate import EvaluateConfig, evaluate

    report = evaluate(settings(args, EvaluateConfig))
    print(json.dumps(report.get("summary") or report["metrics"], ensure_ascii=False, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from hanformer.tasks.predict import PredictConfig, predict

    config = settings(args, PredictConfig)
    records = predict(config)
    if config.output not in ("-", ""):
        print(f"wrote {len(records)} predictions to {config.output}", file=sys.stderr)
    return 0
