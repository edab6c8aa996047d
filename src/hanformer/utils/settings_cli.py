"""The one settings resolver of commands: `--config FILE.toml` plus a flag per field of a
config class (its tables such as `[trainer]` included), merged as defaults < file < flags.

`add_settings_arguments(parser, Cls)` registers the flags and returns a `SettingsSpec`; at run
time `resolve_settings(spec, args)` merges the layers, each checked on its own, so an error names
the file and key (or the flag) it came from. Commands reach both through `cli._common`.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from hanformer.errors import ConfigError
from hanformer.utils.config import (
    add_config_arguments,
    coerce,
    field_default,
    flag_name,
    is_required,
    known_keys,
    load_config,
    load_toml,
    type_hints,
)

CONFIG_FLAG_DEST = "config"


@dataclasses.dataclass(frozen=True)
class FlagBinding:
    """One flag of a command and the config field it sets."""

    table: tuple[str, ...]  # () for a top-level field, ("trainer",) for one in the [trainer] table
    field: str
    dest: str
    flag: str


@dataclasses.dataclass(frozen=True)
class SettingsSpec:
    """How a command's config class meets its command line: which flag sets which field, and
    the command's own defaults (nested dicts, one per table). Made by `add_settings_arguments`,
    read by `resolve_settings`."""

    cls: type
    flags: tuple[FlagBinding, ...]
    defaults: dict[str, Any]


def _tables(cls: type) -> dict[str, type]:
    """Fields of `cls` that are themselves config classes (TOML tables such as [trainer])."""
    hints = type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def _table_defaults(cls: type) -> dict[str, Any]:
    """What a class's own defaults change in its tables: `FinetuneConfig.trainer` defaults to
    gentler optimiser settings than `TrainerConfig()` has, and a table merged from the TOML file
    and the flags must start from those, not from the bare class."""
    out: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, table_cls in _tables(cls).items():
        own = field_default(fields[name])
        changed = {} if own is None else {
            f.name: getattr(own, f.name) for f in dataclasses.fields(table_cls)
            if not is_required(f) and getattr(own, f.name) != field_default(f)}
        deeper = _table_defaults(table_cls)
        if changed or deeper:
            out[name] = _merge_tables(table_cls, deeper, changed)
    return out


def _merge_tables(cls: type, base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`; tables merge key by key (a [trainer] table in the file keeps the
    command's other trainer defaults), every other value is replaced whole."""
    tables = _tables(cls)
    out = dict(base)
    for key, value in over.items():
        if key in tables and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_tables(tables[key], out[key], value)
        else:
            out[key] = value
    return out


def _table_source(source: str, table: tuple[str, ...]) -> str:
    return f"{source} [{'.'.join(table)}]" if table else source


def _checked_layer(cls: type, data: dict[str, Any], source: str,
                   table: tuple[str, ...] = ()) -> dict[str, Any]:
    """One layer (a TOML file, a command's defaults) checked on its own against `cls`: unknown
    keys and wrong types are errors naming the layer and the key. Not yet built: the other
    layers may still supply what this one leaves out."""
    where_ = _table_source(source, table)
    data = known_keys(cls, data, where_)
    hints = type_hints(cls)
    out = {}
    for key, value in data.items():
        tp = hints[key]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
            out[key] = _checked_layer(tp, value, source, (*table, key))
        else:
            out[key] = coerce(value, tp, key, where_)
    return out


