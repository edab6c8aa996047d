"""Typed configs: one dataclass per concern, loadable from TOML, every field also a CLI flag.

Declare fields with `setting(default, "help text")`. Then `load_config(Cls, toml_dict, source)`
builds the dataclass, rejecting unknown keys by name.

Every command that takes a config class uses the one resolver (through `cli._common.add_settings`
and `settings`): `add_settings_arguments(parser, Cls)` registers `--config FILE.toml` and a flag
per field (nested dataclass fields become TOML tables, `[trainer]`, whose fields are flags too)
and returns a `SettingsSpec`; at run time `resolve_settings(spec, args)` merges defaults < the
TOML file < the flags given, each layer checked on its own, so an error names the file and key
(or the flag) it came from.

The building blocks underneath: `add_config_arguments(parser, Cls)` adds the `--field-name` flags
of one class; `config_from_sources(Cls, toml_dict, args)` merges one flat table with them (left for
`tokenizer train`, whose file may hold its settings at the top level or in a [tokenizer] table).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from hanformer.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")


def setting(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with help text (shown by --help and in docs)."""
    metadata = {"help": help}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def load_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not valid UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None


def load_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file that must hold one object (config.json); errors name the file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a JSON object")
    return data


def parse_duration(text: str | int | float | None) -> float | None:
    """'90s', '30m', '1h', '1h30m', '2d' or a number of seconds -> seconds."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    s = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", s)
    if not parts or "".join(n + u for n, u in parts) != s.replace(" ", ""):
        raise ConfigError(f"cannot read duration {text!r}: use e.g. '90s', '30m', '1h', '1h30m'")
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * scale[u] for n, u in parts)


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, name: str, source: str) -> Any:
    """Check/convert `value` to annotation `tp`; raise a ConfigError naming the key."""
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name, source)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{source}: {name} = {value!r} is not a valid {_describe(tp)}")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: {name} = {value!r} is not one of {choices}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {name} must be a list, got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{name}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {name} must be a table, got {value!r}")
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a nested config class
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        return load_config(tp, value, f"{source} [{name}]")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{source}: {name} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {name} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{source}: {name} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{source}: {name} must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{source}: {name} must be a string, got {value!r}")
    return value


def _known_keys(cls: type, data: dict[str, Any] | None, source: str) -> dict[str, Any]:
    """`data` with TOML-style dashed keys read as underscores; a key that is not a field of
    `cls` is an error naming it, with the closest field as a suggestion."""
    fields = [f.name for f in dataclasses.fields(cls)]
    data = {k.replace("-", "_"): v for k, v in (data or {}).items()}
    unknown = [k for k in data if k not in fields]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, fields, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
            f"valid keys: {', '.join(fields)}"
        )
    return data


def load_config(cls: type[T], data: dict[str, Any] | None, source: str = "config") -> T:
    """Build dataclass `cls` from a dict; unknown keys are an error that names them."""
    data = _known_keys(cls, data, source)
    hints_map = _type_hints(cls)
    kwargs = {k: _coerce(v, hints_map[k], k, source) for k, v in data.items()}
    try:
        obj = cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{source}: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _flag(name: str, prefix: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def parse_key_values(text: str) -> dict[str, Any]:
    """A dict-valued flag: 'hidden_size=384,num_hidden_layers=6' or a JSON object; each value is
    read as JSON when it is JSON (384 -> int, true -> bool), else kept as text."""
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise argparse.ArgumentTypeError(f"invalid JSON ({e})") from None
        if isinstance(value, dict):
            return value
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    out: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                         skip: tuple[str, ...] = (), *, defaults: dict[str, Any] | None = None,
                         title: str | None = None) -> list[tuple[str, str]]:
    """Add one `--flag` per field of `cls` (defaults are None so we know what was given).

    `defaults` shows a command's own defaults in the help instead of the class's; `title` names
    the help group. Returns the (field, dest) pairs added."""
    hints_map = _type_hints(cls)
    group = parser.add_argument_group(title or f"{cls.__name__} settings (also settable in the TOML file)")
    added = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints_map[f.name]
        if dataclasses.is_dataclass(tp):
            continue
        default = (defaults or {}).get(f.name, _field_default(f))
        help_text = f.metadata.get("help", "")
        help_text = f"{help_text} [default: {default!r}]" if help_text else f"[default: {default!r}]"
        kwargs: dict[str, Any] = {"dest": prefix + f.name, "default": None, "help": help_text}
        base = tp
        if get_origin(tp) in (Union, types.UnionType):
            non_none = [a for a in get_args(tp) if a is not type(None)]
            base = non_none[0] if len(non_none) == 1 else str
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(base) is Literal:
            kwargs["choices"] = list(get_args(base))
            kwargs["metavar"] = "{" + ",".join(map(str, get_args(base))) + "}"
        elif get_origin(base) in (list, tuple):
            kwargs["metavar"] = "A,B,..."
        elif base is dict or get_origin(base) is dict:
            kwargs["type"] = parse_key_values
            kwargs["metavar"] = "KEY=VALUE,..."
        else:
            kwargs["metavar"] = f.name.upper()
        group.add_argument(_flag(f.name, prefix), **kwargs)
        added.append((f.name, prefix + f.name))
    return added


def cli_overrides(cls: type, args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The fields of `cls` that were given on the command line."""
    out = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, prefix + f.name, None)
        if value is not None:
            out[f.name] = value
    return out


