"""`hanformer translation train`: an encoder-decoder (Transformer, GRU or LSTM) from parallel files to a model with BLEU."""

from __future__ import annotations

import argparse
import json

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 46

_TRAIN_HELP = """\
Train the Transformer of "Attention Is All You Need" on a pair of line-aligned files (line N of
--train-target is the translation of line N of --train-source). One subword vocabulary is
trained on both sides (OUT/tokenizer); batches hold as many pairs of similar length as fit
--max-tokens; Adam (beta2 0.98, eps 1e-9) follows the paper's inverse-square-root warmup
schedule and the loss is label-smoothed (0.1). Every evaluation reports the validation loss and
the sacreBLEU BLEU and chrF of greedy translations (--eval-beams for beam search) of the first
--eval-sentences validation pairs; the model with the best BLEU is kept in OUT/best, the last
one in OUT/final (with its tokenizer: `hanformer translate --model OUT/final`). Without
--valid-source/--valid-target, --valid-size pairs are carved from the training files. A
training pair with a side longer than --max-length tokens is left out, with a warning.
Ctrl-C saves a checkpoint; --resume continues exactly. Settings: defaults < the TOML file
(--config) < flags.

--architecture gru (or lstm) trains the recurrent baselines instead, on the same data,
vocabulary, batches, loss, schedule and validation: a (bidirectional) GRU/LSTM encoder and a
decoder whose context is the encoder's final state (--attention none), additive attention
(bahdanau) or multiplicative attention (luong). --model picks their size (tiny, mini, small,
base = RNNsearch); --model-overrides takes RNNSeq2SeqConfig fields.

--init-encoder DIR starts the Transformer's encoder from a pretrained BERT (a `hanformer pretrain`
output or a Hugging Face BERT folder): the model takes the BERT's width, depth and tokenizer
(shared by both sides), its encoder computes what the BERT computes, and the decoder starts at
random.

examples:
  hanformer translation train --train-source train.en --train-target train.de \\
      --valid-source val.en --valid-target val.de --out runs/en-de --model mini --max-time 20m
  hanformer translation train --train-source train.en --train-target train.de \\
      --valid-source val.en --valid-target val.de --out runs/en-de-gru --architecture gru \\
      --attention bahdanau --model mini --max-time 20m
  hanformer translation train --train-source train.ko --train-target train.en --out runs/ko-en-bert \
      --init-encoder runs/ko-bert/pretrain/final --model tiny --max-time 20m
  hanformer translation train --train-source train.en --train-target train.de --out runs/en-de --resume
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.models.encoder_decoder.settings import (
        TRANSLATION_TRAINER_DEFAULTS,
        TranslationTrainConfig,
    )

    top = add_command(subparsers, "translation", "encoder-decoder translation models: train",
                      "Translation models (the encoder-decoder Transformer, or GRU/LSTM encoder-decoders with "
                      "or without attention): train one on parallel files; translate with `hanformer translate`.")
    sub = top.add_subparsers(dest="translation_command", metavar="SUBCOMMAND", title="subcommands")
    p = add_command(sub, "train", "train a translation model on parallel files", _TRAIN_HELP)
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="continue from the latest checkpoint in OUT (or from CHECKPOINT)")
    p.add_argument("--print-config", action="store_true", help="print the merged settings and exit")
    # --out places the trainer's output: no --output-dir flag for it.
    add_settings(p, TranslationTrainConfig, skip=("trainer.output_dir",),
                 defaults={"trainer": {k: v for k, v in TRANSLATION_TRAINER_DEFAULTS.items() if k != "output_dir"}})
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from hanformer.models.encoder_decoder.settings import TranslationTrainConfig
    from hanformer.models.encoder_decoder.train import train_translation
    from hanformer.utils.config import config_to_dict

    cfg = settings(args, TranslationTrainConfig)
    cfg.trainer.output_dir = cfg.out
    if args.print_config:
        print(json.dumps(config_to_dict(cfg), indent=2, ensure_ascii=False))
        return 0
    result = train_translation(cfg, resume=args.resume)
    summary = {"step": result.step, "stopped": result.stopped, "elapsed_s": round(result.elapsed, 1),
               "train_loss": result.train_loss, "eval": result.eval_metrics, "best_bleu": result.best_metric,
               "checkpoint": str(result.checkpoint) if result.checkpoint else None,
               "final": str(result.final_dir) if result.final_dir else None}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 130 if result.stopped == "interrupted" else 0
