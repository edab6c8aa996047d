"""`hanformer pretrain`: masked-LM + NSP (or another objective) on token shards."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 25


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.pretraining.config import PretrainConfig

    p = add_command(subparsers, "pretrain", "pretrain a model on token shards (masked LM + NSP)",
                    "Pretrain BERT from scratch on shards made by `hanformer data prepare`. Settings come from "
                    "defaults < the TOML file (--config; training-loop settings in a [trainer] table) < flags. "
                    "Checkpoints go to OUTPUT_DIR/checkpoints (Ctrl-C saves one; --resume continues exactly), "
                    "metrics to OUTPUT_DIR/metrics.jsonl, the final model + tokenizer to OUTPUT_DIR/final.\n"
                    "Several processes: torchrun --nproc-per-node N -m hanformer.cli.main pretrain ...\n\n"
                    "examples:\n"
                    "  hanformer pretrain --config recipes/pretrain-kowiki-mini.toml\n"
                    "  hanformer pretrain --data runs/kowiki-shards --model mini --max-time 30m --precision bf16\n"
                    "  hanformer pretrain --config recipes/pretrain-kowiki-mini.toml --resume")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="continue from the latest checkpoint in OUTPUT_DIR (or from CHECKPOINT)")
    p.add_argument("--print-config", action="store_true", help="print the merged settings and exit")
    # --model-config takes KEY=VALUE,KEY=VALUE or JSON; the [trainer] table's fields are flags too.
    add_settings(p, PretrainConfig, defaults={"trainer": {"output_dir": "runs/pretrain"}})
    p.set_defaults(func=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    from hanformer.pretraining.config import PretrainConfig
    from hanformer.pretraining.run import pretrain
    from hanformer.utils.config import config_to_dict

    cfg = settings(args, PretrainConfig)
    if args.print_config:
        print(json.dumps(config_to_dict(cfg), indent=2, ensure_ascii=False))
        return 0
    result = pretrain(cfg, resume=args.resume)
    if not _is_main_process():
        return 130 if result.stopped == "interrupted" else 0
    summary = {"step": result.step, "stopped": result.stopped, "elapsed_s": round(result.elapsed, 1),
               "train_loss": result.train_loss, "eval": result.eval_metrics,
               "checkpoint": str(result.checkpoint) if result.checkpoint else None,
               "final": str(result.final_dir) if result.final_dir else None}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 130 if result.stopped == "interrupted" else 0


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0

