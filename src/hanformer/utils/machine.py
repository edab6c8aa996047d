"""Facts about this machine's processor, read once from /proc/cpuinfo (Linux) with fallbacks.

Timings mean little without them (reports and benchmarks print the CPU model), and the trainer
needs to know whether bfloat16 matmuls are native here or emulated (about 100x slower).
"""

from __future__ import annotations

import functools
import platform

import torch


@functools.cache
def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's `key: value` lines of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block ends at the first blank line
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The processor's name, e.g. 'AMD EPYC 9654' (or the platform's machine type)."""
    return _cpuinfo_fields().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags the kernel reports (empty where it reports none)."""
    return frozenset(_cpuinfo_fields().get("flags", "").split())


def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX)."""
    flags = cpu_flags()
    if flags:
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    return torch.backends.cpu.get_cpu_capability() not in ("DEFAULT", "NO AVX", "AVX2")
