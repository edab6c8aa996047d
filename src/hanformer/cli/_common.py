"""Argument helpers shared by command modules.

A command that takes a config class registers it with one call and reads it with one:

    p = add_command(subparsers, "predict", ...)
    add_settings(p, PredictConfig)               # --config FILE.toml + a flag per field
    ...
    config = settings(args, PredictConfig)       # defaults < the TOML file < the flags given
"""

from __future__ import annotations

import argparse
from typing import Any, TypeVar

from hanformer.cli.main import HelpFormatter
from hanformer.utils.settings_cli import SettingsSpec, add_settings_arguments, resolve_settings

T = TypeVar("T")

# Where a parser keeps its SettingsSpec in the parsed arguments.
SETTINGS_DEST = "_settings_spec"


def add_command(subparsers: argparse._SubParsersAction, name: str, help: str,
                description: str | None = None) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help, description=description or help,
                                 formatter_class=HelpFormatter)


def add_settings(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
                 defaults: dict[str, Any] | None = None) -> SettingsSpec:
    """Give the command `--config FILE.toml` and a flag per field of `cls` (tables such as
    [trainer] included; `skip` and `defaults` as in `add_settings_arguments`). One config class
    per command: the file holds that class's keys."""
    if parser.get_default(SETTINGS_DEST) is not None:
        raise ValueError(f"{parser.prog}: add_settings was called twice; one config class per command")
    spec = add_settings_arguments(parser, cls, skip=skip, defaults=defaults)
    parser.set_defaults(**{SETTINGS_DEST: spec})
    return spec


def settings(args: argparse.Namespace, cls: type[T]) -> T:
    """The command's `cls` config from its defaults, the TOML file given with --config and the
    flags given, in that order of precedence."""
    spec: SettingsSpec | None = getattr(args, SETTINGS_DEST, None)
    if spec is None or spec.cls is not cls:
        raise ValueError(f"{cls.__name__} was not registered for this command with add_settings")
    return resolve_settings(spec, args)
