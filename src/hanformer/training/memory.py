"""How much memory one training step takes per device, before running it.

`estimate_memory(config, ...)` models what the Trainer actually holds for a BERT (masked LM) or
GPT (causal LM) model: the model states in the form of DeepSpeed's ZeRO formulas (Rajbhandari
et al., 2020: per parameter Φp bytes of parameters, Φg of gradients and K of optimizer states,
each divided by N where the strategy shards it), the activations the forward pass saves for
backward (counted tensor by tensor from the layers' code), and the short-lived buffers around
them. Gradients do not exist during the forward pass (each step ends with zero_grad, which
frees them), so the peak is the larger of two moments:

    start of backward: parameters + optimizer + activations + backward temporaries
    end of backward:   parameters + optimizer + gradients   + end-of-backward temporaries

`benchmarks/bench_memory_estimator.py` compares this with the peak PyTorch's own memory tracker
measures for real steps (`training/memory_probe.py`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from hanformer.errors import ConfigError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import BertForMaskedLM
from hanformer.models.common.layers import TransformerBlock
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM
from hanformer.utils.config import load_json_object

Precision = Literal["fp32", "bf16"]
Strategy = Literal["ddp", "fsdp"]
Optimizer = Literal["adamw", "sgd"]

# Bytes each optimizer keeps per parameter (the K of the ZeRO paper, without the fp32 master
# copy, which hanformer's parameters are themselves: autocast and FSDP2 both train fp32 weights).
OPTIMIZER_BYTES = {"adamw": 8, "sgd": 4}  # AdamW: exp_avg + exp_avg_sq; SGD: the momentum buffer


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """What the formulas need to know about a model: sizes and parameter counts."""

    family: Literal["bert", "gpt"]
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    params: int            # Ψ, all trainable parameters
    block_params: int      # one Transformer block (an FSDP unit)
    matmul_params: int     # weights and biases autocast casts to bf16 (all Linear layers and the tied head)
    attention_dropout: float
    hidden_dropout: float

    @property
    def root_params(self) -> int:
        """What FSDP's root unit holds: embeddings, heads, final norm."""
        return self.params - self.layers * self.block_params

    @classmethod
    def of(cls, config: BertConfig | GPTConfig) -> ModelShape:
        """Count on a weightless (meta-device) copy of the model the Trainer would build."""
        with torch.device("meta"):
            model: nn.Module = GPTForCausalLM(config) if isinstance(config, GPTConfig) else BertForMaskedLM(config)
        blocks = [m for m in model.modules() if isinstance(m, TransformerBlock)]
        matmul = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())
        if isinstance(config, GPTConfig):
            matmul += config.vocab_size * config.n_embd  # the head multiplies by the tied embeddings
            return cls("gpt", config.n_layer, config.n_embd, config.n_head, config.intermediate_size,
                       config.vocab_size, _count(model), _count(blocks[0]), matmul, config.attn_pdrop,
                       config.resid_pdrop)
        matmul += config.vocab_size * (config.hidden_size + 1)  # tied MLM decoder + its bias
        return cls("bert", config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
                   config.intermediate_size, config.vocab_size, _count(model), _count(blocks[0]), matmul,
                   config.attention_probs_dropout_prob, config.hidden_dropout_prob)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclasses.dataclass(frozen=True)
class Line:
    name: str
    bytes: float
    formula: str


@dataclasses.dataclass(frozen=True)
class Estimate:
    lines: list[Line]       # parameters, gradients, optimizer states, activations, temporaries
    total: float            # the peak
    peak_at: str            # "start of backward" or "end of backward"
    total_formula: str
    settings: dict[str, Any]

    def line(self, name: str) -> Line:
        return next(x for x in self.lines if x.name == name)


def model_config(preset: str, family: str, **overrides: int | float) -> BertConfig | GPTConfig:
    """A preset of models/bert/config.py (BERT) or the GPT presets, with fields overridden."""
    if family == "gpt":
        return GPTConfig.preset(preset, **overrides)
    if family == "bert":
        return BertConfig.preset(preset, **overrides)
    raise ConfigError(f"model family {family!r}: use bert or gpt")


