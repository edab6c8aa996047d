"""`hanformer rnn train|perplexity|sample`: LSTM/GRU language models, the baseline before the Transformer."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 48

_TRAIN_HELP = """\
Train an LSTM or GRU language model with truncated backpropagation through time: the text becomes
one token stream (documents separated by [SEP], as GPT pretraining reads it), cut into
--batch-size parallel streams read in consecutive --bptt-token windows, the recurrent state
carried from window to window. The shared training loop does the rest: progress, checkpoints in
OUT/checkpoints (Ctrl-C saves one; --resume continues exactly, the carried state included),
metrics in OUT/metrics.jsonl, held-out perplexity at every evaluation, the final model with its
tokenizer in OUT/final. Settings: defaults < the TOML file (--config) < flags.

examples:
  hanformer rnn train --input train.txt --tokenizer runs/tok-ko --out runs/lstm --cell lstm --max-time 10m
  hanformer rnn train --data runs/kowiki-shards --out runs/gru --cell gru --hidden-size 512 --precision bf16
  hanformer rnn train --input train.txt --tokenizer runs/tok-ko --out runs/lstm --resume
"""

_PERPLEXITY_HELP = """\
Score held-out text with a trained model: the text is read into the token stream the model was
trained on (its own tokenizer; documents separated by [SEP]) and every token after the first of
each piece is predicted from all before it, the recurrent state carried throughout. Prints the
mean loss per token (nats), the perplexity exp(loss) and the next-token accuracy, as GPT's
evaluation does.

example:
  hanformer rnn perplexity --model runs/lstm/final --input heldout.txt
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.models.rnn.settings import RNN_TRAINER_DEFAULTS, RNNTrainConfig

    top = add_command(subparsers, "rnn", "RNN language models (LSTM, GRU): train, perplexity, sample",
                      "Recurrent language models trained by truncated backpropagation through time, the "
                      "measured baseline between n-grams and the Transformer.")
    sub = top.add_subparsers(dest="rnn_command", metavar="SUBCOMMAND", title="subcommands")

    p = add_command(sub, "train", "train an LSTM/GRU language model", _TRAIN_HELP)
    p.add_argument("--input", nargs="+", metavar="PATH", default=None,
                   help="training text files or folders (folders: every file inside, *.md and hidden files "
                        "left out); needs --tokenizer")
    p.add_argument("--valid", nargs="+", metavar="PATH", default=None,
                   help="held-out text files [default: the last --valid-fraction of --input's documents]")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="continue from the latest checkpoint in OUT (or from CHECKPOINT)")
    p.add_argument("--print-config", action="store_true", help="print the merged settings and exit")
    # --out places the trainer's output: no --output-dir flag for it.
    add_settings(p, RNNTrainConfig, skip=("input", "valid", "trainer.output_dir"),
                 defaults={"trainer": {k: v for k, v in RNN_TRAINER_DEFAULTS.items() if k != "output_dir"}})
    p.set_defaults(func=_train)

    p = add_command(sub, "perplexity", "held-out loss and perplexity of text", _PERPLEXITY_HELP)
    p.add_argument("--model", required=True, metavar="DIR", help="model folder (OUT/final of `hanformer rnn train`)")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="held-out text files or folders")
    p.add_argument("--input-format", default="auto", metavar="FORMAT",
                   help="auto, text, wiki, jsonl or tsv [default: auto]")
    p.add_argument("--streams", type=int, default=1,
                   help="pieces scored side by side, each from a fresh state (faster; 1: the text as one "
                        "stream) [default: 1]")
    p.add_argument("--window", type=int, default=256, help="tokens per forward pass [default: 256]")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N [default: auto]")
    p.set_defaults(func=_perplexity)

    p = add_command(sub, "sample", "sample texts from a model, one per line",
                    "Draw token after token from the model's distribution (through the shared decoding "
                    "loop), starting after a document separator (and --prompt) and stopping at the next "
                    "separator or after --max-new-tokens.\n\nexample:\n"
                    "  hanformer rnn sample --model runs/lstm/final --num 5 --seed 1 --top-k 50")
    p.add_argument("--model", required=True, metavar="DIR", help="model folder (OUT/final of `hanformer rnn train`)")
    p.add_argument("--prompt", default="", help="text to continue [default: none, a new document]")
    p.add_argument("--num", type=int, default=5, help="how many samples [default: 5]")
    p.add_argument("--max-new-tokens", type=int, default=50, help="tokens per sample at most [default: 50]")
    p.add_argument("--temperature", type=float, default=1.0, help="divide the logits by this [default: 1.0]")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0: all) [default: 0]")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (1: off) [default: 1.0]")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same samples [default: 0]")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N [default: auto]")
    p.set_defaults(func=_sample)


def _train(args: argparse.Namespace) -> int:
    from hanformer.models.rnn.settings import RNNTrainConfig
    from hanformer.models.rnn.train import train_rnn
    from hanformer.utils.config import config_to_dict

    cfg = settings(args, RNNTrainConfig)
    if args.input:
        cfg.input = list(args.input)
    if args.valid:
        cfg.valid = list(args.valid)
    cfg.trainer.output_dir = cfg.out
    if args.print_config:
        print(json.dumps(config_to_dict(cfg), indent=2, ensure_ascii=False))
        return 0
    result = train_rnn(cfg, resume=args.resume)
    summary = {"step": result.step, "stopped": result.stopped, "elapsed_s": round(result.elapsed, 1),
               "train_loss": result.train_loss, "eval": result.eval_metrics,
               "checkpoint": str(result.checkpoint) if result.checkpoint else None,
               "final": str(result.final_dir) if result.final_dir else None}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 130 if result.stopped == "interrupted" else 0


def _perplexity(args: argparse.Namespace) -> int:
    from hanformer.models.rnn.api import rnn_perplexity

    result = rnn_perplexity(args.model, args.input, input_format=args.input_format, streams=args.streams,
                            window=args.window, device=args.device)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _sample(args: argparse.Namespace) -> int:
    from hanformer.models.rnn.api import sample_rnn

    for text in sample_rnn(args.model, prompt=args.prompt, num=args.num, max_new_tokens=args.max_new_tokens,
                           temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                           device=args.device):
        print(text)
    return 0
