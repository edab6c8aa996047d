"""One subword vocabulary for both sides of a parallel corpus (the paper's shared vocabulary).

Two kinds, both trained on the source and the target files together, both on NFC text (so a
Hangul syllable is one character and is never broken into jamo):

    unigram    SentencePiece-style pieces (a Unigram model over words marked with "▁", the
               scheme Marian's tokenizers use). Decoding gives back the exact text, spaces and
               hyphens included, which matters because BLEU is computed on detokenized output.
    wordpiece  hanformer's own trainer (`train_tokenizer`, as BERT's vocabularies are made). Its
               BERT pre-tokenizer splits at punctuation and drops the spacing, so decoding writes
               "T - Shirt" for "T-Shirt" (about one Multi30k sentence in ten) and BLEU pays for it.

Either way the special tokens are BERT's five with the same ids: [PAD] 0 pads, [CLS] 2 starts
every translation (the decoder's first input), [SEP] 3 ends sources and translations.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from hanformer.errors import InputError
from hanformer.tokenization.config import BERT_SPECIAL_TOKENS, CLS, PAD, SEP, UNK, TokenizerConfig
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.tokenization.trainer import train_tokenizer

SubwordKind = Literal["unigram", "wordpiece"]


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """pad / start / eos ids of a translation vocabulary; an error naming the missing token."""
    ids = {}
    for name, token in (("pad", PAD), ("start", CLS), ("eos", SEP)):
        i = tokenizer.get_vocab().get(token)
        if i is None:
            raise InputError(f"the tokenizer has no {token} token; a translation vocabulary needs {PAD} "
                             f"(padding), {CLS} (start of a translation) and {SEP} (end of a sentence)")
        ids[name] = i
    return ids


def train_joint_vocabulary(sentences: Iterable[str], out_dir: str | os.PathLike[str], *, vocab_size: int,
                           kind: SubwordKind = "unigram", progress: bool = False) -> Tokenizer:
    """Train one vocabulary on `sentences` (both sides of the training pairs, so held-out pairs
    carved from the same files stay out of it) and save it in `out_dir`."""
    out = Path(out_dir)
    if kind == "wordpiece":
        with tempfile.TemporaryDirectory() as tmp:  # the trainer reads files
            text = Path(tmp) / "train.txt"
            with open(text, "w", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in sentences)
            return train_tokenizer(text, TokenizerConfig(vocab_size=vocab_size, input_format="text"), out,
                                   progress=progress)
    if kind != "unigram":
        raise InputError(f"subword kind {kind!r}: use 'unigram' or 'wordpiece'")
    backend = tokenizers.Tokenizer(models.Unigram())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=list(BERT_SPECIAL_TOKENS),
                                      unk_token=UNK, show_progress=progress)
    backend.train_from_iterator(sentences, trainer)
    out.mkdir(parents=True, exist_ok=True)
    Tokenizer(backend, source=str(out)).save_pretrained(out)
    return Tokenizer.from_pretrained(out)
