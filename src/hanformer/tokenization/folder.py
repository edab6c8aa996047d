"""Reading and writing a Hugging Face tokenizer folder: tokenizer.json, vocab.txt,
tokenizer_config.json and special_tokens_map.json.

A folder may be ours or any BERT one. A foreign tokenizer.json is used exactly as written; a
folder with only vocab.txt gets the settings tokenizer_config.json gives, and those it leaves out
read off the vocabulary. hanformer's own settings (the training config, the Kiwi morpheme split,
which tokenizer.json cannot hold) live in tokenizer_config.json under "hanformer", so the
`Tokenizer` built from these parts re-attaches Kiwi on load.
"""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import normalizers

from hanformer.errors import InputError
from hanformer.tokenization.config import CLS, MASK, PAD, SEP, UNK, TokenizerConfig
from hanformer.tokenization.hf_file import resolve_special_tokens, tokenizer_class
from hanformer.tokenization.model import (
    CONTINUATION_PREFIX,
    check_special_tokens,
    read_vocab_txt,
    write_vocab_txt,
)
from hanformer.tokenization.normalizer import bert_normalizer_settings
from hanformer.tokenization.pipeline import TokenizerParts, assemble, configured_parts
from hanformer.utils.config import load_config
from hanformer.utils.files import atomic_write, atomic_write_json

log = logging.getLogger("hanformer.tokenization")

FOLDER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


def read_tokenizer_folder(path: str | os.PathLike[str]) -> TokenizerParts:
    """The parts of the tokenizer in folder `path` (or the folder of one of its files)."""
    folder = Path(path)
    if folder.is_file() and folder.name in FOLDER_FILES:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"tokenizer folder not found: {folder} (expected a folder with tokenizer.json or vocab.txt)")
    cfg = _read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
    hanformer_table = cfg.get("hanformer")
    ours: dict[str, Any] = hanformer_table if isinstance(hanformer_table, dict) else {}
    specials = {name: _token_text(cfg.get(f"{name}_token"), default)
                for name, default in (("unk", UNK), ("cls", CLS), ("sep", SEP), ("pad", PAD), ("mask", MASK))}
    listed = cfg.get("extra_special_tokens") or cfg.get("additional_special_tokens") or []
    if isinstance(listed, dict):  # some transformers versions save {name: token}
        listed = list(listed.values())
    extras = [t for t in (_token_text(x, "") for x in listed) if t]
    config = None
    if "config" in ours:
        config = load_config(TokenizerConfig, ours["config"], f"{folder / 'tokenizer_config.json'} [hanformer.config]")
    tok_json, vocab_txt = folder / "tokenizer.json", folder / "vocab.txt"
    if tok_json.is_file():
        try:
            backend = tokenizers.Tokenizer.from_file(str(tok_json))
        except Exception as e:  # the engine reports serde errors with line/column
            raise InputError(f"{tok_json}: cannot read tokenizer ({e})") from None
        source = str(tok_json)
        specials = resolve_special_tokens(backend, cfg, specials)  # <s>, </s>, ... of RoBERTa/XLM-R files
    elif vocab_txt.is_file():
        vocab = read_vocab_txt(vocab_txt)
        check_special_tokens(vocab, [specials["unk"], specials["cls"], specials["sep"]], str(vocab_txt))
        if config is not None:
            return configured_parts(vocab, config, source=str(vocab_txt), settings=_without(ours, "config"))
        named = [specials[n] for n in ("pad", "unk", "cls", "sep", "mask") if specials[n] in vocab]
        backend = assemble(vocab, _vocab_txt_normalizer(vocab, cfg), named + extras, 100,
                           specials["unk"], specials["cls"], specials["sep"])
        _warn_if_vocabulary_unreachable(backend, vocab, named + extras, specials["unk"], vocab_txt)
        source = str(vocab_txt)
    else:
        raise InputError(f"{folder}: no tokenizer.json or vocab.txt (is this a tokenizer folder?)")
    vocab = backend.get_vocab(with_added_tokens=True)
    max_len = cfg.get("model_max_length", 512)
    return TokenizerParts(
        backend,
        model_max_length=max_len if isinstance(max_len, int) and 0 < max_len < 1_000_000 else 512,
        morpheme_split=bool(ours.get("morpheme_split", config.morpheme_split if config else False)),
        unk_token=specials["unk"], cls_token=specials["cls"], sep_token=specials["sep"],
        pad_token=specials["pad"] if specials["pad"] in vocab else None,
        mask_token=specials["mask"] if specials["mask"] in vocab else None,
        extra_special_tokens=extras, settings=ours, source=source,
    )