def config_from_sources(cls: type[T], toml_data: dict[str, Any] | None, args: argparse.Namespace | None,
                        source: str = "config", prefix: str = "") -> T:
    data = dict(toml_data or {})
    if args is not None:
        data.update(cli_overrides(cls, args, prefix))
    return load_config(cls, data, source)


# ---- one resolver for commands: defaults < TOML file (--config) < flags ----------------------

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
    hints = _type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def _table_defaults(cls: type) -> dict[str, Any]:
    """What a class's own defaults change in its tables: `FinetuneConfig.trainer` defaults to
    gentler optimiser settings than `TrainerConfig()` has, and a table merged from the TOML file
    and the flags must start from those, not from the bare class."""
    out: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, table_cls in _tables(cls).items():
        own = _field_default(fields[name])
        changed = {} if own is None else {
            f.name: getattr(own, f.name) for f in dataclasses.fields(table_cls)
            if not _is_required(f) and getattr(own, f.name) != _field_default(f)}
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
    data = _known_keys(cls, data, where_)
    hints = _type_hints(cls)
    out = {}
    for key, value in data.items():
        tp = hints[key]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
            out[key] = _checked_layer(tp, value, source, (*table, key))
        else:
            out[key] = _coerce(value, tp, key, where_)
    return out


def _add_table_flags(parser: argparse.ArgumentParser, cls: type, table: tuple[str, ...],
                     skip: tuple[str, ...], defaults: dict[str, Any]) -> list[FlagBinding]:
    dotted = ".".join(table)
    own_skip = tuple(name.rpartition(".")[2] for name in skip if name.rpartition(".")[0] == dotted)
    for f in dataclasses.fields(cls):
        flag = _flag(f.name, "")
        if f.name not in own_skip and f.name not in _tables(cls) and flag in parser._option_string_actions:
            # Two fields (or a field and one of the command's own arguments) want one flag.
            key = f"{dotted}.{f.name}" if dotted else f.name
            raise ValueError(f"{cls.__name__}.{f.name}: {flag} is taken already; pass skip=({key!r},)")
    where_ = f"[{dotted}] table" if table else "top level"
    title = f"{cls.__name__} settings (TOML file given with --config: {where_})"
    own_defaults = {k: v for k, v in defaults.items() if k not in _tables(cls)}
    added = add_config_arguments(parser, cls, skip=own_skip, defaults=own_defaults, title=title)
    bindings = [FlagBinding(table, name, dest, _flag(name, "")) for name, dest in added]
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
        target[binding.field] = _coerce(value, _type_hints(cls)[binding.field], binding.flag, "command line")
    return out


def _check_required(cls: type, data: dict[str, Any], spec: SettingsSpec, source: str,
                    table: tuple[str, ...] = ()) -> None:
    flags = {(b.table, b.field): b.flag for b in spec.flags}
    for f in dataclasses.fields(cls):
        if _is_required(f) and f.name not in data:
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
