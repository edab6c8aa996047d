"""`write_attention_view`: load a checkpoint, run it on one sentence and write the offline page."""

from __future__ import annotations

import os
from pathlib import Path

from hanformer.errors import ConfigError
from hanformer.models.checkpoint import load_model
from hanformer.tasks.model_dir import resolve_model_dir
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.visualization.attention import attention_data
from hanformer.visualization.config import AttentionViewConfig
from hanformer.visualization.html import write_attention_html


def write_attention_view(model_dir: str | os.PathLike[str], out: str | os.PathLike[str],
                         config: AttentionViewConfig) -> Path:
    """Load the checkpoint in `model_dir`, run it on `config.text` and write the views to `out`."""
    if not config.text.strip():
        raise ConfigError("--text is empty; give the sentence to look at")
    model_dir = resolve_model_dir(model_dir)  # a fine-tuning output dir shows its best/
    model = load_model(model_dir)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    data = attention_data(model, tokenizer, config.text, config.pair, max_length=config.max_length)
    return write_attention_html(data, out, layer=config.layer, heads=config.heads or None, mode=config.mode,
                                view=config.view, title=config.title, model_name=Path(model_dir).name)