def config_from_path(path: str | Path) -> BertConfig | GPTConfig:
    """The model config of a model folder or a config.json (GPT when it has GPT-2's keys)."""
    p = Path(path)
    file = p / "config.json" if p.is_dir() else p
    data = load_json_object(file)
    if "n_embd" in data:
        return GPTConfig.from_dict(data, source=str(file))
    return BertConfig.from_dict(data, source=str(file))


def estimate_memory(config: BertConfig | GPTConfig, *, batch_size: int, seq_len: int,
                    precision: Precision = "fp32", optimizer: Optimizer = "adamw", world_size: int = 1,
                    strategy: Strategy = "ddp", reshard_after_forward: bool = True,
                    activation_checkpointing: bool = False, mask_prob: float = 0.15,
                    fused_attention: bool | None = None) -> Estimate:
    """Per-device memory of one training step with `batch_size` sequences of `seq_len` tokens
    per device (see the module docstring). fused_attention: whether attention runs in a fused
    kernel that keeps no (seq x seq) scores: on GPUs always; on CPUs only without attention
    dropout (None: assume a GPU)."""
    _check(batch_size, seq_len, world_size, precision, optimizer, strategy)
    s = ModelShape.of(config)
    n = world_size
    sharded = strategy == "fsdp" and n > 1
    bf16 = precision == "bf16"
    compute = 2 if bf16 else 4          # bytes of matmul outputs (autocast / FSDP's bf16 params)
    psi = s.params
    k = OPTIMIZER_BYTES[optimizer]
    fused = True if fused_attention is None else fused_attention

    saved = _activations(s, batch_size, seq_len, compute, bf16 and not sharded, activation_checkpointing,
                         mask_prob, fused or s.attention_dropout == 0)
    acts = saved.total
    rows = _head_rows(s, batch_size, seq_len, mask_prob)
    tokens = batch_size * seq_len
    ce_backward = 2 * rows * s.vocab * 4             # the loss runs in fp32: its gradient and log-softmax's
    grad_bytes = compute if sharded else 4           # gradients of the (gathered) parameters
    head_grad = s.vocab * s.hidden * grad_bytes      # the tied embedding's gradient, made by the head
    # Inside the last block's backward: the head's saved tensors are gone, the head's and this
    # block's weight gradients exist, the feed-forward's input gradient is one intermediate-wide
    # tensor more than what it frees (and with checkpointing the block has just been rebuilt).
    in_block = (acts - saved.head + tokens * s.intermediate * compute + head_grad + s.block_params * grad_bytes
                + (saved.layer if activation_checkpointing else 0))

    if sharded:
        stage = "ZeRO-3" if reshard_after_forward else "ZeRO-2"
        params = Line("parameters", 4 * psi / n, f"4Ψ/N (fp32 shards, the master weights; {stage})")
        grads = Line("gradients", 4 * psi / n, "4Ψ/N (fp32 shards: FSDP reduces gradients in fp32)")
        optim = Line("optimizer states", k * psi / n, f"{k}Ψ/N ({_opt_name(optimizer)})")
        blocks_held = 2 if reshard_after_forward else s.layers  # the block computing + the one prefetched
        gathered = (s.root_params + blocks_held * s.block_params) * compute
        held = "root + 2 blocks" if reshard_after_forward else "root + every block"
        reduce_block = s.block_params * 4 + s.block_params * 4 / n  # fp32 reduce-scatter input and output
        phases = {
            "start of backward": (acts + gathered + ce_backward,
                                  f"gathered units ({held}) x {compute} B + loss backward 2·rows·V·4"),
            "last block's backward": (in_block + gathered + reduce_block,
                                      f"gathered units ({held}) + the block's backward + its fp32 reduce-scatter"),
            "end of backward": (4 * psi / n + s.root_params * (2 * compute + 4) + head_grad,
                                "root unit gathered + its unsharded grads + fp32 reduce buffer + embedding grad"),
        }
    else:
        params = Line("parameters", 4 * psi, "4Ψ (fp32 weights, also under bf16 autocast)")
        grads = Line("gradients", 4 * psi, "4Ψ (fp32)")
        optim = Line("optimizer states", k * psi, f"{k}Ψ ({_opt_name(optimizer)})")
        buckets = 4 * psi if strategy == "ddp" and n > 1 else 0  # DDP's gradient buckets, a copy of the grads
        extra = " + DDP buckets 4Ψ" if buckets else ""
        phases = {
            "start of backward": (acts + ce_backward + buckets, "loss backward 2·rows·V·4" + extra),
            "last block's backward": (in_block + buckets, "the block's backward: T·f·c + head and block grads" + extra),
            "end of backward": (4 * psi + head_grad + buckets, "embedding gradient V·h·4 before it is accumulated"
                                + extra),
        }
    peak_at = max(phases, key=lambda name: phases[name][0])
    dynamic, tmp_formula = phases[peak_at]
    # The line shows what the peak moment holds beyond activations (or gradients, at the end).
    held_states = grads.bytes if peak_at == "end of backward" else acts
    temporaries = Line("temporaries", max(0.0, dynamic - held_states), tmp_formula)
    activations = Line("activations", acts, _activation_formula(s, bf16 and not sharded, activation_checkpointing))
    total = params.bytes + optim.bytes + dynamic
    total_formula = {
        "start of backward": "parameters + optimizer states + activations + temporaries (gradients are "
                             "freed between steps and not made yet)",
        "last block's backward": "parameters + optimizer states + activations + temporaries (the head's "
                                 "saved tensors freed, its gradients made)",
        "end of backward": "parameters + optimizer states + gradients + temporaries (activations freed)",
    }[peak_at]
    settings = dict(batch_size=batch_size, seq_len=seq_len, precision=precision, optimizer=optimizer,
                    world_size=n, strategy=strategy, reshard_after_forward=reshard_after_forward,
                    activation_checkpointing=activation_checkpointing, params=psi)
    return Estimate([params, grads, optim, activations, temporaries], total, peak_at, total_formula, settings)


