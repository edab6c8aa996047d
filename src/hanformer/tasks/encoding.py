"""From examples to model inputs: sub-word pieces with character offsets, [CLS]/[SEP] framing,
truncation, NER label alignment and padding.

Everything here works on the pieces of the tokenizer's `tokenizers` engine (`Tokenizer.backend`)
encoded *without* special tokens, so that this module controls truncation and windows itself and
always knows which character span every piece came from. (A copy of the engine is used with its
own truncation/padding switched off: a tokenizer.json that pads to 128 must not cut a
KorQuAD context.)

With entity inputs (`hanformer.entities`: given as `entities=`, or recorded in the tokenizer of
an entity-aware model) every text's pieces get `[ENT]`/`[/ENT]` around its entities and/or an
entity id per piece; the pieces keep the offsets of the original text, and features carry
`entity_ids` (0 on special tokens) when the model reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import tokenizers
import torch

from hanformer.data.padding import pad_rows, padding_mask_of
from hanformer.entities.config import EntityConfig
from hanformer.entities.detect import EntityDetector
from hanformer.entities.inputs import EntityInputs
from hanformer.entities.tokens import recorded_entity_config
from hanformer.errors import ConfigError
from hanformer.tasks.examples import TextExample, TokenExample
from hanformer.tokenization.hf_file import sequence_frame
from hanformer.tokenization.tokenizer import Tokenizer

IGNORE = -100
Alignment = Literal["first", "all"]


@dataclass
class Pieces:
    ids: list[int]
    offsets: list[tuple[int, int]]
    entity_ids: list[int] | None = None  # per piece, when the model reads entity ids


class PieceEncoder:
    """Encodes text into pieces with offsets and frames them as `[CLS] a [SEP] (b [SEP])`.

    `entities` switches entity inputs on (default: those recorded in the tokenizer, none for a
    plain model); `entity_detector` replaces the detector the config names (tests, custom sources)."""

    def __init__(self, tokenizer: Tokenizer | tokenizers.Tokenizer, entities: EntityConfig | None = None,
                 entity_detector: EntityDetector | None = None) -> None:
        backend = tokenizer.backend if isinstance(tokenizer, Tokenizer) else tokenizer
        if backend.truncation is not None or backend.padding is not None:
            # Copy rather than change the caller's engine. (Ours never truncates or pads by
            # itself, and may carry a Python pre-tokenizer that cannot be copied this way.)
            backend = tokenizers.Tokenizer.from_str(backend.to_str())
            backend.no_truncation()
            backend.no_padding()
        self.engine = backend

        # Our Tokenizer switches truncation/padding on this very engine during its calls (under
        # its lock); going through it means another thread's call can never cut these pieces.
        self._encode_batch = tokenizer.encode_batch if isinstance(tokenizer, Tokenizer) else backend.encode_batch

        def special(name: str, token: str) -> int:
            value = getattr(tokenizer, name, None)
            if value is None:
                value = self.engine.token_to_id(token)
            if value is None:
                raise ConfigError(f"the tokenizer has no {token} token; fine-tuning needs [CLS], [SEP] and [PAD]")
            return int(value)

        self.cls_id = special("cls_token_id", "[CLS]")
        self.sep_id = special("sep_token_id", "[SEP]")
        self.pad_id = special("pad_token_id", "[PAD]")
        # The tokenizer's own frame: `<s> a </s></s> b </s>` for RoBERTa / XLM-R files.
        self.layout = sequence_frame(self.engine, self.cls_id, self.sep_id)
        recorded = recorded_entity_config(tokenizer) if isinstance(tokenizer, Tokenizer) else None
        config = entities if entities is not None else recorded
        self.entities = EntityInputs(config, self.engine, entity_detector) \
            if config is not None and config.enabled else None
        # Marker positions are no text: never an answer, never a labelled unit.
        self.marker_ids = self.entities.marker_ids if self.entities is not None else frozenset()

    def pieces(self, texts: Sequence[str]) -> list[Pieces]:
        texts = list(texts)
        encs = self._encode_batch(texts, add_special_tokens=False)
        plain = [Pieces(list(e.ids), [(o[0], o[1]) for o in e.offsets]) for e in encs]
        if self.entities is None:
            return plain
        marked = self.entities.mark(texts, [p.ids for p in plain], [p.offsets for p in plain])
        embedding = self.entities.embedding
        return [Pieces(m.ids, m.offsets, m.entity_ids if embedding else None) for m in marked]

    def frame(self, a: Sequence[int], b: Sequence[int] | None = None) -> tuple[list[int], list[int]]:
        """input_ids and token_type_ids of `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` (the
        tokenizer's frame: RoBERTa's `<s> a </s></s> b </s>`)."""
        return self.layout.apply(list(a), None if b is None else list(b))

    def frame_entity_ids(self, a: Sequence[int], b: Sequence[int] | None = None) -> list[int]:
        """The entity ids of `frame(a, b)`'s positions: those of `a` and `b`, 0 on special tokens."""
        out: list[int] = []
        for what, _ in self.layout.single if b is None else self.layout.pair:
            out += list(a) if what == "A" else list(b or ()) if what == "B" else [0]
        return out


