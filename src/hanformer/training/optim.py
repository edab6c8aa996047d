"""Optimizers: AdamW (decoupled weight decay), SGD with momentum, and LAMB.

Weight decay is never applied to biases and normalisation weights (every parameter with fewer
than two dimensions), as in the original BERT: decaying a LayerNorm gain towards zero only
hurts, and biases have nothing to regularise.

Layer-wise learning-rate decay (`layer_lr_decay` < 1) gives each encoder layer of a BERT-family
model its own rate: the heads and pooler the full rate, layer i of L the rate times
decay**(L - i), the embeddings decay**(L + 1). Depth is read from parameter names
(`...embeddings.`, `...layers.<i>.`), so every model built on `BertModel` gets it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import overload

import torch
from torch import nn

from hanformer.errors import ConfigError
from hanformer.training.config import TrainerConfig

_LAYER_INDEX = re.compile(r"(?:^|\.)layers\.(\d+)\.")
_EMBEDDINGS = re.compile(r"(?:^|\.)embeddings\.")


def layer_depths(names: Iterable[str]) -> dict[str, int]:
    """How many layers below the top each parameter sits: 0 for heads and pooler, L - i for
    encoder layer i of L, L + 1 for the embeddings (names without either count as heads)."""
    names = list(names)
    indices = [int(m.group(1)) for n in names if (m := _LAYER_INDEX.search(n))]
    layers = max(indices) + 1 if indices else 0
    depths = {}
    for name in names:
        if (m := _LAYER_INDEX.search(name)) is not None:
            depths[name] = layers - int(m.group(1))
        elif _EMBEDDINGS.search(name):
            depths[name] = layers + 1
        else:
            depths[name] = 0
    return depths


def freeze_token_embeddings(model: nn.Module) -> int:
    """Stop training the token embedding matrix (`...embeddings.word_embeddings`, tied output
    projections with it); returns how many parameters it holds. `param_groups` leaves it out."""
    frozen = 0
    for name, parameter in model.named_parameters():
        if name.endswith("embeddings.word_embeddings.weight"):
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    if not frozen:
        raise ConfigError("freeze_embeddings: this model has no token embedding matrix (embeddings.word_embeddings)")
    return frozen


def param_groups(model: nn.Module, weight_decay: float, lr: float | None = None,
                 layer_lr_decay: float = 1.0) -> list[dict]:
    """Matrices/embeddings (decayed) and biases/norm weights (not decayed), split further by
    depth when `layer_lr_decay` < 1: each group then carries its own `lr` (`lr` x decay**depth).
    The first group is the one at the full rate, so the rate the trainer logs is the peak."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    depths = layer_depths(n for n, _ in named) if layer_lr_decay != 1.0 else {n: 0 for n, _ in named}
    buckets: dict[tuple[int, bool], list[nn.Parameter]] = {}
    for name, p in named:
        buckets.setdefault((depths[name], p.ndim >= 2), []).append(p)
    groups = []
    for depth, decayed in sorted(buckets, key=lambda key: (key[0], not key[1])):
        group: dict = {"params": buckets[depth, decayed], "weight_decay": weight_decay if decayed else 0.0}
        if layer_lr_decay != 1.0 and lr is not None:
            group["lr"] = lr * layer_lr_decay ** depth
        groups.append(group)
    return groups


class Lamb(torch.optim.Optimizer):
    """LAMB (You et al., 2019): Adam's update rescaled per tensor by ||w|| / ||update||.

    Lets large batches train with a single learning rate. Weight decay is part of the update
    (decoupled, as in AdamW) before the trust ratio is taken.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    # The same two signatures as torch's Optimizer.step: a closure's loss comes back, else None.
    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                step = state["step"].item()
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat = m / (1 - beta1 ** step)
                v_hat = v / (1 - beta2 ** step)
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                w_norm = p.norm()
                u_norm = update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.add_(update * trust, alpha=-group["lr"])
        return loss


def build_optimizer(model: nn.Module, cfg: TrainerConfig, device_type: str = "cpu") -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.lr, cfg.layer_lr_decay)
    if cfg.optimizer == "adamw":
        # The fused kernel (one pass over all tensors) exists on CPU and CUDA in torch >= 2.4.
        try:
            return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                     fused=device_type in ("cpu", "cuda"))
        except (RuntimeError, TypeError):  # older torch or an unsupported dtype
            return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return Lamb(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
