"""`hanformer serve`: a local web app and JSON API for a checkpoint."""

from __future__ import annotations

import argparse

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 75

HELP = """\
Serve a checkpoint on this computer: a page where you type a sentence (or a question and a
context) and see the model's prediction and the attention views (or, for a GPT checkpoint, a
prompt that the model continues as you watch; for a translation model, lines to translate with
the cross-attention of each translation), and a JSON API:

  GET  /health, /info              status; model config, task, labels, limits, version
  POST /api/tokenize               {"texts": [...], "pairs": [...]}
  POST /api/fill-mask              {"texts": ["... [MASK] ..."], "top_k": 5}   (pretrained checkpoints)
  POST /api/embeddings             {"texts": [...], "pooling": "mean", "normalize": true}
  POST /api/predict                {"texts": [...], "pairs": [...]}   (the checkpoint's task head;
                                   for QA the texts are questions and the pairs contexts)
  POST /api/attention              {"text": "...", "pair": "..."}
  POST /api/generate               {"prompt": "...", "max_new_tokens": 50, "do_sample": true, ...}
                                   (GPT checkpoints: the settings of `hanformer generate`;
                                   the text comes back as server-sent events, piece by piece)
  POST /api/translate              {"texts": [lines], "num_beams": 4, "max_new_tokens": 64,
                                   "length_penalty": 1.0}   (translation models; 1 beam = greedy)
  POST /api/translate/attention    {"text": "...", "token_ids": [...]}   (the cross-attention of
                                   one translation: output tokens x source tokens)

Bad requests get a 4xx JSON error naming the field. It listens on 127.0.0.1 (this computer only)
unless --host says otherwise. Stop it with Ctrl-C.

Web pages cannot use it: POST bodies must be sent with 'Content-Type: application/json' (415
otherwise), requests must name this server in their Host header (127.0.0.1, localhost or [::1]
with its port, the --host address, or a name in --allowed-hosts; 403 otherwise, which defeats
DNS rebinding) and it sends no CORS headers, so other sites' pages cannot read its answers.

Every request is bounded: bodies over --max-body-bytes get 413; otherwise 422 names the limit
and its value: --max-batch texts of at most --max-chars characters, --max-masks [MASK]s per
text, --max-top-k candidates, --max-new-tokens and --max-beams for generation and translation,
--attention-max-tokens for the attention, and no answer larger than --max-response-bytes
(refused before the work where the size can be foreseen).

examples:
  hanformer serve --model runs/nsmc/best
  hanformer serve --model runs/demo/pretrain/final --port 8080
  hanformer serve --model runs/translate/final        # a `hanformer translation train` model
  curl -s localhost:8000/api/predict -H 'content-type: application/json' -d '{"texts": ["재밌어요"]}'
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.serving.config import ServeConfig

    p = add_command(subparsers, "serve", "serve a checkpoint: a page to try it and a JSON API", HELP)
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory (with its tokenizer files)")
    add_settings(p, ServeConfig)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hanformer.serving.app import serve
    from hanformer.serving.config import ServeConfig

    serve(args.model, settings(args, ServeConfig))
    return 0
