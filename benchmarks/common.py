"""What every benchmark shares: machine facts, measured GEMM peak, fair timing, peak memory, MFU.

Fair timing: the reference and ours run in the same process, alternately (A B, B A, A B, ...),
after warm-up rounds, and we report medians. On a machine whose cores other work also uses,
a slow moment then hits both sides instead of one, and the *ratio* stays meaningful even when
the absolute numbers move.

Peak memory of a CPU training step. Python-level tools (tracemalloc) do not see torch's
allocations, and the process-wide high-water mark (ru_maxrss) can only grow, so it also holds
whatever ran before. We therefore measure each (implementation, config) in a fresh
subprocess: it builds the model and optimizer, runs one warm-up step (which allocates the
optimizer state, as in real training), resets the kernel's high-water mark (writing "5" to
/proc/self/clear_refs), runs one more step and reads VmHWM from /proc/self/status. The
subprocess sets MALLOC_MMAP_THRESHOLD_ so that every large tensor is its own mmap, handed back
to the kernel when freed: resident memory then follows live tensors rather than malloc's cache.
We report the step's peak above the memory before the step (activations, gradients,
temporaries) and the process's peak above the bare interpreter with torch loaded (weights and
optimizer state included). On CUDA, torch's own allocator statistics are used instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from hanformer.training.mfu import gemm_flops
from hanformer.utils.machine import cpu_model

BENCH_DIR = Path(__file__).resolve().parent
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


# --- machine facts ------------------------------------------------------------------------


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def bf16_is_native(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 matmuls run on native instructions here (else they are far slower than fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def machine_facts(device: torch.device | str = "cpu") -> dict[str, Any]:
    device = torch.device(device)
    facts: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": bf16_is_native(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    try:
        import transformers

        facts["transformers"] = transformers.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
    try:
        facts["load_average_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return facts


def print_facts(facts: dict[str, Any]) -> None:
    print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))


# --- timing -------------------------------------------------------------------------------

def add_step_arguments(p: argparse.ArgumentParser) -> None:
    """The options every training-step benchmark takes (dtypes, lengths, batch shape, rounds,
    threads, device, memory probe)."""
    p.add_argument("--dtypes", default="fp32,bf16",
                   help="fp32 and/or bf16 (autocast); bf16 is skipped where it is not native unless --force-bf16")
    p.add_argument("--lengths", default="fixed,variable", help="fixed and/or variable (16..seq)")
    p.add_argument("--impls", default="reference,ours")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds (each runs every implementation)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; medians are reported")
    p.add_argument("--batches", type=int, default=3, help="distinct batches, cycled")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--force-bf16", action="store_true", help="run bf16 even where it is emulated (very slow)")
    p.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)


@dataclasses.dataclass
class StepTiming:
    """Alternated rounds of each implementation's training step, with the GEMM rate of the moment."""

    seconds: dict[str, list[float]]  # per implementation, one per timed round
    median_s: dict[str, float]
    real_tokens: float  # per step, averaged over the batches the timed rounds used
    useful_flops: float  # the same
    tokens_per_s: dict[str, float]
    mfu: dict[str, float]
    gemm_flops: float  # the probe's rate during the rounds


def time_steps(steps: dict[str, Callable[[Any], Any]], batches: Sequence[Any], lengths: Sequence[Sequence[int]],
               flops: Sequence[float], dtype: torch.dtype, device: torch.device | str,
               warmup: int, repeats: int) -> StepTiming:
    """Round r runs every step on batches[r % len(batches)] and a GEMM probe, alternating;
    `flops[i]` is the useful work of a step on batch i, `lengths[i]` its real lengths."""
    fns: dict[str, Callable[[int], Any]] = {n: (lambda r, s=s: s(batches[r % len(batches)])) for n, s in steps.items()}
    fns["gemm"] = gemm_probe(dtype, device)  # the matmul rate available at that moment
    times = alternate(fns, warmup, repeats, device)
    gemm_now = gemm_probe_rate(dtype, device, times.pop("gemm"))
    used = [r % len(batches) for r in range(warmup, warmup + repeats)]
    real = sum(sum(lengths[i]) for i in used) / len(used)
    useful = sum(flops[i] for i in used) / len(used)
    med = {n: median(times[n]) for n in steps}
    return StepTiming(times, med, real, useful, {n: real / med[n] for n in steps},
                      {n: useful / med[n] / gemm_now for n in steps}, gemm_now)


