"""n-gram language models, the first of the models before the Transformer.

    config.py     NgramConfig (order, smoothing, k, discount, tokenizer) and its checks
    vocab.py      words <-> ids (<unk>, <s>, </s> first)
    corpus.py     text files -> one id stream of <s> ... </s> sentences (whitespace words or word pieces)
    counts.py     n-gram tables as sorted packed int64 keys, counted in chunks with numpy
    smoothing.py  estimators: interpolated modified Kneser-Ney, absolute discounting, add-k
    model.py      the back-off model: per-token scores, KenLM-style perplexity, sampling
    arpa.py       ARPA files, written and read
    api.py        train / save / load / perplexity / sample / export (what the CLI calls)
"""
