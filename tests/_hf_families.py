"""Shared pieces of the RoBERTa / XLM-R / ELECTRA tests: tiny random transformers models, a padded
batch, the comparison of outputs at real positions, and tiny tokenizer.json files of each kind
(XLM-R's Unigram, RoBERTa's byte-level BPE, ELECTRA's WordPiece) trained offline."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer as Engine
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

TOL = 1e-5
VOCAB = 61
LENGTHS = [17, 5, 11, 2]  # mixed lengths, right padding

# Output fields that must match transformers', by class-name suffix.
FIELDS = {
    "Model": ("last_hidden_state", "pooler_output"),
    "ForMaskedLM": ("logits",),
    "ForSequenceClassification": ("logits",),
    "ForTokenClassification": ("logits",),
    "ForQuestionAnswering": ("start_logits", "end_logits"),
    "ForPreTraining": ("logits",),
}


def suffix_of(name: str) -> str:
    return name[name.index("Model"):] if name.endswith("Model") else name[name.index("For"):]


def batch(pad_id: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Token ids never equal to `pad_id` except in the padding (RoBERTa counts positions by it)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (len(LENGTHS), max(LENGTHS)), generator=g)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(LENGTHS):
        mask[row, :n] = 1
        ids[row, n:] = pad_id
    return {"input_ids": ids, "attention_mask": mask}


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial LayerNorm and bias values, so a mapping mistake cannot hide behind init values."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def save_random(transformers, name: str, config, directory: Path) -> torch.nn.Module:
    """A random transformers `name` model saved to `directory` with `save_pretrained`."""
    torch.manual_seed(0)
    config.num_labels = 2 if name.endswith("ForQuestionAnswering") else 3
    model = perturbed(getattr(transformers, name)(config))
    model.save_pretrained(directory)
    return model


def assert_same_outputs(expected, actual, name: str, mask: torch.Tensor) -> None:
    """Every field of `name`'s output equal to `TOL` (per-token fields at real positions only)."""
    for field in FIELDS[suffix_of(name)]:
        want, got = getattr(expected, field, None), getattr(actual, field, None)
        if want is None or got is None:  # ELECTRA's encoder has no pooler
            assert want is None and got is None, field
            continue
        if want.dim() >= 2 and tuple(want.shape[:2]) == tuple(mask.shape):
            want, got = want[mask.bool()], got[mask.bool()]
        assert got.shape == want.shape, field
        assert (got - want).abs().max().item() <= TOL, f"{name}.{field}"


CORPUS = ["이순신은 조선 중기의 무신이다.", "서울은 대한민국의 수도이다.", "나는 오늘 학교에서 공부했다.",
          "The cat sat on the mat.", "Seoul is the capital of Korea."] * 4
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def _unigram(corpus: list[str] = CORPUS) -> Engine:
    """XLM-R's layout: NFKC, metaspace words, Unigram pieces, `<s> A </s></s> B </s>`."""
    engine = Engine(models.Unigram())
    engine.normalizer = normalizers.NFKC()
    engine.pre_tokenizer = pre_tokenizers.Metaspace()
    engine.decoder = decoders.Metaspace()
    engine.train_from_iterator(corpus, trainers.UnigramTrainer(vocab_size=150, special_tokens=ROBERTA_SPECIALS,
                                                               unk_token="<unk>"))
    engine.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return engine


def _byte_bpe(corpus: list[str] = CORPUS) -> Engine:
    """RoBERTa's layout: byte-level BPE, RobertaProcessing (offsets trimmed of the leading space)."""
    engine = Engine(models.BPE())
    engine.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    engine.decoder = decoders.ByteLevel()
    engine.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=ROBERTA_SPECIALS,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    engine.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    return engine


def _wordpiece(corpus: list[str] = CORPUS) -> Engine:
    """ELECTRA's (BERT's) layout: WordPiece with [CLS]/[SEP] and segment ids 0/1."""
    engine = Engine(models.WordPiece(unk_token="[UNK]"))
    engine.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    engine.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    engine.decoder = decoders.WordPiece()
    engine.train_from_iterator(corpus, trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    engine.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return engine


BUILDERS = {"unigram": _unigram, "byte-bpe": _byte_bpe, "wordpiece": _wordpiece}
EXPECTED_SPECIALS = {  # unk, cls, sep, pad, mask
    "unigram": ("<unk>", "<s>", "</s>", "<pad>", "<mask>"),
    "byte-bpe": ("<unk>", "<s>", "</s>", "<pad>", "<mask>"),
    "wordpiece": ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"),
}




def save_tokenizer(transformers, kind: str, engine: Engine, directory: Path):
    """`engine` saved by transformers (tokenizer.json + tokenizer_config.json naming the specials)."""
    unk, cls, sep, pad, mask = EXPECTED_SPECIALS[kind]
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=engine, unk_token=unk, cls_token=cls,
                                                sep_token=sep, pad_token=pad, mask_token=mask)
    fast.save_pretrained(directory)
    return fast