def peak_memories(script: str | Path, impls: Sequence[str], args: Sequence[str], enabled: bool
                  ) -> dict[str, dict[str, float] | None]:
    """Each implementation's step peak, from `script --impls NAME ARGS` in a fresh process
    (None where skipped or unavailable)."""
    if not (enabled and memory_available()):
        return {n: None for n in impls}
    return {n: memory_probe(script, ["--impls", n, *args]) for n in impls}


def comparison_cells(timing: StepTiming, mem: dict[str, dict[str, float] | None]) -> tuple[float, list[Any]]:
    """ours ÷ reference, and the table cells after the configuration columns: tokens/s, ratio,
    MFU and peak MiB of each side, and the memory ratio."""
    nan = float("nan")

    def mib(n: str) -> float:
        m = mem.get(n)
        return m["total"] if m else nan

    tps, mfu = timing.tokens_per_s, timing.mfu
    ratio = tps.get("ours", nan) / tps.get("reference", nan)
    return ratio, [tps.get("reference", nan), tps.get("ours", nan), f"{ratio:.2f}x",
                   f"{100 * mfu.get('reference', nan):.1f}%", f"{100 * mfu.get('ours', nan):.1f}%",
                   mib("reference"), mib("ours"), f"{mib('ours') / mib('reference'):.2f}"]


def timing_record(timing: StepTiming) -> dict[str, Any]:
    """The timing as results/NAME.json stores it."""
    return {"seconds": timing.seconds, "median_s": timing.median_s, "real_tokens_per_step": timing.real_tokens,
            "useful_flops_per_step": timing.useful_flops, "tokens_per_s": timing.tokens_per_s, "mfu": timing.mfu,
            "gemm_flops_during": timing.gemm_flops}


def timing_line(label: str, timing: StepTiming, ratio: float) -> str:
    """One configuration's result as the benchmarks print it while they run."""
    return (f"[{label}] " + ", ".join(f"{n}: {timing.median_s[n]:.3f}s/step {timing.tokens_per_s[n]:,.0f} tok/s "
                                      f"MFU {100 * timing.mfu[n]:.1f}%" for n in timing.median_s)
            + f", ours/reference {ratio:.2f}x (GEMM during: {timing.gemm_flops / 1e9:,.0f} GFLOP/s)")


STEP_COLUMNS = ["reference tok/s", "ours tok/s", "ours/ref", "ref MFU", "ours MFU", "ref peak MiB",
                "ours peak MiB", "mem ours/ref"]  # the cells of comparison_cells()


def finish_step_benchmark(name: str, title: str, key_columns: Sequence[str], rows: Sequence[Sequence[Any]],
                          payload: dict[str, Any]) -> None:
    """Print the table (the configuration columns, then STEP_COLUMNS) and write results/NAME.json."""
    print()
    print(title)
    print(format_table([*key_columns, *STEP_COLUMNS], rows))
    path = write_results(name, payload)
    print(f"results: {path.relative_to(BENCH_DIR.parent)}")