def largest_batch(config: BertConfig | GPTConfig, device_bytes: float, **settings: object) -> int:
    """The largest per-device batch whose estimated peak fits `device_bytes` (0: not even one)."""
    def fits(b: int) -> bool:
        return estimate_memory(config, batch_size=b, **settings).total <= device_bytes  # type: ignore[arg-type]

    if not fits(1):
        return 0
    low, high = 1, 2
    while fits(high):
        low, high = high, high * 2
        if high > 1 << 24:
            return low
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def _check(batch_size: int, seq_len: int, world_size: int, precision: str, optimizer: str, strategy: str) -> None:
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len), ("world_size", world_size)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision {precision!r}: the estimator knows fp32 and bf16")
    if optimizer not in OPTIMIZER_BYTES:
        raise ConfigError(f"optimizer {optimizer!r}: the estimator knows {', '.join(OPTIMIZER_BYTES)}")
    if strategy not in ("ddp", "fsdp"):
        raise ConfigError(f"strategy {strategy!r}: use ddp or fsdp")


def _opt_name(optimizer: str) -> str:
    return "AdamW: exp_avg + exp_avg_sq, fp32" if optimizer == "adamw" else "SGD momentum buffer, fp32"


def _head_rows(s: ModelShape, batch: int, seq: int, mask_prob: float) -> int:
    """Rows the vocabulary projection and the loss see: BERT's masked positions, GPT's next tokens."""
    return math.ceil(mask_prob * batch * seq) if s.family == "bert" else batch * (seq - 1)


def _layer_activations(s: ModelShape, tokens: int, batch: int, seq: int, compute: int, fused: bool) -> float:
    """What one block's forward saves for backward: 6 hidden-wide matmul inputs/outputs in the
    compute dtype (normed input, Q/K/V, attention output, second normed input), the two
    LayerNorm inputs in fp32 (LayerNorm runs in fp32 under autocast), the feed-forward's two
    intermediate-wide tensors, LayerNorm statistics, attention's log-sum-exp and dropout masks."""
    h, f = s.hidden, s.intermediate
    saved = tokens * (6 * compute * h + 2 * 4 * h + 2 * compute * f) + 2 * 2 * tokens * 4
    if s.hidden_dropout > 0:
        saved += 2 * tokens * h  # two residual dropout masks, one byte per element
    scores = batch * s.heads * seq * seq
    if fused:
        saved += batch * s.heads * seq * 4  # log-sum-exp per query
    else:  # attention's math (models/common/sdpa.py) keeps the probabilities, the dropout mask,
        # the dropped probabilities and the scaled queries
        saved += scores * (2 * compute + 1) + tokens * h * compute
    return saved