def truncate_pair(a: list[int], b: list[int] | None, max_length: int,
                  specials: int | None = None) -> tuple[list[int], list[int] | None]:
    """Longest-first truncation (BERT's rule): drop from the end of the longer side until
    `[CLS] a [SEP] b [SEP]` (or a frame of `specials` special tokens) fits in `max_length`."""
    budget = max_length - (specials if specials is not None else 3 if b is not None else 2)
    if budget < 2:
        raise ConfigError(f"max_length {max_length} is too small to hold any text")
    if b is None:
        return a[:budget], None
    la, lb = len(a), len(b)
    while la + lb > budget:
        if la >= lb:
            la -= 1
        else:
            lb -= 1
    return a[:la], b[:lb]


def encode_text_examples(encoder: PieceEncoder, examples: Sequence[TextExample], max_length: int,
                         label2id: dict[str, int] | None) -> list[dict[str, Any]]:
    """Features for (pair) classification and regression. `label2id=None`: regression (float
    labels) or unlabelled input."""
    first = encoder.pieces([e.text for e in examples])
    pairs = [e.text_pair for e in examples if e.text_pair is not None]
    second = iter(encoder.pieces(pairs)) if pairs else iter(())
    features = []
    for ex, a in zip(examples, first, strict=False):
        pair = next(second) if ex.text_pair is not None else None
        b = pair.ids if pair is not None else None
        ta, tb = truncate_pair(a.ids, b, max_length, encoder.layout.added(b is not None))
        ids, types = encoder.frame(ta, tb)
        f: dict[str, Any] = {"input_ids": ids, "token_type_ids": types}
        if a.entity_ids is not None:
            pair_entities = pair.entity_ids[: len(tb or ())] if pair is not None and pair.entity_ids else None
            f["entity_ids"] = encoder.frame_entity_ids(a.entity_ids[: len(ta)], pair_entities)
        if ex.label is not None:
            f["labels"] = label2id[str(ex.label)] if label2id is not None else float(ex.label)
        features.append(f)
    return features


def unit_of_char(example: TokenExample) -> list[int]:
    """For each character of `example.text`, the index of the unit covering it (-1: separator)."""
    owner = [-1] * len(example.text)
    for u, (s, e) in enumerate(example.spans):
        for c in range(s, e):
            owner[c] = u
    return owner


