"""Entry point of the `hanformer` command: discovers command modules and runs one."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from hanformer import __version__
from hanformer.errors import HanformerError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        # Our flags carry their real default in the help text already.
        return action.help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hanformer",
        description="Train a WordPiece tokenizer, pretrain and fine-tune BERT, inspect and serve it.",
        epilog="Each command has its own --help. `python -m hanformer` is the same command line.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hanformer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    modules = []
    import hanformer.cli as cli_pkg

    for info in pkgutil.iter_modules(cli_pkg.__path__):
        if info.name in ("main",) or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"hanformer.cli.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        module.register(subparsers)
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def missing_subcommand(parser: argparse.ArgumentParser,
                       args: argparse.Namespace) -> argparse.ArgumentParser | None:
    """The command (group) that was named without one of its subcommands: the top level for a
    bare `hanformer`, the `tokenizer` parser for `hanformer tokenizer`; None when complete."""
    while (action := _subcommands(parser)) is not None:
        chosen = getattr(args, action.dest, None)
        if chosen is None:
            return parser
        parser = action.choices[chosen]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    incomplete = missing_subcommand(parser, args)
    if incomplete is not None or not getattr(args, "func", None):
        # As argparse does for a missing required argument: the help on stderr, status 2,
        # the same for `hanformer` and for every bare command group.
        (incomplete or parser).print_help(sys.stderr)
        return 2
    try:
        result = args.func(args)
    except HanformerError as e:
        print(f"hanformer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hanformer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `hanformer ... | head` closed the pipe: not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
