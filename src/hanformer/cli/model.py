"""`hanformer inspect`, `hanformer convert`, `hanformer embed`: look at, rewrite and use checkpoints."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 60

DTYPES = ("float32", "float16", "bfloat16")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "inspect", "show what a checkpoint holds (config, parameters, dtype, heads)",
                    "Read config.json and the safetensors header of a checkpoint directory (no weights are "
                    "loaded) and print its architecture, size, parameter count, dtypes, task heads and "
                    "tokenizer files.\n\nexample:\n  hanformer inspect runs/demo/pretrain/final")
    p.add_argument("directory", metavar="DIR", help="checkpoint directory (config.json + model.safetensors), or a model "
                   "name already in the Hugging Face cache, e.g. klue/bert-base")
    p.add_argument("--json", action="store_true", help="print the facts as one JSON object")
    p.set_defaults(func=_inspect)

    p = add_command(subparsers, "convert", "rewrite a BERT checkpoint in the current Hugging Face layout",
                    "Load any BERT checkpoint hanformer can read (pytorch_model.bin, shards, old "
                    "LayerNorm.gamma/beta names, with or without the bert. prefix) and write "
                    "config.json + model.safetensors with current tensor names, plus its tokenizer files. "
                    "The result loads in hanformer and in transformers.\n\nexample:\n"
                    "  hanformer convert old-bert/ bert-converted/ --dtype bfloat16")
    p.add_argument("source", metavar="SRC",
                   help="checkpoint directory to read, or a model name in the Hugging Face cache")
    p.add_argument("target", metavar="DST", help="directory to write (created if needed)")
    p.add_argument("--architecture", default=None,
                   help="model class to load as (e.g. BertModel to drop the heads); default: from config.json")
    p.add_argument("--dtype", choices=DTYPES, default=None, help="store the weights in this dtype (default: as loaded)")
    p.set_defaults(func=_convert)

    from hanformer.embedding.config import EmbedConfig

    p = add_command(subparsers, "embed", "sentence embeddings and their cosine similarities",
                    "Embed sentences with a BERT checkpoint (mean of token vectors, normalised, as "
                    "sentence-transformers models do) and print the cosine similarity of every pair, "
                    "most similar first.\n\nexample:\n  hanformer embed --model all-MiniLM-L6-v2/ "
                    "\"A man is eating food.\" \"A man is eating a piece of bread.\" \"The girl is carrying a baby.\"")
    p.add_argument("texts", metavar="TEXT", nargs="*", help="sentences to embed")
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory with tokenizer files")
    p.add_argument("--file", metavar="FILE", default=None, help="also embed every non-empty line of this UTF-8 file")
    p.add_argument("--json", action="store_true",
                   help="print {texts, embeddings, similarity} as JSON instead of the similarity table")
    p.add_argument("--output", metavar="FILE", default=None,
                   help="write {texts, embeddings, similarity} as JSON to FILE (replaced atomically)")
    add_settings(p, EmbedConfig)
    p.set_defaults(func=_embed)


def _inspect(args: argparse.Namespace) -> int:
    from hanformer.models.checkpoint import inspect_checkpoint

    info = inspect_checkpoint(args.directory)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    rows = [
        ("architecture", ", ".join(info["architectures"])),
        ("layers / hidden / heads", f"{info['layers']} / {info['hidden_size']} / {info['attention_heads']}"),
        ("feed-forward size", info["intermediate_size"]),
        ("vocabulary", info["vocab_size"]),
        ("max positions", f"{info['max_position_embeddings']} ({info['position_embedding_type']})"),
        ("norm placement", f"{info['norm_placement']}-LN, activation {info['activation']}"),
        ("parameters", f"{info['parameters']:,} ({info['parameters'] / 1e6:.1f} M)"),
        ("dtypes", ", ".join(f"{k}: {v:,}" for k, v in info["dtypes"].items())),
        ("heads", ", ".join(info["heads"]) or "none (bare encoder)"),
        ("labels", ", ".join(f"{k}={v}" for k, v in info["labels"].items()) if info["labels"] else "-"),
        ("tensor names", info["tensor_names"]),
        ("weights", f"{', '.join(info['weight_files'])} ({info['weight_bytes'] / 2**20:.1f} MiB)"),
        ("tokenizer files", ", ".join(info["tokenizer_files"]) or "none"),
    ]
    print(info["path"])
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    import torch

    from hanformer.models.checkpoint import convert_checkpoint

    dtype = getattr(torch, args.dtype) if args.dtype else None
    target = convert_checkpoint(args.source, args.target, architecture=args.architecture, dtype=dtype)
    print(f"wrote {target}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from hanformer.embedding.encode import EmbedConfig, check_texts, embed, similarity
    from hanformer.errors import InputError
    from hanformer.utils.files import atomic_write, check_output_file, iter_lines

    config = settings(args, EmbedConfig)  # a bad --config file is said before any text is read
    texts = list(args.texts)
    if args.file:
        texts += [line.strip() for _, line in iter_lines(args.file) if line.strip()]
    if not texts:
        raise InputError("embed: give sentences as arguments or with --file")
    check_texts(texts)
    if args.output:
        check_output_file(args.output, "--output", inputs=[args.file] if args.file else [])
    vectors = embed(args.model, texts, config=config)
    sims = similarity(vectors)
    if args.json or args.output:
        result = {"texts": texts, "embeddings": [[round(x, 6) for x in v] for v in vectors.tolist()],
                  "similarity": [[round(x, 6) for x in row] for row in sims.tolist()]}
        with atomic_write(args.output) if args.output else contextlib.nullcontext(sys.stdout) as out:
            json.dump(result, out, ensure_ascii=False)
            out.write("\n")
        if args.output:
            print(f"wrote {len(texts)} embedding(s) to {args.output}", file=sys.stderr)
        return 0
    print(f"{len(texts)} sentence(s), {vectors.shape[1]} dimensions")
    pairs = sorted(((float(sims[i, j]), i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))),
                   reverse=True)
    for score, i, j in pairs:
        print(f"{score:+.4f}  {texts[i]}  <->  {texts[j]}")
    return 0
