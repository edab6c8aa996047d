"""From a recipe table to a component's config, and from a config to a stage's hashed settings.

`build_config` merges a stage table's keys, what the recipe runner fills in and the run-wide
defaults into the component's config class (flat trainer keys go into the nested `trainer`
config). `stage_settings` records a config as the settings a stage's fingerprint hashes.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

from hanformer.errors import ConfigError
from hanformer.recipes.stage_config import parse_stage_config
from hanformer.utils.config import config_to_dict


def _nested_fields(cls: type) -> dict[str, type]:
    """Fields of `cls` that are themselves config dataclasses (e.g. `trainer: TrainerConfig`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def _nested_default(cls: type, name: str) -> dict[str, Any]:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return config_to_dict(f.default_factory())
    if f.default is not dataclasses.MISSING:
        return config_to_dict(f.default)
    return {}


def build_config(cls: type, settings: dict[str, Any], injected: dict[str, Any], source: str,
                 defaults: dict[str, Any] | None = None) -> Any:
    """`cls` from a recipe table's settings plus what the recipe runner fills in.

    Keys of a nested config (the trainer's `lr`, `max_steps`, ...) may be written flat in the
    stage table; they go where they belong, on top of the component's own defaults for that
    nested config. `injected` (dotted for nested fields, e.g. "trainer.output_dir") is what the
    recipe runner sets; a recipe that sets one of those is refused. `defaults` (e.g. the run's seed,
    the stage budget as `max_time`) apply unless the table sets the key. Keys the config does
    not have are skipped in `injected` and `defaults`, so one call fits several config shapes.
    """
    top = {f.name for f in dataclasses.fields(cls)}
    nested = _nested_fields(cls)
    nested_names = {name: {f.name for f in dataclasses.fields(t)} for name, t in nested.items()}

    def owner(key: str) -> tuple[str | None, str] | None:
        head, _, rest = key.partition(".")
        if rest:
            return (head, rest) if head in nested and rest in nested_names[head] else None
        if key in top:
            return (None, key)
        owners = [n for n, names in nested_names.items() if key in names]
        return (owners[0], key) if len(owners) == 1 else None

    user: dict[tuple[str | None, str], Any] = {}
    unknown = []
    for raw_key, value in settings.items():
        key = raw_key.replace("-", "_")
        if key in nested and isinstance(value, dict):
            for k, v in value.items():
                place = owner(f"{key}.{k.replace('-', '_')}")
                if place is None:
                    unknown.append(f"{key}.{k}")
                else:
                    user[place] = v
            continue
        place = owner(key)
        if place is None:
            unknown.append(key)
        else:
            user[place] = value
    if unknown:
        valid = sorted((top - set(nested)) | set().union(*nested_names.values()))
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k.split(".")[-1], valid, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                          f"valid keys: {', '.join(valid)}")
    fixed = {place: v for k, v in injected.items() if (place := owner(k)) is not None}
    clash = [f"{p[0]}.{p[1]}" if p[0] else p[1] for p in user if p in fixed]
    if clash:
        raise ConfigError(f"{source}: {clash[0]!r} is set by the recipe runner (it wires the stages together); "
                          "remove it from the recipe")
    values = {place: v for k, v in (defaults or {}).items() if (place := owner(k)) is not None}
    values.update(user)
    values.update(fixed)
    data: dict[str, Any] = {name: _nested_default(cls, name) for name in nested}
    for (head, key), v in values.items():
        if head is None:
            data[key] = v
        else:
            data[head][key] = v
    return parse_stage_config(cls, data, source)


def overlay(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` on top; a table in both (e.g. `entity = { ... }`) is overlaid key by key."""
    out = dict(base)
    for key, value in changes.items():
        key = key.replace("-", "_")
        out[key] = overlay(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def stage_settings(config: Any, drop: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """A Stage's `settings` (the config's record, plus `extra`) and `setting_defaults` (the same
    record of the config class's defaults; none if the class has required fields)."""
    try:
        defaults = settings_record(type(config)(), drop)
    except TypeError:
        defaults = {}
    return {"settings": {**settings_record(config, drop), **extra}, "setting_defaults": defaults}


def settings_record(config: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config as the stage's hashed settings, without fields that do not change results:
    paths the recipe runner fills in (`drop`, dotted for nested fields), progress displays, and
    `overwrite` (a stage that runs afresh starts in an emptied folder anyway)."""
    data = config_to_dict(config)
    for key in (*drop, "progress", "tensorboard", "overwrite"):
        parts = key.split(".")
        targets = [data] + [v for v in data.values() if isinstance(v, dict)] if len(parts) == 1 else [data]
        for target in targets:
            for p in parts[:-1]:
                target = target.get(p, {}) if isinstance(target, dict) else {}
            if isinstance(target, dict):
                target.pop(parts[-1], None)
    return data