@dataclasses.dataclass(frozen=True)
class _Saved:
    """Bytes the forward pass leaves for backward, by where they sit."""

    blocks: float      # the Transformer blocks' saved tensors (with checkpointing: their inputs)
    layer: float       # one block's full set (what checkpointing rebuilds at a time)
    head: float        # the head's saved tensors, freed as soon as backward passes the head
    kept: float        # the logits (returned in the output, alive until the step ends) and embeddings
    casts: float       # autocast's bf16 weight copies

    @property
    def total(self) -> float:
        return self.blocks + self.head + self.kept + self.casts


def _activations(s: ModelShape, batch: int, seq: int, compute: int, autocast_casts: bool, checkpointing: bool,
                 mask_prob: float, fused: bool) -> _Saved:
    tokens = batch * seq
    h = s.hidden
    layer = _layer_activations(s, tokens, batch, seq, compute, fused)
    # With checkpointing only each block's input (the fp32 residual stream) stays.
    blocks = s.layers * tokens * h * 4 if checkpointing else s.layers * layer
    rows = _head_rows(s, batch, seq, mask_prob)
    logits = rows * s.vocab * compute if s.family == "bert" else tokens * s.vocab * compute
    if s.family == "gpt":
        # final LayerNorm input (fp32) + stats, its output (compute dtype), the log-softmax (fp32)
        head = tokens * h * (4 + compute) + 2 * tokens * 4 + rows * s.vocab * 4
        embed = tokens * h if s.hidden_dropout > 0 else 0  # embedding dropout mask
    else:
        # the MLM head on the masked rows: transform input and output, LayerNorm input (fp32) and
        # output, log-softmax (fp32); the embedding LayerNorm's input (fp32) + stats
        head = rows * h * (3 * compute + 4) + 2 * rows * 4 + rows * s.vocab * 4
        embed = tokens * h * 4 + 2 * tokens * 4 + (tokens * h if s.hidden_dropout > 0 else 0)
    casts = 2 * s.matmul_params if autocast_casts else 0
    return _Saved(blocks, layer, head, logits + embed, casts)


def _activation_formula(s: ModelShape, casts: bool, checkpointing: bool) -> str:
    per_layer = "T·(6·c·h + 8h + 2·c·f) + LN stats + attention (c: bytes of the compute dtype, T: tokens)"
    blocks = f"L·T·h·4 (block inputs; one block [{per_layer}] is rebuilt at a time)" if checkpointing \
        else f"L·[{per_layer}]"
    head = ("final LN + logits T·V·c + log-softmax (T-b)·V·4" if s.family == "gpt"
            else "embedding LN + MLM head on the masked rows M: logits M·V·c + log-softmax M·V·4")
    return f"{blocks} + {head}" + (" + autocast's bf16 weight copies 2·Ψ_matmul" if casts else "")


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> float:
    """'80GiB', '40 GB', '512MiB' or a number of bytes -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"device memory {text!r}: write a size such as 80GiB, 40GB or 512MiB")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def format_size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


def report(estimate: Estimate, explain: bool = False) -> str:
    """The breakdown as text, one line each (with their formulas when `explain`)."""
    rows = [(line.name, line.bytes, line.formula) for line in estimate.lines]
    rows.append((f"total (peak, {estimate.peak_at})", estimate.total, estimate.total_formula))
    width = max(len(name) for name, _, _ in rows)
    out = []
    for name, value, formula in rows:
        text = f"  {name:<{width}}  {format_size(value):>11}"
        out.append(text + (f"   {formula}" if explain else ""))
    if explain:
        out.append(f"  (Ψ = {estimate.settings['params']:,} parameters, N = {estimate.settings['world_size']} "
                   "processes; DeepSpeed's ZeRO formulas for mixed precision and Adam: stage 0 (DDP) "
                   "2Ψ + 2Ψ + 12Ψ, ZeRO-2 2Ψ + (2 + 12)Ψ/N, ZeRO-3 (2 + 2 + 12)Ψ/N. hanformer's fp32 "
                   "weights are the master copy, so its 4 + 4 + 8 bytes are the same 16 per parameter; under "
                   "ZeRO-2 the bf16 copy (2Ψ) is held gathered from forward to backward, under temporaries)")
    return "\n".join(out)
