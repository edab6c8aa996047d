"""`hanformer data prepare`: tokenize a corpus into pretraining shards."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.data.prepare_config import PrepareConfig

    top = add_command(subparsers, "data", "prepare pretraining data (token shards)",
                      "Turn raw text into token shards that `hanformer pretrain` reads without re-tokenizing.")
    sub = top.add_subparsers(dest="data_command", metavar="SUBCOMMAND", title="subcommands")
    p = add_command(sub, "prepare", "split into sentences, tokenize and write shards",
                    "Read plain text (one sentence per line, blank line between documents), wiki-extractor "
                    "<doc> files, JSON lines or TSV; split documents into sentences; tokenize in parallel; "
                    "write memory-mapped token shards (train + a deterministic held-out part) with the "
                    "tokenizer's vocab hash and a copy of the tokenizer.\n\n"
                    "With --entities kiwi (or a NER model directory) every entity is marked [ENT] ... [/ENT] in "
                    "the ids, and `hanformer pretrain` on those shards trains an entity-aware BERT (the markers, "
                    "and the entity embedding unless --no-entity-embedding).\n\n"
                    "examples:\n  hanformer data prepare --input ../shared/data/kowiki --tokenizer runs/tok-ko "
                    "--out runs/kowiki-shards\n"
                    "  hanformer data prepare --input ../shared/data/kowiki --tokenizer runs/tok-ko "
                    "--out runs/kowiki-entity-shards --entities kiwi")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="text files or folders")
    p.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer folder (hanformer tokenizer train)")
    p.add_argument("--out", required=True, metavar="DIR", help="shard folder to write (replaced if it holds shards)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_settings(p, PrepareConfig)
    p.set_defaults(func=_prepare)

    p = add_command(sub, "check", "check a shard directory, reading every token id",
                    "Open a shard directory as pretraining does (meta.json, file sizes, indexes, the recorded "
                    "largest token id) and also read every token id to check it is inside the vocabulary.\n\n"
                    "example:\n  hanformer data check runs/kowiki-shards")
    p.add_argument("shards", metavar="DIR", help="shard folder (hanformer data prepare --out)")
    p.set_defaults(func=_check)


def _prepare(args: argparse.Namespace) -> int:
    from hanformer.data.prepare import PrepareConfig, describe, prepare_data

    cfg = settings(args, PrepareConfig)
    summary = prepare_data(args.input, args.tokenizer, args.out, cfg)
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else describe(summary))
    return 0


def _check(args: argparse.Namespace) -> int:
    from hanformer.data.shards import ShardSet

    shards = ShardSet(args.shards)
    for split in (shards.train, shards.valid):
        split.check_token_ids(shards.vocab_size)
    print(f"{args.shards}: ok: train {shards.train.n_documents:,} documents / {shards.train.n_tokens:,} tokens, "
          f"held out {shards.valid.n_documents:,} / {shards.valid.n_tokens:,}; every id below {shards.vocab_size:,}; "
          f"vocab_hash {shards.vocab_hash[:16]}")
    return 0
