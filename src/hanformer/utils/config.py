"""Typed configs: one dataclass per concern, loadable from TOML, every field also a CLI flag.

Declare fields with `setting(default, "help text")`. Then `load_config(Cls, toml_dict, source)`
builds the dataclass, rejecting unknown keys by name and coercing values to the field types.

Commands take their config through the one resolver in `utils/settings_cli.py` (via
`cli._common.add_settings` and `settings`), which builds on the flag helpers here:
`add_config_arguments(parser, Cls)` adds the `--field-name` flags of one class;
`config_from_sources(Cls, toml_dict, args)` merges one flat table with them (left for
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


def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def coerce(value: Any, tp: Any, name: str, source: str) -> Any:
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
                return coerce(value, arg, name, source)
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
        return [coerce(v, inner, f"{name}[{i}]", source) for i, v in enumerate(value)]
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


def known_keys(cls: type, data: dict[str, Any] | None, source: str) -> dict[str, Any]:
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
    data = known_keys(cls, data, source)
    hints_map = type_hints(cls)
    kwargs = {k: coerce(v, hints_map[k], k, source) for k, v in data.items()}
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


def flag_name(name: str, prefix: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def is_required(f: dataclasses.Field) -> bool:
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
    hints_map = type_hints(cls)
    group = parser.add_argument_group(title or f"{cls.__name__} settings (also settable in the TOML file)")
    added = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints_map[f.name]
        if dataclasses.is_dataclass(tp):
            continue
        default = (defaults or {}).get(f.name, field_default(f))
        help_text = f.metadata.get("help", "")
        help_text = f"{help_text} [default: {default!r}]" if help_text else f"[default: {default!r}]"
        help_text = help_text.replace("%", "%%")  # argparse formats help with %: a literal "N%" would crash --help
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
        group.add_argument(flag_name(f.name, prefix), **kwargs)
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
