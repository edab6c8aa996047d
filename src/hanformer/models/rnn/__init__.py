"""Recurrent language models (LSTM, GRU): the neural baseline between n-grams and the Transformer.

    config.py    RNNConfig (cell, sizes, layers, dropout, tied embeddings) and config.json
    state.py     RNNState: the carried recurrent state (also the generation loops' cache)
    model.py     RNNLanguageModel on torch.nn.LSTM / nn.GRU; save_pretrained / from_pretrained
    tokens.py    text or shards -> one token stream, laid out as GPT's (documents + [SEP])
    tbptt.py     truncated backpropagation through time: stream windows + the carried state
    score.py     held-out loss / perplexity over a token stream, the state carried throughout
    settings.py  RNNTrainConfig (what `hanformer rnn train` takes)
    train.py     train_rnn: the model through the shared Trainer
    api.py       load / perplexity / sample (what the CLI calls)
"""
