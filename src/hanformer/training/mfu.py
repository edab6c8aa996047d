"""The denominator of MFU (model FLOPs utilisation): the hardware's peak FLOP/s.

`--peak-tflops` states it; otherwise it is an estimate. On a known GPU the estimate is the data
sheet's number; elsewhere it is measured with timed square matmuls. A single short probe reads
low whenever other work shares the machine (a 417% MFU was seen that way), so the measurement
takes the best of several matmuls, is repeated every few minutes during the run (keeping the
highest), and is never below the throughput the run itself reached: an estimated MFU cannot
exceed 100%. Measuring never touches the global random streams (a private generator fills the
matrices), so it cannot change dropout or masking and a resumed run stays exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from hanformer.utils.machine import cpu_has_fast_bf16

# Dense bfloat16 tensor-core peaks (FLOP/s) by device name; float32 gets half.
KNOWN_GPU_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}
REPROBE_SECONDS = 300.0


def known_gpu_peak(device: torch.device, dtype: torch.dtype) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in KNOWN_GPU_PEAKS.items():
        if key in name:
            return value if dtype != torch.float32 else value / 2
    return None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_peak_flops(device: torch.device, dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """The peak for MFU: a known GPU's data-sheet number, else `gemm_flops` here."""
    known = known_gpu_peak(device, dtype)
    if known is not None:
        return known
    return gemm_flops(device, dtype, max(n, 4096) if device.type == "cuda" else n, repeats)


def gemm_flops(device: torch.device, dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """Matmul throughput (FLOP/s): the fastest of `repeats` timed `n x n` products.

    The matrices come from a private generator, never the global random state."""
    if dtype == torch.bfloat16 and device.type == "cpu" and not cpu_has_fast_bf16():
        n = min(n, 512)  # emulated bfloat16 is ~100x slower than float32
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.empty(n, n, device=device, dtype=dtype).uniform_(generator=generator)
    b = torch.empty(n, n, device=device, dtype=dtype).uniform_(generator=generator)
    a @ b  # warm-up: allocations, kernel selection
    _synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        _synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / max(best, 1e-9)


class PeakFlops:
    """The peak FLOP/s that MFU divides by: configured (taken as given) or estimated.

    `measure(device, dtype)` is the probe (`measure_peak_flops` unless a test swaps it)."""

    def __init__(self, configured_tflops: float, device: torch.device, dtype: torch.dtype, *,
                 reprobe_seconds: float = REPROBE_SECONDS,
                 measure: Callable[[torch.device, torch.dtype], float] | None = None) -> None:
        self.device, self.dtype = device, dtype
        self.estimated = not configured_tflops
        self.reprobe_seconds = reprobe_seconds
        self._measure = measure or measure_peak_flops
        self.value = configured_tflops * 1e12 if configured_tflops else 0.0
        self._last_probe = -float("inf")
        if self.estimated:
            self.probe()

    def probe(self) -> None:
        """Measure again and keep the highest estimate so far."""
        self.value = max(self.value, self._measure(self.device, self.dtype))
        self._last_probe = time.perf_counter()

    def probe_if_due(self) -> bool:
        """Re-measure an estimated peak every `reprobe_seconds`; True when it did (time was spent)."""
        if not self.estimated or time.perf_counter() - self._last_probe < self.reprobe_seconds:
            return False
        self.probe()
        return True

    def mfu(self, flops_per_second: float) -> float:
        """Achieved / peak. An estimated peak is raised to what the run reached (the probe read
        low), so an estimated MFU is at most 1; a configured one is reported as it comes."""
        if self.estimated:
            self.value = max(self.value, flops_per_second)
        return flops_per_second / self.value if self.value > 0 else 0.0

    def describe(self) -> str:
        source = "estimated (measured matmul peak; set --peak-tflops for the hardware's)" if self.estimated \
            else "configured (--peak-tflops)"
        return f"MFU against {self.value / 1e12:,.3g} TFLOP/s, {source}"
