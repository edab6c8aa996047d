"""The encoder–decoder Transformer ("Attention Is All You Need"): translation and seq2seq.

    config.py      TransformerConfig: the paper's defaults, Marian config.json names, presets
    model.py       TransformerEncoder / TransformerDecoder on the shared blocks, TransformerModel,
                   TransformerForSeq2SeqLM (logits, label-smoothed loss, generate)
    cache.py       Seq2SeqCache: decoder self-attention keys/values + cross-attention ones
    checkpoint.py  the MarianMTModel / MarianModel checkpoint layout, both ways
    vocab.py       one subword vocabulary trained on both sides (Unigram pieces or WordPiece)
    data.py        token-budget batches of length-bucketed sentence pairs (exact resume)
    settings.py    TranslationTrainConfig (`hanformer translation train`; torch-free)
    train.py       train_translation: the shared Trainer + validation loss and BLEU/chrF
"""
