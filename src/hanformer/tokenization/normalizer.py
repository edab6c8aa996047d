"""Stage 1, normalization: Unicode normal form, control-character cleanup, optional lowercasing.

BERT's original normalizer strips accents by decomposing text (NFD) and dropping combining
marks. On Hangul that decomposition turns every syllable into jamo (한 -> ᄒ ᅡ ᆫ), so our
pipelines never strip accents: they compose (NFC) first and keep `strip_accents=False`.
"""

from __future__ import annotations

import json
from typing import Any

import tokenizers
from tokenizers import normalizers

from hanformer.tokenization.config import UNK, TokenizerConfig
from hanformer.tokenization.model import build_wordpiece


def build_normalizer(config: TokenizerConfig) -> normalizers.Normalizer:
    bert = normalizers.BertNormalizer(
        clean_text=config.clean_text,
        handle_chinese_chars=config.handle_chinese_chars,
        strip_accents=False,  # explicit: None would follow `lowercase` and decompose Hangul
        lowercase=config.lowercase,
    )
    unicode_form = {"nfc": normalizers.NFC(), "nfkc": normalizers.NFKC(), "none": None}[config.unicode_normalization]
    return bert if unicode_form is None else normalizers.Sequence([unicode_form, bert])


def decomposes_hangul(normalizer: normalizers.Normalizer | None) -> bool:
    """True when `normalizer` breaks Hangul syllables into jamo (e.g. an uncased English BERT).

    Checked by behaviour rather than by settings, so it also catches foreign tokenizer.json files.
    """
    if normalizer is None:
        return False
    sample = "한국어 위키백과"
    return normalizer.normalize_str(sample).replace(" ", "") != sample.replace(" ", "")


def normalizer_steps(normalizer: normalizers.Normalizer | None) -> list[dict[str, Any]]:
    """The serialized steps of `normalizer`, in order, with Sequences flattened."""
    if normalizer is None:
        return []
    holder = tokenizers.Tokenizer(build_wordpiece({UNK: 0}, UNK))
    holder.normalizer = normalizer
    steps, stack = [], [json.loads(holder.to_str())["normalizer"]]
    while stack:
        item = stack.pop()
        if item.get("type") == "Sequence":
            stack.extend(reversed(item.get("normalizers", [])))
        else:
            steps.append(item)
    return steps


def bert_normalizer_settings(normalizer: normalizers.Normalizer | None) -> dict[str, Any]:
    """lowercase/strip_accents/handle_chinese_chars of the BertNormalizer inside `normalizer`."""
    for step in normalizer_steps(normalizer):
        if step.get("type") == "BertNormalizer":
            return {k: step[k] for k in ("lowercase", "strip_accents", "handle_chinese_chars")}
    return {"lowercase": False, "strip_accents": False, "handle_chinese_chars": False}
