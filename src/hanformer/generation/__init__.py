"""Text generation with causal language models (GPT), and the causal-LM training objective.

    config.py      GenerationConfig: every decoding setting, validated (one-line errors)
    processors.py  temperature, top-k, top-p, repetition penalty, no-repeat n-grams
    search.py      greedy, multinomial sampling and beam search over ids, with a KV cache
    api.py         generate(): prompts in, text out (BOS, left padding, context fitting, stop strings, streaming)
    diversity.py   distinct-n and repeated n-gram rates of generated text
    pretrain.py    the `clm` objective of `hanformer pretrain` (packed batches, held-out perplexity)
"""
