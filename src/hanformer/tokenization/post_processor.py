"""Stage 4, post-processing: `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` with token type ids 0/1,
plus the decoder that joins `##` pieces back into words."""

from __future__ import annotations

from tokenizers import decoders, processors


def build_post_processor(cls_token: str, cls_id: int, sep_token: str, sep_id: int) -> processors.PostProcessor:
    return processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, cls_id), (sep_token, sep_id)],
    )


def build_decoder() -> decoders.Decoder:
    # cleanup=False: the engine's English clean-up also rewrites words (" do not" -> " don't");
    # `Tokenizer.decode` does a safe punctuation-only clean-up instead.
    return decoders.WordPiece(prefix="##", cleanup=False)
