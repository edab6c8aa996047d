"""Tiny BERT, GPT and encoder-decoder runs for the FSDP tests: in the test process (one process) and under
torchrun (two processes, gloo), where `main` runs every scenario of one launch in turn."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hanformer.data.loader import ResumableLoader
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import BertForMaskedLM
from hanformer.models.encoder_decoder.config import TransformerConfig
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM
from hanformer.training import Trainer, TrainerConfig, seed_everything
from hanformer.training.distributed import env_dist_info
from hanformer.training.progress import read_metrics

VOCAB = 61
SEQ = 12


def tiny_model(family: str, dropout: float = 0.0, hidden: int = 16) -> torch.nn.Module:
    """Without dropout by default: processes draw different masks, so only dropout-free runs can
    match one process."""
    if family == "gpt":
        return GPTForCausalLM(GPTConfig(vocab_size=VOCAB, n_positions=SEQ, n_embd=hidden, n_layer=2, n_head=2,
                                        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout))
    if family == "seq2seq":
        return TransformerForSeq2SeqLM(TransformerConfig.preset(
            "tiny", vocab_size=VOCAB, d_model=hidden, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=SEQ + 1, pad_token_id=0, eos_token_id=1,
            decoder_start_token_id=0, dropout=dropout, attention_dropout=dropout))
    return BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=32, max_position_embeddings=SEQ, hidden_dropout_prob=dropout,
                                      attention_probs_dropout_prob=dropout))


def examples(family: str, n: int = 48) -> list[dict[str, Any]]:
    """GPT: full-length sequences; BERT: varied lengths (padding, so the unpadded path runs) with
    a fixed third of the positions to predict."""
    g = torch.Generator().manual_seed(7)
    out = []
    for i in range(n):
        length = SEQ if family == "gpt" else int(torch.randint(5, SEQ + 1, (1,), generator=g))
        ids = torch.randint(3, VOCAB, (length,), generator=g).tolist()
        out.append({"ids": ids, "predict": [j % 3 == i % 3 for j in range(length)]})
    return out


def collate(batch: list[dict[str, Any]], family: str) -> dict[str, torch.Tensor]:
    if family == "seq2seq":  # translate each (padded) sequence into itself reversed (padded targets)
        sources = collate(batch, "bert")
        reversed_ids = [e["ids"][::-1][:len(e["ids"]) - i % 3] for i, e in enumerate(batch)]
        targets = collate([{"ids": ids, "predict": [True] * len(ids)} for ids in reversed_ids], "bert")
        return {**sources, "labels": targets["labels"]}
    width = max(len(e["ids"]) for e in batch)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e["ids"])
        ids[i, :n] = torch.tensor(e["ids"])
        mask[i, :n] = 1
        if family == "gpt":
            labels[i, :n] = ids[i, :n]
        else:
            keep = torch.tensor(e["predict"])
            labels[i, :n] = torch.where(keep, ids[i, :n], torch.tensor(-100))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def train(output_dir: str | Path, family: str = "gpt", *, grad_accum: int = 1, steps: int = 4,
          parallelism: str = "ddp", activation_checkpointing: bool = False, save_every: int = 0,
          resume: str | None = None, batch_size: int = 4, cpu_offload: bool = False,
          make_model: Callable[[], torch.nn.Module] | None = None) -> dict[str, Any]:
    """Train and return the losses rank 0 logged and the final model folder."""
    info = env_dist_info()
    seed_everything(0)
    model = make_model() if make_model is not None else tiny_model(family)
    loader = ResumableLoader(examples(family), lambda b: collate(b, family), batch_size, seed=1,
                             rank=info.rank, world_size=info.world_size)
    cfg = TrainerConfig(output_dir=str(output_dir), max_steps=steps, grad_accum=grad_accum, lr=0.01,
                        log_every=1, progress=False, tensorboard=False, warmup_steps=1, peak_tflops=1.0,
                        save_every=save_every, keep_last=5, device="cpu", parallelism=parallelism,  # type: ignore[arg-type]
                        activation_checkpointing=activation_checkpointing, cpu_offload=cpu_offload)
    result = Trainer(model, cfg, loader).train(resume=resume)
    losses = [r["loss"] for r in read_metrics(output_dir, "train")] if info.is_main else []
    return {"losses": losses, "final": str(result.final_dir), "step": result.step}


def main(root: str) -> None:
    """The two-process side of tests/test_training_fsdp.py."""
    out = Path(root)
    report = {
        "gpt": train(out / "gpt", "gpt", parallelism="fsdp", save_every=2),
        "gpt_resumed": train(out / "gpt_resumed", "gpt", parallelism="fsdp",
                             resume=str(out / "gpt" / "checkpoints" / "step-00000002")),
        "gpt_ac": train(out / "gpt_ac", "gpt", parallelism="fsdp", activation_checkpointing=True),
        "bert": train(out / "bert", "bert", parallelism="fsdp"),
        "seq2seq": train(out / "seq2seq", "seq2seq", parallelism="fsdp"),
    }
    if env_dist_info().is_main:
        print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
