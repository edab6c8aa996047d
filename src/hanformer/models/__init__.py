"""The models: one folder per family on shared blocks, one registry, one checkpoint I/O.

    common/           what every family shares: Transformer blocks and KV caches (layers),
                      attention over packed sequences (unpad), output dataclasses with
                      transformers' field names (outputs), size presets and config checks
                      (config), the base class with save/load (base), tensor-name tables, sizing
    bert/             BertConfig, embeddings, BertModel, task heads, ELECTRA, RoBERTa/XLM-R/ELECTRA
                      classes, and their Hugging Face checkpoint layouts
    gpt/              GPTConfig (GPT-2 field names), GPTModel / GPTForCausalLM, the GPT-2 layout
    encoder_decoder/  the Transformer of "Attention Is All You Need" (MarianMT layout), training
    seq2seq/          recurrent encoder-decoders (none / Bahdanau / Luong attention)
    rnn/              LSTM/GRU language models
    ngram/            n-gram language models (counts, smoothing, back-off, ARPA)
    hub.py            checkpoint files of any family: safetensors/shards/.bin, config.json, atomic save
    registry.py       the one table: architecture name -> class, checkpoint adapter, model_type, task
    checkpoint.py     load_model, inspect_checkpoint, convert_checkpoint, from/save_pretrained's entry points
    hf_cache.py       model names found in the local Hugging Face cache (never downloaded)
"""
