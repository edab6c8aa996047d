"""Recurrent encoder–decoders (GRU, LSTM) for translation: the baselines before the Transformer.

    config.py      RNNSeq2SeqConfig: cell, attention (none / bahdanau / luong), sizes, presets
    recurrence.py  torch's fused GRU/LSTM over whole (packed) sequences
    attention.py   additive (Bahdanau) and multiplicative (Luong) attention over a masked source
    encoder.py     RNNEncoder: source ids -> memory (bidirectional by default)
    decoder.py     RNNDecoder: the first state from the encoder's final vectors, the context, the readout
    cache.py       RNNSeq2SeqCache: the decoder's state between decoding steps
    model.py       RNNForSeq2SeqLM: logits, label-smoothed loss, attention weights; save / load

They train through `hanformer translation train --architecture gru|lstm --attention ...` (the
Transformer's data, vocabulary, batches, Trainer and validation BLEU) and translate through
`hanformer.generation` (`translate()`, `hanformer translate`), as the Transformer does.
"""

from hanformer.models.seq2seq.config import RNNSeq2SeqConfig
from hanformer.models.seq2seq.model import RNNForSeq2SeqLM

__all__ = ["RNNForSeq2SeqLM", "RNNSeq2SeqConfig"]