def _add_table_flags(parser: argparse.ArgumentParser, cls: type, table: tuple[str, ...],
                     skip: tuple[str, ...], defaults: dict[str, Any]) -> list[FlagBinding]:
    dotted = ".".join(table)
    own_skip = tuple(name.rpartition(".")[2] for name in skip if name.rpartition(".")[0] == dotted)
    for f in dataclasses.fields(cls):
        flag = flag_name(f.name, "")
        if f.name not in own_skip and f.name not in _tables(cls) and flag in parser._option_string_actions:
            # Two fields (or a field and one of the command's own arguments) want one flag.
            key = f"{dotted}.{f.name}" if dotted else f.name
            raise ValueError(f"{cls.__name__}.{f.name}: {flag} is taken already; pass skip=({key!r},)")
    where_ = f"[{dotted}] table" if table else "top level"
    title = f"{cls.__name__} settings (TOML file given with --config: {where_})"
    own_defaults = {k: v for k, v in defaults.items() if k not in _tables(cls)}
    added = add_config_arguments(parser, cls, skip=own_skip, defaults=own_defaults, title=title)
    bindings = [FlagBinding(table, name, dest, flag_name(name, "")) for name, dest in added]
    for name, table_cls in _tables(cls).items():
        if (f"{dotted}.{name}" if dotted else name) not in skip:
            bindings += _add_table_flags(parser, table_cls, (*table, name), skip,
                                         defaults.get(name, {}))
    return bindings


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
                           defaults: dict[str, Any] | None = None) -> SettingsSpec:
    """Register `--config FILE.toml` and one flag per field of `cls`, its tables' fields included
    (`--lr` for `trainer.lr`). `skip` names fields that get no flag (`"trainer.max_steps"`; a
    table's name skips all of it); they stay settable in the file. `defaults` are the command's
    own defaults over the class's, as nested dicts (`{"trainer": {"output_dir": "runs/x"}}`);
    `--help` shows them."""
    own = _checked_layer(cls, defaults or {}, f"defaults of {cls.__name__}")
    merged = _merge_tables(cls, _table_defaults(cls), own)
    parser.add_argument("--config", dest=CONFIG_FLAG_DEST, metavar="FILE.toml", default=None,
                        help="TOML file with any of the settings below (keys are the flag names with "
                             "underscores; tables such as [trainer] for nested ones); flags given "
                             "here win over the file, the file over the defaults")
    return SettingsSpec(cls, tuple(_add_table_flags(parser, cls, (), skip, merged)), merged)


def _flag_layer(spec: SettingsSpec, args: argparse.Namespace) -> dict[str, Any]:
    """The flags that were given, as nested dicts, each value checked under its flag's name."""
    out: dict[str, Any] = {}
    for binding in spec.flags:
        value = getattr(args, binding.dest, None)
        if value is None:
            continue
        cls = spec.cls
        target = out
        for name in binding.table:
            cls = _tables(cls)[name]
            target = target.setdefault(name, {})
        target[binding.field] = coerce(value, type_hints(cls)[binding.field], binding.flag, "command line")
    return out


def _check_required(cls: type, data: dict[str, Any], spec: SettingsSpec, source: str,
                    table: tuple[str, ...] = ()) -> None:
    flags = {(b.table, b.field): b.flag for b in spec.flags}
    for f in dataclasses.fields(cls):
        if is_required(f) and f.name not in data:
            flag = flags.get((table, f.name))
            how = f"give {flag} or set it" if flag else "set it"
            raise ConfigError(f"{_table_source(source, table)}: missing setting {f.name!r}: {how} "
                              "in the TOML file (--config)")
    for name, table_cls in _tables(cls).items():
        if isinstance(data.get(name), dict):
            _check_required(table_cls, data[name], spec, source, (*table, name))


def resolve_settings(spec: SettingsSpec, args: argparse.Namespace) -> Any:
    """The command's config: its defaults < the TOML file named by --config < the flags given.
    Each layer is checked on its own, so an unknown key (with the closest one suggested) or a
    wrong type names the file and the key, or the flag; then the whole is built and validated."""
    path = getattr(args, CONFIG_FLAG_DEST, None)
    source = str(path) if path else "command line"
    from_file = _checked_layer(spec.cls, load_toml(path), source) if path else {}
    merged = _merge_tables(spec.cls, _merge_tables(spec.cls, spec.defaults, from_file),
                           _flag_layer(spec, args))
    _check_required(spec.cls, merged, spec, source)
    return load_config(spec.cls, merged, source)
