"""A tiny model and data set for trainer tests (also run under torchrun by the DDP test)."""

from __future__ import annotations

import dataclasses
import json
import sys

import torch
from torch import nn


@dataclasses.dataclass
class Out:
    loss: torch.Tensor
    logits: torch.Tensor


class ToyClassifier(nn.Module):
    """Embedding bag + dropout + LayerNorm + linear: has biases, norms and randomness."""

    def __init__(self, vocab: int = 50, hidden: int = 16, classes: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, classes)

    def forward(self, input_ids, attention_mask, labels):
        h = (self.emb(input_ids) * attention_mask[..., None]).sum(1) / attention_mask.sum(1, keepdim=True)
        logits = self.out(self.drop(self.norm(h)))
        return Out(loss=nn.functional.cross_entropy(logits, labels), logits=logits)


def toy_examples(n: int = 64, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(3, 9, (1,), generator=g))
        ids = torch.randint(1, 50, (length,), generator=g)
        out.append({"ids": ids.tolist(), "label": int(ids.sum()) % 3})
    return out


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    width = max(len(e["ids"]) for e in examples)
    ids = torch.zeros(len(examples), width, dtype=torch.long)
    mask = torch.zeros(len(examples), width, dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e["ids"])] = torch.tensor(e["ids"])
        mask[i, : len(e["ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask,
            "labels": torch.tensor([e["label"] for e in examples])}


def run(output_dir: str, batch_size: int, grad_accum: int, steps: int, dropout: float = 0.0) -> None:
    """Entry point for the DDP test: train and write nothing but metrics.jsonl (rank 0)."""
    from hanformer.data.loader import ResumableLoader
    from hanformer.training import Trainer, TrainerConfig, seed_everything
    from hanformer.training.distributed import env_dist_info

    info = env_dist_info()
    seed_everything(0)
    model = ToyClassifier(dropout=dropout)
    loader = ResumableLoader(toy_examples(), collate, batch_size, seed=1, rank=info.rank,
                             world_size=info.world_size)
    cfg = TrainerConfig(output_dir=output_dir, max_steps=steps, grad_accum=grad_accum, lr=0.05,
                        log_every=1, progress=False, tensorboard=False, warmup_steps=2, peak_tflops=1.0)
    result = Trainer(model, cfg, loader).train()
    if info.is_main:
        w = model.out.weight.detach().flatten().tolist()
        print(json.dumps({"step": result.step, "weights": w}))


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