def machine_and_dtypes(device: torch.device, requested: str, force_bf16: bool = False
                       ) -> tuple[dict[str, Any], list[str], dict[str, float]]:
    """Print the machine's facts; the requested dtypes ("fp32,bf16"), bf16 left out where the CPU
    only emulates it (unless forced), and the GEMM peak measured for each, printed too."""
    facts = machine_facts(device)
    print_facts(facts)
    dtypes = [d for d in requested.split(",") if d]
    if "bf16" in dtypes and not (facts["bf16_native"] or force_bf16):
        print("bf16: skipped, this CPU has no native bfloat16 matmul (oneDNN emulates it ~100x slower "
              "than fp32); pass --force-bf16 to run it anyway")
        dtypes.remove("bf16")
    peaks = {d: gemm_peak(DTYPES[d], device) for d in dtypes}
    for d, v in peaks.items():
        print(f"measured GEMM peak {d}: {v / 1e9:,.0f} GFLOP/s")
    return facts, dtypes, peaks


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def gemm_peak(dtype: torch.dtype, device: torch.device | str = "cpu", n: int = 2048,
              repeats: int = 5) -> float:
    """Measured FLOP/s of a large square matmul in `dtype`: the best of `repeats` (a peak).

    Non-native bfloat16 on CPU is ~100x slower than fp32, so there it is measured at n=512.
    """
    device = torch.device(device)
    return gemm_flops(device, dtype, max(n, 8192) if device.type == "cuda" else n, repeats)


class Timer:
    """`with Timer(device) as t: ...` then `t.seconds` (synchronises CUDA around the block)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = device
        self.seconds = float("nan")

    def __enter__(self) -> Timer:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def _probe_size(dtype: torch.dtype, device: torch.device | str) -> int:
    device = torch.device(device)
    if device.type == "cuda":
        return 8192
    return 1024 if dtype == torch.float32 or bf16_is_native(device) else 256


def gemm_probe(dtype: torch.dtype, device: torch.device | str = "cpu") -> Callable[[int], Any]:
    """A square matmul to time alongside the benchmark (see `gemm_probe_rate`)."""
    n = _probe_size(dtype, device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return lambda _round: a @ b


def gemm_probe_rate(dtype: torch.dtype, device: torch.device | str, seconds: Sequence[float]) -> float:
    """Median FLOP/s of the probe over the rounds: the matmul speed this process actually got
    while the benchmark ran. MFU against it does not drift with other load on the machine."""
    n = _probe_size(dtype, device)
    return 2 * n**3 / median(seconds)


def alternate(fns: dict[str, Callable[[int], Any]], warmup: int, repeats: int,
              device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Run each fn(round_index) once per round, alternating the order every round.

    Returns the seconds of each measured (non warm-up) call per name.
    """
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            synchronize(device)
            start = time.perf_counter()
            fns[name](round_index)
            synchronize(device)
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                times[name].append(elapsed)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- memory -------------------------------------------------------------------------------

def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def step_peak_memory(step: Callable[[], Any], device: torch.device | str = "cpu",
                     baseline_bytes: int = 0) -> dict[str, float]:
    """Peak memory of one call of `step` after a warm-up call (see the module docstring).

    Returns MiB: `step` = peak above the memory just before the step, `total` = peak above
    `baseline_bytes` (the interpreter with torch loaded, for CPU).
    """
    device = torch.device(device)
    step()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"step": (peak - before) / 2**20, "total": peak / 2**20}
    before = _status_kib("VmRSS") * 1024
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    step()
    peak = _status_kib("VmHWM") * 1024
    return {"step": (peak - before) / 2**20, "total": (peak - baseline_bytes) / 2**20}


def rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def memory_probe(script: str | Path, args: Sequence[str], timeout: float = 1800) -> dict[str, float] | None:
    """Run `python script --memory-probe args...` in a fresh process; it prints one JSON line."""
    env = {**os.environ, **MALLOC_ENV}
    src = str(BENCH_DIR.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run([sys.executable, str(script), "--memory-probe", *args], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    sys.stderr.write(f"memory probe failed ({' '.join(args)}):\n{proc.stderr[-2000:]}\n")
    return None


def memory_available() -> bool:
    """Whether this OS lets us reset and read the high-water mark (Linux /proc)."""
    return Path("/proc/self/clear_refs").exists() and Path("/proc/self/status").exists()


# --- models and batches -------------------------------------------------------------------

# name -> (layers, hidden, heads), as hanformer's presets; intermediate = 4 x hidden.
PRESETS = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "medium": (8, 512, 8),
           "base": (12, 768, 12)}
SPECIAL = 5  # ids 0..4: [PAD] [UNK] [CLS] [SEP] [MASK]
CLS, SEP, MASK = 2, 3, 4


def hf_config(preset: str, vocab: int, **extra: Any) -> Any:
    """transformers' BertConfig of a preset, with the SDPA attention kernel."""
    import transformers

    layers, hidden, heads = PRESETS[preset]
    return transformers.BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                                   num_attention_heads=heads, intermediate_size=4 * hidden,
                                   max_position_embeddings=512, attn_implementation="sdpa", **extra)