def write_tokenizer_folder(path: str | os.PathLike[str], parts: TokenizerParts) -> Path:
    """Write vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json,
    each atomically, in the layout `transformers.BertTokenizerFast.from_pretrained` reads."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    base = parts.backend
    with atomic_write(folder / "tokenizer.json") as f:
        f.write(base.to_str(pretty=True))
    write_vocab_txt(folder / "vocab.txt", base.get_vocab(with_added_tokens=True))
    bert = bert_normalizer_settings(base.normalizer)
    special_map = {f"{n}_token": t for n, t in (("unk", parts.unk_token), ("sep", parts.sep_token),
                   ("pad", parts.pad_token), ("cls", parts.cls_token), ("mask", parts.mask_token)) if t}
    added = {str(i): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized, "rstrip": t.rstrip,
                      "single_word": t.single_word, "special": t.special}
             for i, t in sorted(base.get_added_tokens_decoder().items())}
    extras = list(parts.extra_special_tokens)
    config = {
        "tokenizer_class": tokenizer_class(base),
        "do_lower_case": bert.get("lowercase", False),
        "strip_accents": bert.get("strip_accents", False),
        "tokenize_chinese_chars": bert.get("handle_chinese_chars", True),
        "do_basic_tokenize": True,
        "clean_up_tokenization_spaces": False,
        "model_max_length": parts.model_max_length,
        **special_map,
        "extra_special_tokens": extras,
        "added_tokens_decoder": added,
        # Read only by hanformer: settings tokenizer.json cannot hold (the Kiwi pre-tokenizer).
        "hanformer": {**parts.settings, "morpheme_split": parts.morpheme_split},
    }
    atomic_write_json(folder / "tokenizer_config.json", config)
    atomic_write_json(folder / "special_tokens_map.json", {**special_map, "additional_special_tokens": extras})
    return folder


def _vocab_txt_normalizer(vocab: dict[str, int], cfg: dict[str, Any]) -> normalizers.Normalizer:
    """The normalizer of a folder with vocab.txt and no tokenizer.json: the settings that
    tokenizer_config.json gives, as transformers' BertTokenizer applies them (identical ids on NFC
    text), and those it leaves out (or sets to null) read off the vocabulary instead of assumed.

    BertTokenizer assumes an uncased English model (lowercase, strip accents). Stripping accents
    decomposes Hangul into jamo, so on a vocabulary of Hangul syllables every Korean word would be
    [UNK]. A vocabulary that holds characters with accents or Hangul syllables was therefore made
    without stripping (the text is then composed to NFC first, as our own pipeline does); one that
    holds the capital letters A-Z is cased. An uncased English vocabulary has neither, and gets
    BertTokenizer's defaults."""
    lowercase = cfg.get("do_lower_case")
    if not isinstance(lowercase, bool):
        lowercase = not any(letter in vocab for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    strip_accents = cfg.get("strip_accents")  # null means "follow do_lower_case", like absent
    if not isinstance(strip_accents, bool) and _has_composed_characters(vocab):
        strip_accents = False
    bert = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=bool(cfg.get("tokenize_chinese_chars", True)),
                                      strip_accents=strip_accents, lowercase=lowercase)
    keeps_accents = strip_accents is False or (strip_accents is None and not lowercase)
    return normalizers.Sequence([normalizers.NFC(), bert]) if keeps_accents else bert


def _has_composed_characters(vocab: dict[str, int]) -> bool:
    """True when some single-character token is one that accent stripping would take apart (é, 한)."""
    return any(unicodedata.normalize("NFD", body) != body
               for body in (token.removeprefix(CONTINUATION_PREFIX) for token in vocab) if len(body) == 1)


def _warn_if_vocabulary_unreachable(backend: tokenizers.Tokenizer, vocab: dict[str, int], specials: list[str],
                                    unk: str, source: Path) -> None:
    """Warn when the settings turn many of the vocabulary's own characters into [UNK]: then
    tokenizer_config.json does not describe this vocabulary (e.g. strip_accents on Hangul)."""
    characters = sorted({body for body in (t.removeprefix(CONTINUATION_PREFIX) for t in vocab if t not in specials)
                         if len(body) == 1 and not body.isspace()})
    if not characters:
        return
    encoded = backend.encode_batch(characters, add_special_tokens=False)
    lost = [c for c, enc in zip(characters, encoded, strict=True) if unk in enc.tokens]
    if len(lost) > max(10, len(characters) // 20):
        log.warning("%s: %d of the vocabulary's %d characters encode to %s with the settings of "
                    "tokenizer_config.json (do_lower_case, strip_accents), e.g. %s: they do not fit this "
                    "vocabulary; for Korean set \"strip_accents\": false", source, len(lost), len(characters),
                    unk, " ".join(lost[:5]))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: invalid JSON at column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def _token_text(value: Any, default: str) -> str:
    if isinstance(value, dict):  # AddedToken serialised as {"content": ...}
        value = value.get("content")
    return value if isinstance(value, str) and value else default


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}