def _token_units(owner: list[int], offsets: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """First and last unit each piece covers (-1 for a piece over separators only). A piece
    covers several units when units are characters (KLUE-NER)."""
    firsts, lasts = [], []
    for s, e in offsets:
        covered = [owner[c] for c in range(s, min(e, len(owner))) if owner[c] >= 0]
        firsts.append(covered[0] if covered else -1)
        lasts.append(covered[-1] if covered else -1)
    return firsts, lasts


def continuation(tag: str) -> str:
    """The tag a piece or character inside an entity gets: B-X -> I-X, others unchanged."""
    return "I-" + tag[2:] if tag.startswith("B-") else tag


def encode_token_examples(encoder: PieceEncoder, examples: Sequence[TokenExample], max_length: int,
                          label2id: dict[str, int] | None, alignment: Alignment = "first") -> list[dict[str, Any]]:
    """Features for token classification. Labels go on the first piece of each unit; with
    alignment="all" the other pieces get the unit's tag too (B-X becomes I-X), otherwise -100.
    Each feature keeps `piece_units` (unit index of every position, -1 for [CLS]/[SEP]) so
    predictions can be mapped back to units."""
    pieces = encoder.pieces([e.text for e in examples])
    features = []
    for ex, p in zip(examples, pieces, strict=False):
        owner = unit_of_char(ex)
        units, lasts = _token_units(owner, p.offsets)
        keep = [i for i, u in enumerate(units) if u >= 0 or p.ids[i] in encoder.marker_ids][: max_length - 2]
        ids, types = encoder.frame([p.ids[i] for i in keep])
        piece_units = [-1] + [units[i] for i in keep] + [-1]
        f: dict[str, Any] = {"input_ids": ids, "token_type_ids": types, "piece_units": piece_units,
                             "piece_last_units": [-1] + [lasts[i] for i in keep] + [-1]}
        if p.entity_ids is not None:
            f["entity_ids"] = encoder.frame_entity_ids([p.entity_ids[i] for i in keep])
        if ex.tags is not None and label2id is not None:
            labels, prev = [], -1
            for u in piece_units:
                if u < 0:
                    labels.append(IGNORE)
                elif u != prev:
                    labels.append(label2id[ex.tags[u]])
                else:
                    labels.append(label2id[continuation(ex.tags[u])] if alignment == "all" else IGNORE)
                if u >= 0:
                    prev = u
            f["labels"] = labels
        features.append(f)
    return features


def unit_tags(piece_units: Sequence[int], piece_last_units: Sequence[int], piece_tags: Sequence[str],
              n_units: int) -> list[str]:
    """Tags per unit from tags per piece: a unit takes the tag of the piece that starts it; units
    covered by a piece that started earlier continue that piece's entity; units no piece covers
    (spaces in KLUE's character units, text cut by max_length) are inside an entity only when the
    entity visibly continues after them."""
    tags: list[str | None] = [None] * n_units
    prev = -1
    for u, last, t in zip(piece_units, piece_last_units, piece_tags, strict=False):
        if u < 0:
            continue
        if u != prev:
            tags[u] = t
            prev = u
        for v in range(u + 1, last + 1):  # further units inside the same piece
            if tags[v] is None:
                tags[v] = continuation(tags[u] or t)
    filled: list[str] = []
    for u in range(n_units):
        tag = tags[u]
        if tag is None:
            before = filled[-1] if filled else "O"
            nxt = next((x for x in tags[u + 1:] if x is not None), "O")
            tag = continuation(before) if before != "O" and nxt.startswith("I-") and nxt[2:] == before[2:] else "O"
        filled.append(tag)
    return filled


def collate(features: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of features to the longest one; keys that are not model inputs are dropped."""
    rows = [f["input_ids"] for f in features]
    n = max(len(row) for row in rows)
    batch = {"input_ids": pad_rows(rows, pad_id), "token_type_ids": pad_rows([f["token_type_ids"] for f in features], 0),
             "attention_mask": padding_mask_of(rows)}
    if "entity_ids" in features[0]:  # padding is no entity
        batch["entity_ids"] = pad_rows([f["entity_ids"] for f in features], 0, width=n)
    if "labels" in features[0]:
        first = features[0]["labels"]
        if isinstance(first, list):
            labels = pad_rows([f["labels"] for f in features], IGNORE, width=n)
        elif isinstance(first, float):
            labels = torch.tensor([f["labels"] for f in features], dtype=torch.float)
        else:
            labels = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        batch["labels"] = labels
    for key in ("start_positions", "end_positions"):
        if key in features[0]:
            batch[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
    return batch
