"""Stage 1, normalization: Unicode normal form, control-character cleanup, optional lowercasing.

BERT's original normalizer strips accents by decomposing text (NFD) and dropping combining
marks. On Hangul that decomposition turns every syllable into jamo (한 -> ᄒ ᅡ ᆫ), so our
pipelines never strip accents: they compose (NFC) first and keep `strip_accents=False`.
"""

from __future__ import annotations

from tokenizers import normalizers

from hanformer.tokenization.config import TokenizerConfig


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
