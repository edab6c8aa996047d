"""Score and sample a trained RNN language model folder: the functions `hanformer rnn` calls.

A model folder (OUT/final of `train_rnn`) holds the model and its tokenizer, so held-out text is
read into the same token stream it was trained on (`tokens.py`).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from hanformer.errors import ConfigError
from hanformer.generation.api import generate
from hanformer.generation.config import GenerationConfig
from hanformer.models.rnn.model import RNNLanguageModel
from hanformer.models.rnn.score import score_stream
from hanformer.models.rnn.tokens import Paths, text_stream
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import env_dist_info, resolve_device
from hanformer.utils.corpus import expand_paths

Folder = str | os.PathLike[str]


def load_rnn(model_dir: Folder, device: str = "auto") -> tuple[RNNLanguageModel, Tokenizer]:
    """The model (eval mode, on `device`) and the tokenizer saved with it."""
    model = RNNLanguageModel.from_pretrained(model_dir, device=resolve_device(device, env_dist_info()))
    return model, Tokenizer.from_pretrained(model_dir)


def rnn_perplexity(model_dir: Folder, files: Paths, *, input_format: str = "auto", streams: int = 1,
                   window: int = 256, device: str = "auto") -> dict[str, Any]:
    """Held-out loss and perplexity per token of `files` (see `score.py` for the definition)."""
    if streams < 1 or window < 1:
        raise ConfigError(f"--streams ({streams}) and --window ({window}) must be >= 1")
    model, tokenizer = load_rnn(model_dir, device)
    stream = text_stream(files, tokenizer, input_format)
    stream.require(2, "held-out")
    with torch.inference_mode():
        s = score_stream(model, stream.ids, streams=streams, window=window)
    return {"model": str(model_dir), "files": [str(p) for p in expand_paths(files)], "documents": stream.documents,
            "tokens": int(len(stream.ids)), "predicted_tokens": s.predicted, "loss": s.loss,
            "perplexity": s.perplexity, "next_token_accuracy": s.correct / max(s.predicted, 1)}


def sample_rnn(model_dir: Folder, *, prompt: str = "", num: int = 5, max_new_tokens: int = 50,
               temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
               device: str = "auto") -> list[str]:
    """`num` continuations of `prompt` (each with the prompt in front), sampled token by token by
    `hanformer.generation.generate`, which starts an RNN after a document separator and stops at the next."""
    if num < 1:
        raise ConfigError(f"--num {num}: ask for at least one sample")
    model, tokenizer = load_rnn(model_dir, device)
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                              top_k=top_k, top_p=top_p, num_return_sequences=num, seed=seed)
    # Decoded with the prompt, so a continuation that begins inside a word (## piece) joins it.
    head = tokenizer.decode(tokenizer.encode(prompt, add_special_tokens=False).ids, skip_special_tokens=True)
    return [head + r.text for r in generate(model, [prompt], config, tokenizer=tokenizer)]
