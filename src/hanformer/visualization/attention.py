"""Attention data for one input: what every head of every layer attends to.

`attention_data(model, tokenizer, text, pair)` runs the model once with
`output_attentions=True` and returns an `AttentionData`: the tokens, their segment ids and
the attention probabilities as one tensor `[layers, heads, seq, seq]` (row = the token that
attends, column = the token attended to). Notebooks use it directly; the HTML views and the
web app render `AttentionData.to_dict()`.

Two aggregations help when 144 heads are too many to read:

* mean over heads: one map per layer;
* attention rollout (Abnar & Zuidema, 2020): how much each token's representation at layer
  `l` draws on each *input* token, following the attention (plus the residual path) through
  all layers below.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any

import torch

from hanformer.errors import InputError
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.visualization.html import render_attention_html


def mean_over_heads(attentions: torch.Tensor) -> torch.Tensor:
    """`[layers, heads, seq, seq]` -> `[layers, seq, seq]`; rows still sum to one."""
    _check_shape(attentions)
    return attentions.mean(dim=1)


def attention_rollout(attentions: torch.Tensor, residual: bool = True) -> torch.Tensor:
    """Attention rollout across layers: `[layers, heads, seq, seq]` -> `[layers, seq, seq]`.

    Row `i` of layer `l` says how much token `i` after layer `l` is made of each input token.
    Heads are averaged first; with `residual`, each layer's map is `0.5 * A + 0.5 * I`
    (renormalised), because the skip connection carries half of every token through
    unchanged; leaving it out makes the rollout collapse onto a few tokens within a few layers.
    """
    mean = mean_over_heads(attentions).double()
    seq = mean.shape[-1]
    eye = torch.eye(seq, dtype=mean.dtype)
    out = torch.empty_like(mean)
    joint = eye
    for layer in range(mean.shape[0]):
        a = mean[layer]
        if residual:
            a = 0.5 * a + 0.5 * eye
            a = a / a.sum(dim=-1, keepdim=True)
        joint = a @ joint
        out[layer] = joint
    return out.to(attentions.dtype)


def _check_shape(attentions: torch.Tensor) -> None:
    if attentions.dim() != 4 or attentions.shape[-1] != attentions.shape[-2]:
        raise ValueError(f"expected attentions of shape [layers, heads, seq, seq], got {tuple(attentions.shape)}")


def _pack(tensor: torch.Tensor) -> dict[str, Any]:
    """Quantise probabilities in [0, 1] to bytes: 4x smaller than float32, 1/255 resolution,
    which is finer than any colour or line width can show."""
    q = (tensor.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()
    return {"encoding": "uint8-base64", "scale": 255, "shape": list(tensor.shape),
            "data": base64.b64encode(q.numpy().tobytes()).decode("ascii")}


def _plain(tensor: torch.Tensor, decimals: int) -> list[Any]:
    return torch.round(tensor.double(), decimals=decimals).tolist()


@dataclass
class AttentionData:
    """The attention of one encoded input.

    `attentions[l, h, i, j]` is how much token `i` attends to token `j` in head `h` of layer `l`.
    """

    tokens: list[str]
    type_ids: list[int]
    attentions: torch.Tensor
    text: str = ""
    pair: str | None = None
    special_mask: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_shape(self.attentions)
        if self.attentions.shape[-1] != len(self.tokens):
            raise ValueError(f"{len(self.tokens)} tokens but attention over {self.attentions.shape[-1]} positions")
        if not self.special_mask:
            self.special_mask = [False] * len(self.tokens)

    @property
    def num_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.attentions.shape[1])

    def mean_over_heads(self) -> torch.Tensor:
        return mean_over_heads(self.attentions)

    def rollout(self, residual: bool = True) -> torch.Tensor:
        return attention_rollout(self.attentions, residual=residual)

    def _repr_html_(self) -> str:
        """Jupyter shows the views inline: the offline page inside an iframe, so its script and
        styles run the same in classic Jupyter, JupyterLab and VS Code, apart from the notebook's."""
        height = 330 + 22 * len(self.tokens)
        page = render_attention_html(self)
        return (f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width: 100%; height: {height}px; '
                f'border: 0;" sandbox="allow-scripts"></iframe>')

    def to_dict(self, packed: bool = False, decimals: int = 4) -> dict[str, Any]:
        """A JSON-ready dict, the one format the HTML views and the web API share.

        `packed=True` stores the three tensors as base64 bytes (for pages and files);
        otherwise they are nested lists of floats (for people reading the JSON).
        """
        encode = _pack if packed else (lambda t: _plain(t, decimals))
        return {
            "tokens": list(self.tokens),
            "type_ids": list(self.type_ids),
            "special_mask": list(self.special_mask),
            "text": self.text,
            "pair": self.pair,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "attentions": encode(self.attentions),
            "mean": encode(self.mean_over_heads()),
            "rollout": encode(self.rollout()),
        }


def attention_data(model: Any, tokenizer: Tokenizer, text: str, pair: str | None = None,
                   max_length: int | None = 128) -> AttentionData:
    """Run `model` on `text` (and `pair`) and collect every layer's attention probabilities.

    Works with any hanformer BERT class (base model or a task head) whose forward accepts
    `output_attentions=True`. Inputs longer than `max_length` tokens are refused rather than
    silently cut, because a view of half a sentence is misleading; raise the limit to see more
    (the page grows with the square of the length).
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("text to visualise is empty; give a sentence")
    encoding = tokenizer.encode(text, pair=pair)
    ids = list(encoding.ids)
    if max_length is not None and len(ids) > max_length:
        raise InputError(f"the input is {len(ids)} tokens, more than max_length={max_length}; "
                         f"shorten the text or raise max_length")
    input_ids = torch.tensor([ids], dtype=torch.long)
    type_ids = list(encoding.type_ids)
    token_type_ids = torch.tensor([type_ids], dtype=torch.long)
    attention_mask = torch.ones_like(input_ids)
    device = _device_of(model)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with torch.inference_mode():
            out = model(input_ids.to(device), attention_mask=attention_mask.to(device),
                        token_type_ids=token_type_ids.to(device), output_attentions=True)
    finally:
        if was_training:
            model.train()
    attentions = getattr(out, "attentions", None)
    if not attentions:
        raise InputError(f"{type(model).__name__} returned no attentions; "
                         "it must support output_attentions=True")
    stacked = torch.stack([a[0].float().cpu() for a in attentions])  # [layers, heads, seq, seq]
    special = _special_mask(tokenizer, ids)
    return AttentionData(tokens=list(encoding.tokens), type_ids=type_ids, attentions=stacked,
                         text=text, pair=pair, special_mask=special)


def _device_of(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def _special_mask(tokenizer: Tokenizer, ids: list[int]) -> list[bool]:
    specials = set()
    for name in ("cls_token_id", "sep_token_id", "pad_token_id", "mask_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            specials.add(value)
    mask_id = getattr(tokenizer, "mask_token_id", None)
    unk_id = getattr(tokenizer, "unk_token_id", None)
    # [MASK] and [UNK] stand for words, so they are drawn as words, not as markers.
    return [i in specials and i not in (mask_id, unk_id) for i in ids]
