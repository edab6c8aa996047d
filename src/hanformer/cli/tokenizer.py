"""`hanformer tokenizer train|encode|decode|stats`: make, use and measure a WordPiece vocabulary."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Literal

from hanformer.cli._common import add_command
from hanformer.utils.config import add_config_arguments

ORDER = 10

_FORMATS = ("auto", "text", "wiki", "jsonl", "tsv")


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.tokenization.config import TokenizerConfig

    top = add_command(subparsers, "tokenizer", "train, use and measure a WordPiece tokenizer",
                      "Train a BERT WordPiece vocabulary (Hangul stays whole syllables), encode and decode "
                      "text with it, and measure it ([UNK] rate, tokens per eojeol).")
    sub = top.add_subparsers(dest="tokenizer_command", metavar="SUBCOMMAND", title="subcommands")

    p = add_command(sub, "train", "train a vocabulary from text files",
                    "Train a WordPiece vocabulary from plain text (one sentence per line, blank line between "
                    "documents), wiki-extractor <doc> files, JSON lines or TSV, and save it as vocab.txt + "
                    "tokenizer.json + tokenizer_config.json (loadable by transformers.BertTokenizerFast).\n\n"
                    "examples:\n"
                    "  hanformer tokenizer train --input ../shared/data/kowiki --vocab-size 32000 --out runs/tok-ko\n"
                    "  hanformer tokenizer train --input petitions/*.jsonl --text-fields title,content "
                    "--extra-special-tokens [ENT],[/ENT] --out runs/tok")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="text files or folders (folders: every file inside, *.md and hidden files left out)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the tokenizer to (created if needed)")
    p.add_argument("--config", metavar="TOML", default=None,
                   help="TOML file with tokenizer settings (top level or a [tokenizer] table); flags override it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_config_arguments(p, TokenizerConfig)
    p.set_defaults(func=_train)

    p = add_command(sub, "encode", "show the tokens, ids, offsets and word ids of texts",
                    "Encode texts (arguments, or every line of --input) and print their tokens with ids, or "
                    "one JSON object per text with --json.\n\nexamples:\n"
                    "  hanformer tokenizer encode --tokenizer runs/tok-ko \"한국어 위키백과에 오신 것을 환영합니다.\"\n"
                    "  hanformer tokenizer encode --tokenizer runs/tok-ko --pair \"두 번째 문장\" \"첫 문장\" --json")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to encode")
    p.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer folder (ours or any BERT one)")
    p.add_argument("--input", metavar="FILE", default=None,
                   help="also encode every non-empty line of this UTF-8 file (with --tab-pairs, 'A<TAB>B' is a pair)")
    p.add_argument("--pair", metavar="TEXT", default=None, help="second text of a pair, for every TEXT")
    p.add_argument("--tab-pairs", action="store_true", help="read --input lines as 'first<TAB>second' pairs")
    p.add_argument("--max-length", type=int, default=None, help="truncate/pad to this many tokens [default: no limit]")
    p.add_argument("--truncation", choices=("longest_first", "only_first", "only_second", "none"), default=None,
                   help="how to cut pairs that are too long [default: longest_first when --max-length is given]")
    p.add_argument("--padding", choices=("none", "longest", "max_length"), default="none",
                   help="pad to the longest text of the batch or to --max-length [default: none]")
    p.add_argument("--no-special-tokens", action="store_true", help="leave out [CLS] and [SEP]")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per text: tokens, ids, type_ids, attention_mask, offsets, word_ids")
    p.set_defaults(func=_encode)

    p = add_command(sub, "decode", "turn token ids back into text",
                    "Decode token ids (arguments, or one space-separated line of ids per input line).\n\n"
                    "example:\n  hanformer tokenizer decode --tokenizer runs/tok-ko 2 4512 3301 3")
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="token ids")
    p.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer folder")
    p.add_argument("--keep-special-tokens", action="store_true", help="print [CLS], [SEP], [PAD] too")
    p.set_defaults(func=_decode)

    p = add_command(sub, "stats", "measure a tokenizer on text: [UNK] rate, tokens per eojeol",
                    "Encode the lines of the given files and report the [UNK] rate, tokens per eojeol "
                    "(whitespace-separated word), characters per token and facts about the vocabulary.\n\n"
                    "example:\n  hanformer tokenizer stats --tokenizer runs/tok-ko --input "
                    "../shared/data/nsmc/ratings_train.txt --input-format tsv --text-fields document")
    p.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer folder")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="text files or folders to measure on")
    p.add_argument("--input-format", choices=_FORMATS, default="auto", help="format of the files [default: auto]")
    p.add_argument("--text-fields", default="text", metavar="A,B,...",
                   help="JSON-lines fields / TSV columns holding the text [default: text]")
    p.add_argument("--max-lines", type=int, default=None, help="measure only the first N lines [default: all]")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=_stats)


def _train(args: argparse.Namespace) -> int:
    from hanformer.tokenization.config import TokenizerConfig
    from hanformer.tokenization.trainer import train_tokenizer
    from hanformer.utils.config import config_from_sources, load_toml

    toml = None
    if args.config:
        toml = load_toml(args.config)
        toml = toml.get("tokenizer", toml)
    config = config_from_sources(TokenizerConfig, toml, args, source=args.config or "tokenizer train")
    tok = train_tokenizer(args.input, config, args.out, progress=not args.quiet)
    info = tok.settings.get("training", {})
    print(f"wrote {args.out}: {tok.vocab_size:,} tokens, trained on {info.get('bytes', 0) / 2**20:.1f} MiB of text "
          f"({info.get('lines', 0):,} lines) in {info.get('seconds', 0):.1f} s")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from hanformer.errors import InputError
    from hanformer.tokenization.tokenizer import Tokenizer
    from hanformer.utils.files import iter_lines

    tok = Tokenizer.from_pretrained(args.tokenizer)
    texts: list[str] = list(args.texts)
    pairs: list[str] | None = [args.pair] * len(texts) if args.pair is not None else None
    if args.input:
        for line_no, line in iter_lines(args.input):
            if not line.strip():
                continue
            if args.tab_pairs:
                if "\t" not in line:
                    raise InputError(f"{args.input}:{line_no}: no tab in this line (expected 'first<TAB>second')")
                first, second = line.split("\t", 1)
                texts.append(first)
                pairs = (pairs if pairs is not None else [""] * (len(texts) - 1)) + [second]
            else:
                texts.append(line)
                if pairs is not None:
                    pairs.append("")
    if not texts:
        raise InputError("tokenizer encode: give texts as arguments or with --input")
    truncation: Literal["longest_first", "only_first", "only_second", "none"] = (
        args.truncation or ("longest_first" if args.max_length is not None else "none"))
    _note_room_for_text(tok, args, truncation, pairs is not None)
    encs = tok.encode_batch(texts, pairs, add_special_tokens=not args.no_special_tokens, max_length=args.max_length,
                            truncation=False if truncation == "none" else truncation,
                            padding=False if args.padding == "none" else args.padding)
    for i, enc in enumerate(encs):
        if args.json:
            json.dump({"text": texts[i], **({"pair": pairs[i]} if pairs else {}), "tokens": enc.tokens,
                       "ids": enc.ids, "type_ids": enc.type_ids, "attention_mask": enc.attention_mask,
                       "offsets": enc.offsets, "word_ids": enc.word_ids}, sys.stdout, ensure_ascii=False)
            print()
        else:
            print(f"{len(enc)} tokens: " + " ".join(f"{t}:{i}" for t, i in zip(enc.tokens, enc.ids, strict=True)))
    return 0


def _note_room_for_text(tok: Any, args: argparse.Namespace, truncation: str, pairs: bool) -> None:
    """Say so when --max-length leaves room for the special tokens only (smaller is an error)."""
    if args.max_length is None or truncation == "none" or args.no_special_tokens:
        return
    specials = tok.num_special_tokens_to_add(pairs)
    if args.max_length == specials:
        print(f"hanformer: note: --max-length {args.max_length} leaves room for the {specials} special tokens "
              f"only, no text; give {specials + 1} or more to keep text", file=sys.stderr)


def _decode(args: argparse.Namespace) -> int:
    from hanformer.errors import InputError
    from hanformer.tokenization.tokenizer import Tokenizer

    if not args.ids:
        raise InputError("tokenizer decode: give token ids as arguments")
    tok = Tokenizer.from_pretrained(args.tokenizer)
    print(tok.decode(args.ids, skip_special_tokens=not args.keep_special_tokens))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from hanformer.tokenization.stats import tokenizer_stats

    fields = [f for f in args.text_fields.split(",") if f]
    stats = tokenizer_stats(args.tokenizer, args.input, input_format=args.input_format, text_fields=fields,
                            max_lines=args.max_lines, progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(stats.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(stats.format())
    return 0
