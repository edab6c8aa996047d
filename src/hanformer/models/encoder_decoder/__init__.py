"""The encoder–decoder Transformer ("Attention Is All You Need"): translation and seq2seq.

    config.py      TransformerConfig: the paper's defaults, Marian config.json names, presets
    model.py       TransformerEncoder / TransformerDecoder on the shared blocks, TransformerModel,
                   TransformerForSeq2SeqLM (logits, label-smoothed loss, generate)
    cache.py       Seq2SeqCache: decoder self-attention keys/values + cross-attention ones
    checkpoint.py  the MarianMTModel / MarianModel checkpoint layout, both ways
"""
