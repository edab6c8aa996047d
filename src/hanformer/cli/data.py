"""`hanformer data prepare`: tokenize a corpus into pretraining shards."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command
from hanformer.utils.config import add_config_arguments

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.data.prepare import PrepareConfig

    top = add_command(subparsers, "data", "prepare pretraining data (token shards)",
                      "Turn raw text into token shards that `hanformer pretrain` reads without re-tokenizing.")
    sub = top.add_subparsers(dest="data_command", metavar="SUBCOMMAND", title="subcommands")
    top.set_defaults(func=lambda args: top.print_help() or 2)
    p = add_command(sub, "prepare", "split into sentences, tokenize and write shards",
                    "Read plain text (one sentence per line, blank line between documents), wiki-extractor "
                    "<doc> files, JSON lines or TSV; split documents into sentences; tokenize in parallel; "
                    "write memory-mapped token shards (train + a deterministic held-out part) with the "
                    "tokenizer's vocab hash and a copy of the tokenizer.\n\n"
                    "example:\n  hanformer data prepare --input ../shared/data/kowiki --tokenizer runs/tok-ko "
                    "--out runs/kowiki-shards")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="text files or folders")
    p.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer folder (hanformer tokenizer train)")
    p.add_argument("--out", required=True, metavar="DIR", help="shard folder to write (replaced if it holds shards)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_config_arguments(p, PrepareConfig)
    p.set_defaults(func=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    from hanformer.data.prepare import PrepareConfig, describe, prepare_data
    from hanformer.utils.config import config_from_sources

    cfg = config_from_sources(PrepareConfig, None, args, "command line")
    summary = prepare_data(args.input, args.tokenizer, args.out, cfg)
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else describe(summary))
    return 0
