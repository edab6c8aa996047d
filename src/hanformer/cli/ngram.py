"""`hanformer ngram train|perplexity|sample|export`: n-gram language models, the baseline before neural LMs."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command
from hanformer.utils.config import add_config_arguments, cli_overrides, load_config

ORDER = 47

_TRAIN_HELP = """\
Count the n-grams of text files (every non-empty line is a sentence, framed by <s> ... </s>) and
estimate a back-off language model: interpolated modified Kneser-Ney (default), interpolated
absolute discounting or add-k. Units are whitespace words (--words, the default) or the word
pieces of a tokenizer (--tokenizer DIR). The output folder holds model.arpa (readable by KenLM
and SRILM) and config.json.

examples:
  hanformer ngram train --input ../shared/data/kowiki --order 4 --output runs/kowiki-4gram
  hanformer ngram train --input train.txt --order 3 --smoothing addk --k 0.1 --output runs/addk
  hanformer ngram train --input train.txt --tokenizer runs/tok-ko --output runs/wp-3gram --arpa wp.arpa
"""

_PERPLEXITY_HELP = """\
Score held-out text (one sentence per non-empty line) as KenLM's `query` does: words the model
never saw are <unk> and scored with <unk>'s probability; every sentence adds its </s>. Prints the
log10 probability, the OOV count and the perplexity with and without the OOV words.

example:
  hanformer ngram perplexity --model runs/kowiki-4gram --input heldout.txt
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.models.ngram.config import HELP_DEFAULTS, NgramConfig

    top = add_command(subparsers, "ngram", "n-gram language models: train, perplexity, sample, ARPA export",
                      "n-gram language models (orders 1-5; Kneser-Ney, absolute discounting, add-k), the "
                      "measured baseline from before the Transformer.")
    sub = top.add_subparsers(dest="ngram_command", metavar="SUBCOMMAND", title="subcommands")

    p = add_command(sub, "train", "count text and estimate an n-gram model", _TRAIN_HELP)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="text files or folders (folders: every file inside, *.md and hidden files left out)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder to write model.arpa and config.json to")
    p.add_argument("--words", action="store_true", help="count whitespace words (the default; not with --tokenizer)")
    p.add_argument("--arpa", metavar="FILE", default=None, help="also write the ARPA file here")
    add_config_arguments(p, NgramConfig, title="n-gram settings", defaults=HELP_DEFAULTS)
    p.set_defaults(func=_train)

    p = add_command(sub, "perplexity", "score held-out text: log10 probability, OOVs, perplexity", _PERPLEXITY_HELP)
    p.add_argument("--model", required=True, metavar="DIR", help="folder written by `hanformer ngram train`")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="held-out text files")
    p.add_argument("--input-format", default="auto", metavar="FORMAT",
                   help="auto, text, wiki, jsonl or tsv [default: auto]")
    p.set_defaults(func=_perplexity)

    p = add_command(sub, "sample", "draw sentences from a model, one per line",
                    "Draw sentences word by word from the model's distribution, starting after <s> and "
                    "stopping at </s> (or --max-words).\n\nexample:\n"
                    "  hanformer ngram sample --model runs/kowiki-4gram --num 5 --seed 1")
    p.add_argument("--model", required=True, metavar="DIR", help="folder written by `hanformer ngram train`")
    p.add_argument("--num", type=int, default=5, help="how many sentences [default: 5]")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same sentences [default: 0]")
    p.add_argument("--max-words", type=int, default=100, help="stop a sentence after this many units [default: 100]")
    p.set_defaults(func=_sample)

    p = add_command(sub, "export", "write a model as an ARPA file",
                    "Write the model in the ARPA back-off format (log10 probabilities and backoff weights), "
                    "which KenLM (`kenlm.Model`), SRILM and most decoders read.\n\nexample:\n"
                    "  hanformer ngram export --model runs/kowiki-4gram --arpa kowiki-4gram.arpa")
    p.add_argument("--model", required=True, metavar="DIR", help="folder written by `hanformer ngram train`")
    p.add_argument("--arpa", required=True, metavar="FILE", help="ARPA file to write")
    p.set_defaults(func=_export)


def _train(args: argparse.Namespace) -> int:
    from hanformer.errors import ConfigError
    from hanformer.models.ngram.api import config_summary, export_arpa, train_ngram
    from hanformer.models.ngram.config import NgramConfig
    from hanformer.utils.files import check_output_file

    config = load_config(NgramConfig, cli_overrides(NgramConfig, args), "command line")
    if args.words and config.tokenizer:
        raise ConfigError("--words and --tokenizer both given: count whitespace words or word pieces, not both")
    if args.arpa:
        check_output_file(args.arpa, "--arpa")
    loaded = train_ngram(args.input, config, args.output)
    if args.arpa:
        export_arpa(loaded, args.arpa)
    print(json.dumps({"output": args.output, **config_summary(loaded)}, ensure_ascii=False, indent=2))
    return 0


def _perplexity(args: argparse.Namespace) -> int:
    from hanformer.models.ngram.api import perplexity

    print(json.dumps(perplexity(args.model, args.input, args.input_format), ensure_ascii=False, indent=2))
    return 0


def _sample(args: argparse.Namespace) -> int:
    from hanformer.models.ngram.api import sample_sentences

    for sentence in sample_sentences(args.model, args.num, args.seed, args.max_words):
        print(sentence)
    return 0


def _export(args: argparse.Namespace) -> int:
    from hanformer.models.ngram.api import export_arpa

    print(export_arpa(args.model, args.arpa))
    return 0
