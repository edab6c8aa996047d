"""`hanformer attention`: the attention of one sentence as a self-contained HTML file."""

from __future__ import annotations

import argparse

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 70

HELP = """\
Run a checkpoint on one sentence (or a sentence pair) and write one HTML file with its attention:

  head view    tokens on two sides joined by lines weighted by attention, for one layer and any
               set of heads (a colour per head); hover a token to isolate its attention, click to pin;
  model view   every layer x head as a small map; click one to open it in the head view;
  aggregates   the mean over heads, and attention rollout through the layers below.

The file has everything inline (no CDN, no notebook): open it in any browser, offline.
The page numbers layers and heads from 1; --layer and --heads take indices from 0.

examples:
  hanformer attention --model runs/demo/pretrain/final --text "나는 오늘 학교에 갔다." --out attention.html
  hanformer attention --model all-MiniLM-L6-v2/ --text "The cat sat on the mat." --pair "It was happy." \\
      --out cat.html --layer 2 --heads 0,3,5
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.visualization.config import AttentionViewConfig

    p = add_command(subparsers, "attention", "write the attention views of a sentence as one offline HTML file", HELP)
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory (with its tokenizer files)")
    p.add_argument("--out", required=True, metavar="FILE.html", help="HTML file to write")
    add_settings(p, AttentionViewConfig)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hanformer.utils.files import check_output_file
    from hanformer.visualization.config import AttentionViewConfig
    from hanformer.visualization.view import write_attention_view

    config = settings(args, AttentionViewConfig)
    check_output_file(args.out, "--out")  # before the model is loaded and run
    path = write_attention_view(args.model, args.out, config)
    print(f"wrote {path}")
    return 0
