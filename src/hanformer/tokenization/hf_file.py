"""Any Hugging Face `tokenizer.json` (WordPiece, byte-level BPE, SentencePiece Unigram) as a
hanformer tokenizer: its special tokens, the frame it puts around one or two texts, and the
Kiwi morpheme split placed in front of its own word split.

BERT's files name `[CLS]`, `[SEP]`, `[PAD]`, `[MASK]`; RoBERTa's and XLM-R's use `<s>`, `</s>`,
`<pad>`, `<mask>` and frame a pair as `<s> A </s></s> B </s>`. When tokenizer_config.json does not
name a special token, it is read from tokenizer.json itself: the post-processor's first and last
special tokens, the model's unknown token, the padding token; then the usual names that the
vocabulary holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import tokenizers
from tokenizers import models, pre_tokenizers

SPECIAL_NAMES = ("unk", "cls", "sep", "pad", "mask")
# The usual spellings, BERT's first, tried when neither file says.
_USUAL = {
    "unk": ("[UNK]", "<unk>", "<UNK>"),
    "cls": ("[CLS]", "<s>", "<cls>"),
    "sep": ("[SEP]", "</s>", "<sep>"),
    "pad": ("[PAD]", "<pad>", "<PAD>"),
    "mask": ("[MASK]", "<mask>", "<MASK>"),
}


def resolve_special_tokens(backend: tokenizers.Tokenizer, config: dict[str, Any],
                           specials: dict[str, str]) -> dict[str, str]:
    """`specials` (name -> token, as tokenizer_config.json gives them or BERT's defaults) with each
    one the config does not name replaced by what tokenizer.json declares or the vocabulary holds."""
    vocab = backend.get_vocab(with_added_tokens=True)
    declared = declared_special_tokens(json.loads(backend.to_str()))
    out = dict(specials)
    for name in SPECIAL_NAMES:
        if _names_token(config.get(f"{name}_token")):
            continue
        choices = (declared.get(name), *_USUAL[name])
        out[name] = next((t for t in choices if t and t in vocab), specials[name])
    return out


def declared_special_tokens(spec: dict[str, Any]) -> dict[str, str]:
    """Special tokens a tokenizer.json states: unk (its model), pad (its padding), cls and sep (the
    first special token before and after the text in its post-processor's single-text frame)."""
    out: dict[str, str] = {}
    model = spec.get("model") or {}
    unk = model.get("unk_token")
    if model.get("type") == "Unigram" and isinstance(model.get("unk_id"), int) \
            and 0 <= model["unk_id"] < len(model.get("vocab") or []):
        unk = model["vocab"][model["unk_id"]][0]
    if isinstance(unk, str):
        out["unk"] = unk
    padding = spec.get("padding") or {}
    if isinstance(padding.get("pad_token"), str):
        out["pad"] = padding["pad_token"]
    out.update(_frame_tokens(spec.get("post_processor")))
    return out


def _frame_tokens(node: Any) -> dict[str, str]:
    if not isinstance(node, dict):
        return {}
    kind = node.get("type")
    if kind == "Sequence":
        for inner in node.get("processors") or []:
            found = _frame_tokens(inner)
            if found:
                return found
        return {}
    if kind in ("RobertaProcessing", "BertProcessing"):
        return {name: node[name][0] for name in ("cls", "sep") if isinstance(node.get(name), list) and node[name]}
    if kind != "TemplateProcessing":
        return {}
    names = node.get("special_tokens") or {}
    around: tuple[list[str], list[str]] = ([], [])  # special tokens before the text, after it
    seen_text = False
    for part in node.get("single") or []:
        if "Sequence" in part:
            seen_text = True
            continue
        token = part.get("SpecialToken", {}).get("id")
        tokens = (names.get(token) or {}).get("tokens") or [token]
        around[seen_text].append(tokens[0])
    return {name: found[0] for name, found in zip(("cls", "sep"), around, strict=True) if found}


def _names_token(value: Any) -> bool:
    if isinstance(value, dict):  # an AddedToken written out as {"content": ...}
        value = value.get("content")
    return isinstance(value, str) and bool(value)


def tokenizer_class(backend: tokenizers.Tokenizer) -> str:
    """The `tokenizer_class` transformers should build for this tokenizer.json: BERT's for WordPiece
    (it reads vocab.txt and its settings); for BPE and Unigram the class that uses the file as
    written (RobertaTokenizer and XLMRobertaTokenizer rebuild their own pipeline from it)."""
    return "BertTokenizer" if isinstance(backend.model, models.WordPiece) else "PreTrainedTokenizerFast"


# --- the frame around one or two texts -----------------------------------------------------

# One slot of a frame: ("A" | "B", type id) for a text, (special token id, type id) for a token.
Slot = tuple[int | str, int]


@dataclass(frozen=True)
class SequenceFrame:
    """The special tokens and token types around one text (`single`) or two (`pair`), as the
    tokenizer's post-processor places them: `[CLS] A [SEP] B [SEP]` (types 0 then 1) for BERT,
    `<s> A </s></s> B </s>` (all type 0) for RoBERTa and XLM-R."""

    single: tuple[Slot, ...]
    pair: tuple[Slot, ...]

    def apply(self, a: list[int], b: list[int] | None = None) -> tuple[list[int], list[int]]:
        """input_ids and token_type_ids of `a` (and `b`) framed."""
        ids: list[int] = []
        types: list[int] = []
        for what, type_id in self.single if b is None else self.pair:
            piece = a if what == "A" else b if what == "B" else [what]
            ids += piece  # type: ignore[arg-type]
            types += [type_id] * len(piece)  # type: ignore[arg-type]
        return ids, types

    def added(self, pair: bool) -> int:
        """Special tokens the frame adds to one text, or to a pair."""
        return sum(isinstance(what, int) for what, _ in (self.pair if pair else self.single))

    def second_start(self, first_length: int) -> int:
        """Position of the pair's second text when the first has `first_length` tokens."""
        before = self.pair[: [what for what, _ in self.pair].index("B")]
        return sum(first_length if what == "A" else 1 for what, _ in before)


def bert_frame(cls_id: int, sep_id: int) -> SequenceFrame:
    return SequenceFrame(single=((cls_id, 0), ("A", 0), (sep_id, 0)),
                         pair=((cls_id, 0), ("A", 0), (sep_id, 0), ("B", 1), (sep_id, 1)))


def sequence_frame(engine: tokenizers.Tokenizer, cls_id: int, sep_id: int) -> SequenceFrame:
    """The frame `engine`'s post-processor builds, read by running it on one-token texts.
    BERT's frame with `cls_id`/`sep_id` when the file has no post-processor, or one whose single
    text is not `special text special` (what token classification maps its labels through)."""
    processor = engine.post_processor
    if processor is None:
        return bert_frame(cls_id, sep_id)
    probe = tokenizers.Tokenizer(models.WordLevel({"a": 0}, unk_token="a"))
    text = probe.encode("a", add_special_tokens=False)
    single = _slots(processor.process(text, None, True))
    pair = _slots(processor.process(text, probe.encode("a", add_special_tokens=False), True))
    shape = [isinstance(what, int) for what, _ in single]
    if shape != [True, False, True] or [what for what, _ in pair].count("B") != 1:
        return bert_frame(cls_id, sep_id)
    return SequenceFrame(single, pair)


def _slots(encoding: tokenizers.Encoding) -> tuple[Slot, ...]:
    sequences = encoding.sequence_ids
    return tuple(("AB"[seq] if seq is not None else token_id, type_id)
                 for token_id, type_id, seq in zip(encoding.ids, encoding.type_ids, sequences, strict=True))


# --- Kiwi in front of the file's own word split ----------------------------------------------

def word_split_after_morphemes(backend: tokenizers.Tokenizer, default: pre_tokenizers.PreTokenizer
                               ) -> pre_tokenizers.PreTokenizer:
    """The pre-tokenizer to run after the Kiwi morpheme split: the file's own (BERT's split for
    WordPiece, the byte-level or metaspace split for BPE and Unigram), else `default`.

    A metaspace split that marks every piece as a word start (`prepend_scheme: always`) marks
    only the text's start instead, so a particle Kiwi cuts off (`학교|에서`) stays a
    continuation piece (`▁학교 에서`), as byte-level BPE and WordPiece keep it."""
    spec = json.loads(backend.to_str())
    if spec.get("pre_tokenizer") is None:
        return default
    if _first_only(spec["pre_tokenizer"]):
        return tokenizers.Tokenizer.from_str(json.dumps(spec)).pre_tokenizer
    return backend.pre_tokenizer


def _first_only(node: dict[str, Any]) -> bool:
    """Set every `prepend_scheme: always` in `node` to "first"; True when one was changed."""
    changed = False
    if node.get("type") == "Metaspace" and node.get("prepend_scheme") == "always":
        node["prepend_scheme"] = "first"
        changed = True
    for inner in node.get("pretokenizers") or []:
        changed = _first_only(inner) or changed
    return changed
