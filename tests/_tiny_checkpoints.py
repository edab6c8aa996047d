"""Tiny random BERT checkpoints (real classes, Hugging Face layout) with a tiny trained tokenizer,
for the attention, serving and browser tests."""

from __future__ import annotations

from pathlib import Path

SENTENCES = """\
나는 오늘 학교에 갔다.
이 영화 정말 재미있어요!
이순신은 조선 중기의 무신이다.
서울은 대한민국의 수도이다.
날씨가 좋아서 공원에 산책을 갔다.
The cat sat on the mat.
Seoul is the capital of Korea.
I really liked this movie.
The weather was nice so we went for a walk.
"""


def make_tokenizer(directory: Path):
    from hanformer.tokenization.config import TokenizerConfig
    from hanformer.tokenization.trainer import train_tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.txt"
    corpus.write_text(SENTENCES * 3, encoding="utf-8")
    return train_tokenizer(corpus, TokenizerConfig(vocab_size=400, min_frequency=1), progress=False)


def make_checkpoint(directory: Path, tokenizer, architecture: str, labels: list[str] | None = None,
                    layers: int = 2, heads: int = 4, seed: int = 0) -> Path:
    """Save a random `architecture` model (hidden 32) and `tokenizer` to `directory`."""
    import torch

    from hanformer.models.bert.config import BertConfig
    from hanformer.models.registry import architectures

    torch.manual_seed(seed)
    extra = {"id2label": dict(enumerate(labels))} if labels else {}
    config = BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size, num_hidden_layers=layers,
                               hidden_size=32, num_attention_heads=heads, intermediate_size=64,
                               max_position_embeddings=128, **extra)
    model = architectures("bert")[architecture](config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_gpt_checkpoint(directory: Path, tokenizer, n_positions: int = 64, seed: int = 0) -> Path:
    """Save a random `GPTForCausalLM` (2 layers, width 32) and `tokenizer` to `directory`, with the
    special tokens `hanformer pretrain --objective clm` sets ([SEP] starts and ends a text)."""
    import torch

    from hanformer.models.gpt.config import GPTConfig
    from hanformer.models.gpt.model import GPTForCausalLM

    torch.manual_seed(seed)
    sep = tokenizer.sep_token_id
    config = GPTConfig.preset("tiny", vocab_size=tokenizer.vocab_size, n_positions=n_positions, n_embd=32,
                              n_head=2, bos_token_id=sep, eos_token_id=sep, pad_token_id=tokenizer.pad_token_id)
    model = GPTForCausalLM(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