def same_weights(reference: torch.nn.Module, cls: Any) -> torch.nn.Module:
    """hanformer's `cls` loaded from the reference's checkpoint (so both compute the same function)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        reference.save_pretrained(tmp)
        return cls.from_pretrained(tmp)


def make_batches(n: int, batch: int, seq: int, vocab: int, variable: bool, seed: int,
                 min_len: int = 16, mask_prob: float = 0.15) -> list[dict[str, torch.Tensor]]:
    """Random sentence-pair batches with BERT-style masking, padded to the longest sequence.

    Lengths are `seq` (fixed) or uniform in [min_len, seq] (variable); 15% of the real
    non-special tokens are masked (labels elsewhere -100); random next-sentence labels.
    """
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        lengths = torch.randint(min_len, seq + 1, (batch,), generator=g) if variable \
            else torch.full((batch,), seq)
        width = int(lengths.max())
        ids = torch.randint(SPECIAL, vocab, (batch, width), generator=g)
        pos = torch.arange(width)[None, :]
        real = pos < lengths[:, None]
        split = lengths[:, None] // 2
        ids[:, 0] = CLS
        ids[pos == split - 1] = SEP
        ids[pos == lengths[:, None] - 1] = SEP
        types = ((pos >= split) & real).long()
        candidates = real & (ids >= SPECIAL)
        masked = candidates & (torch.rand(batch, width, generator=g) < mask_prob)
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        ids = torch.where(masked, torch.full_like(ids, MASK), ids)
        ids = ids.masked_fill(~real, 0)
        batches.append({"input_ids": ids, "attention_mask": real.long(), "token_type_ids": types,
                        "labels": labels,
                        "next_sentence_label": torch.randint(0, 2, (batch,), generator=g)})
    return batches


# --- FLOPs --------------------------------------------------------------------------------

FLOP_FORMULA = (
    "useful FLOPs per training step = 3 x forward (backward = 2 x forward), forward =\n"
    "    2*L*(4*H^2 + 2*H*I) * real_tokens            (Q,K,V,O and feed-forward on real tokens)\n"
    "  + 4*L*H * sum(n_i^2)                          (QK^T and PV within each sequence of n_i real tokens)\n"
    "  + 2*(H^2 + H*V) * masked_tokens               (masked-LM transform + vocabulary decoder)\n"
    "  + 2*(H^2 + 2*H) * batch                       (pooler + next-sentence classifier)\n"
    "  L layers, H hidden, I intermediate, V vocabulary; padding and unmasked positions count 0.")


def bert_forward_flops(layers: int, hidden: int, intermediate: int, vocab: int,
                       lengths: Sequence[int], masked_tokens: int, *, mlm: bool = True,
                       pooler: bool = True, num_labels: int = 2) -> float:
    """Useful forward FLOPs of BERT on sequences of the given real lengths (see FLOP_FORMULA)."""
    real = sum(lengths)
    flops = 2 * layers * (4 * hidden**2 + 2 * hidden * intermediate) * real
    flops += 4 * layers * hidden * sum(n * n for n in lengths)
    if mlm:
        flops += 2 * (hidden**2 + hidden * vocab) * masked_tokens
    if pooler:
        flops += 2 * (hidden**2 + hidden * num_labels) * len(lengths)
    return float(flops)


# --- printing -----------------------------------------------------------------------------

def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (readable in a terminal too)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}"
    return str(value)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Save machine-readable results next to the scripts (benchmarks/results/NAME.json)."""
    out = BENCH_DIR / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path
