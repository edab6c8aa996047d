"""The `[tokenizer]` stage: train the WordPiece vocabulary and measure it on held-out task text."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hanformer.recipes.caching import Stage, StageContext
from hanformer.recipes.config_merge import build_config, stage_settings
from hanformer.recipes.layout import TOKENIZER
from hanformer.recipes.recipe import Recipe
from hanformer.tasks.registry import get_task
from hanformer.tokenization.config import TokenizerConfig
from hanformer.tokenization.stats import tokenizer_stats
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.tokenization.trainer import train_tokenizer


def tokenizer_stage(recipe: Recipe) -> Stage:
    sec = recipe.tokenizer
    assert sec is not None
    source = f"{recipe.path} [tokenizer]"
    files = [Path(p) for p in sec.input]
    config = build_config(TokenizerConfig, sec.settings, {}, source, {"seed": recipe.run.seed})
    sample = _stats_sample(recipe)
    shown = [recipe.report.attention_text] if recipe.report else None

    def run(ctx: StageContext) -> dict[str, Any]:
        train_tokenizer([str(f) for f in files], config, ctx.dir, progress=False)
        return tokenizer_summary(ctx.dir, sample, shown)

    return Stage(key=TOKENIZER, title="train the WordPiece vocabulary", run=run,
                 **stage_settings(config, stats_sample=[str(p) for p, _ in sample]),
                 inputs=[*files, *(p for p, _ in sample)], outputs=[""], budget=sec.budget)


def _stats_sample(recipe: Recipe) -> list[tuple[Path, str]]:
    """(file, task) pairs of text the vocabulary was not trained on, for the [UNK] rate: each
    task's held-out file (else its validation or training file); at most two tasks."""
    out = []
    for task in recipe.finetune.values():
        for p in (task.test, task.valid, task.train):
            if p and Path(p).is_file():
                out.append((Path(p), task.task))
                break
    return out[:2]


def tokenizer_summary(tokenizer_dir: Path, sample: list[tuple[Path, str]],
                      show: list[str] | None = None) -> dict[str, Any]:
    """Vocabulary size, [UNK] rate and tokens per word on `sample` (via `tokenizer_stats`), and
    how a few sentences (`show`, then short ones from the sample) are split."""
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir)
    summary: dict[str, Any] = {"vocab_size": tokenizer.vocab_size}
    texts = _sample_texts(sample)
    if texts:
        stats = dataclasses.asdict(tokenizer_stats(tokenizer, texts=texts))
        summary.update({k: v for k, v in stats.items() if k != "vocab_hash"})
        summary["sample"] = ", ".join(str(p) for p, _ in sample)
    shown = [t for t in (show or []) if t] + [t for t in texts if 8 <= len(t) <= 40][:3]
    summary["examples"] = [{"text": t, "tokens": tokenizer.encode(t).tokens[1:-1]} for t in shown[:4]]
    return summary


def _sample_texts(sample: list[tuple[Path, str]], limit: int = 5000) -> list[str]:
    """Sentences of task files, read with each task's own reader (seeded order kept)."""
    texts: list[str] = []
    for path, task in sample:
        for e in get_task(task).read(path).examples[:limit]:
            for field in ("text", "text_pair", "question", "context"):
                value = getattr(e, field, None)
                if isinstance(value, str) and value.strip():
                    texts.append(value)
    return texts[:limit]
