"""`hanformer run RECIPE.toml`: the main job, from raw text to an evaluated model and a report."""

from __future__ import annotations

import argparse
import sys

from hanformer.cli._common import add_command

ORDER = 5

DESCRIPTION = """\
Run a recipe: tokenizer training -> data preparation -> pretraining -> fine-tuning (from the
pretrained model and from scratch) -> evaluation -> report.

Every stage writes into runs/<name>/<stage>/. Stages whose settings, input files and upstream
outputs have not changed since they last completed are skipped; an interrupted stage resumes
from its last checkpoint. The whole recipe is checked before any work starts.

The result: runs/<name>/report.html (open it in any browser, offline) and runs/<name>/metrics.json.

examples:
  hanformer run recipes/demo-ko.toml                  # the built-in Korean demo (a few minutes)
  hanformer run recipes/demo-ko.toml --dry-run        # only show what would run, and why
  hanformer run recipes/demo-ko.toml --force pretrain # re-run pretraining and what depends on it
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "run", "run a recipe end to end (tokenizer, pretraining, fine-tuning, report)",
                    DESCRIPTION)
    p.add_argument("recipe", metavar="RECIPE.toml", help="the recipe file (see recipes/ for examples)")
    p.add_argument("--force", metavar="STAGE", action="append", default=[],
                   help="run STAGE again even if it is cached (tokenizer, data, pretrain, finetune, "
                        "finetune/TASK, finetune/TASK/scratch, evaluate, report, or all); the stages "
                        "after it re-run when its output changes; may be given several times")
    p.add_argument("--dry-run", action="store_true",
                   help="check the recipe and print the plan (which stages run or are skipped, and why) "
                        "without running anything")
    p.add_argument("--out-dir", metavar="DIR", default=None,
                   help="write the run to DIR/<name>/ instead of the recipe's [run] out_dir")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from hanformer.recipes.run import run_recipe
    from hanformer.recipes.stages.common import StageInterrupted

    try:
        result = run_recipe(args.recipe, force=args.force, dry_run=args.dry_run, out_dir=args.out_dir)
    except StageInterrupted as e:
        print(f"hanformer: {e}", file=sys.stderr)
        return 130
    if not args.dry_run and result.report is not None:
        print(result.report)
    return 0
