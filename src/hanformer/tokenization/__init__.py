"""WordPiece tokenization, one module per pipeline stage.

normalizer -> pre-tokenizer (optionally Kiwi morphemes) -> WordPiece model -> post-processor,
run by the Hugging Face `tokenizers` engine. `Tokenizer` (tokenizer.py) is the public face;
`train_tokenizer` (trainer.py) makes a new vocabulary; `tokenizer_stats` (stats.py) measures one.
"""
