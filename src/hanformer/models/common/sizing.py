"""How large a model a config describes, checked before anything is allocated.

A config.json is user input: `num_hidden_layers: 200000` or `vocab_size: 10**9` would make
PyTorch allocate (or spend minutes building modules) before any shape check could fail. The
configs compute their parameter count with a cheap formula (`parameter_count()`); here it is
compared with the memory the machine has, and the layer count with the layers the weights hold.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from hanformer.errors import ConfigError

_MEMINFO = Path("/proc/meminfo")


def available_memory() -> int | None:
    """Bytes this process can still allocate (RAM not in use plus free swap), or None if unknown."""
    try:
        fields = dict(line.split(":", 1) for line in _MEMINFO.read_text().splitlines() if ":" in line)
        kib = int(fields["MemAvailable"].split()[0]) + int(fields.get("SwapFree", "0 kB").split()[0])
        return kib * 1024
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_fits_in_memory(config: Any, source: str, available: int | None = None) -> None:
    """Refuse a config whose parameters alone (in the default dtype) exceed the memory available."""
    parameters = config.parameter_count()
    dtype = torch.get_default_dtype()
    needed = parameters * dtype.itemsize
    available = available_memory() if available is None else available
    if available is None or needed <= available:
        return
    settings = ", ".join(f"{k} {getattr(config, k)}" for k in config.shape_fields if getattr(config, k) is not None)
    raise ConfigError(f"{source}: {settings} make a model of {parameters:,} parameters ({_gib(needed)} in "
                      f"{str(dtype).replace('torch.', '')}), more than the {_gib(available)} of memory available; "
                      "lower these values (is this the config.json of the model you meant?)")


def layer_indices(names: Iterable[str], pattern: re.Pattern[str]) -> set[int]:
    """Layer numbers that occur in tensor names (`pattern`'s first group is the number)."""
    return {int(m.group(1)) for m in map(pattern.search, names) if m}


def check_layer_count(config: Any, names: Iterable[str], pattern: re.Pattern[str], source: str,
                      example: str) -> None:
    """The config's layer count must equal the layers present in the weights (checked first: a wrong
    count would otherwise build that many layers before the missing tensors are reported)."""
    field = config.layer_field
    wanted = getattr(config, field)
    found = layer_indices(names, pattern)
    held = max(found) + 1 if found else 0
    if held == wanted:
        return
    if not found:
        raise ConfigError(f"{source}: {field} = {wanted} but the weights hold no layer tensors ({example}); "
                          "this config.json does not describe these weights")
    raise ConfigError(f"{source}: {field} = {wanted} but the weights hold {held} layers ({example} numbered "
                      f"0 to {held - 1}); set {field} to {held}")
