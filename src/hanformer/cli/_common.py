"""Argument helpers shared by command modules."""

from __future__ import annotations

import argparse

from hanformer.cli.main import HelpFormatter


def add_command(subparsers: argparse._SubParsersAction, name: str, help: str,
                description: str | None = None) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help, description=description or help,
                                 formatter_class=HelpFormatter)
