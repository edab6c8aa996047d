"""`hanformer memory`: per-device memory of a training step, estimated before running it."""

from __future__ import annotations

import argparse

from hanformer.cli._common import add_command

ORDER = 27

_HELP = """\
Estimate what one training step holds per device: parameters, gradients and optimizer states
(in the form of DeepSpeed's ZeRO formulas), the activations the forward pass saves, and the
short-lived buffers around them; the total is the peak of the step. With --device-memory it
also finds the largest per-device batch that fits. --explain shows each line's formula.

examples:
  hanformer memory --family bert --preset base --batch-size 32 --seq-len 512 --precision bf16
  hanformer memory --family gpt --preset gpt2-small --seq-len 1024 --world-size 8 --strategy fsdp \\
      --precision bf16 --activation-checkpointing --device-memory 80GiB --explain
  hanformer memory --config runs/bert/final --batch-size 64 --seq-len 128
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "memory", "estimate the per-device memory of a training step", _HELP)
    p.add_argument("--family", choices=("bert", "gpt"), default="bert", help="model family [default: bert]")
    p.add_argument("--preset", default="base",
                   help="model size: BERT tiny/mini/small/medium/base/large, GPT tiny/mini/small/medium/"
                        "gpt2-small [default: base]")
    p.add_argument("--config", metavar="PATH", default=None,
                   help="a model folder or its config.json instead of --family/--preset")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per device per micro-batch [default: 32]")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per sequence [default: 128]")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="fp32, or bf16 mixed precision (autocast; FSDP's bf16 parameters) [default: fp32]")
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw", help="[default: adamw]")
    p.add_argument("--world-size", type=int, default=1, help="processes (devices) [default: 1]")
    p.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp", help="[default: ddp]")
    p.add_argument("--reshard-after-forward", action=argparse.BooleanOptionalAction, default=True,
                   help="fsdp: free gathered parameters after forward (ZeRO-3) or keep them (ZeRO-2) "
                        "[default: on]")
    p.add_argument("--activation-checkpointing", action="store_true", help="recompute each block in backward")
    p.add_argument("--mask-prob", type=float, default=0.15, help="BERT: share of tokens predicted [default: 0.15]")
    p.add_argument("--device-memory", metavar="SIZE", default=None,
                   help="memory of one device, e.g. 80GiB: also print the largest batch that fits")
    p.add_argument("--explain", action="store_true", help="show the formula of each line")
    p.set_defaults(func=_memory)


def _memory(args: argparse.Namespace) -> int:
    from hanformer.training.memory import (
        config_from_path,
        estimate_memory,
        format_size,
        largest_batch,
        model_config,
        parse_size,
        report,
    )

    config = config_from_path(args.config) if args.config else model_config(args.preset, args.family)
    settings = dict(seq_len=args.seq_len, precision=args.precision, optimizer=args.optimizer,
                    world_size=args.world_size, strategy=args.strategy,
                    reshard_after_forward=args.reshard_after_forward,
                    activation_checkpointing=args.activation_checkpointing, mask_prob=args.mask_prob)
    est = estimate_memory(config, batch_size=args.batch_size, **settings)
    name = args.config or f"{args.family} {args.preset}"
    style = args.strategy + (f" ({'ZeRO-3' if args.reshard_after_forward else 'ZeRO-2'})"
                             if args.strategy == "fsdp" else "")
    print(f"{name}: {est.settings['params'] / 1e6:.1f}M parameters; per device: batch {args.batch_size} x "
          f"{args.seq_len} tokens, {args.precision}, {args.optimizer}, {args.world_size} process"
          f"{'es' if args.world_size != 1 else ''}, {style}"
          f"{', activation checkpointing' if args.activation_checkpointing else ''}")
    print(report(est, args.explain))
    if args.device_memory:
        size = parse_size(args.device_memory)
        best = largest_batch(config, size, **settings)
        if best:
            print(f"largest batch per device that fits {format_size(size)}: {best} sequences of {args.seq_len} "
                  f"tokens (global batch {best * args.world_size})")
        else:
            print(f"not even one sequence of {args.seq_len} tokens fits {format_size(size)} per device; "
                  "try fsdp over more processes, --activation-checkpointing or bf16")
    return 0
