"""`hanformer pretrain`: masked-LM + NSP (or another objective) on token shards."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command
from hanformer.utils.config import add_config_arguments

ORDER = 25


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.training.config import TrainerConfig
    from hanformer.training.pretrain import PretrainConfig

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
    p.add_argument("--config", metavar="TOML", default=None, help="TOML file with the settings below")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="continue from the latest checkpoint in OUTPUT_DIR (or from CHECKPOINT)")
    p.add_argument("--print-config", action="store_true", help="print the merged settings and exit")
    add_config_arguments(p, PretrainConfig)  # --model-config takes KEY=VALUE,KEY=VALUE or JSON
    add_config_arguments(p, TrainerConfig)
    p.set_defaults(func=_pretrain)


def load_pretrain_config(args: argparse.Namespace):
    """defaults < TOML < flags, for both the top level and the [trainer] table."""
    from hanformer.training.config import TrainerConfig
    from hanformer.training.pretrain import PretrainConfig
    from hanformer.utils.config import cli_overrides, load_config, load_toml

    data = load_toml(args.config) if args.config else {}
    source = args.config or "command line"
    trainer = data.get("trainer", {})
    if not isinstance(trainer, dict):
        from hanformer.errors import ConfigError

        raise ConfigError(f"{source}: [trainer] must be a table")
    trainer = {"output_dir": "runs/pretrain", **trainer, **cli_overrides(TrainerConfig, args)}
    flags = cli_overrides(PretrainConfig, args)
    if isinstance(flags.get("model_config"), str):
        flags["model_config"] = _parse_pairs(flags["model_config"])
    data = {**data, **flags, "trainer": trainer}
    return load_config(PretrainConfig, data, source)


def _pretrain(args: argparse.Namespace) -> int:
    from hanformer.training.pretrain import pretrain
    from hanformer.utils.config import config_to_dict

    cfg = load_pretrain_config(args)
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


def _parse_pairs(text: str) -> dict:
    """'hidden_size=384,num_hidden_layers=6' (or a JSON object) -> dict, values as JSON when possible."""
    from hanformer.errors import ConfigError

    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--model-config: invalid JSON ({e})") from None
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--model-config: expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out
