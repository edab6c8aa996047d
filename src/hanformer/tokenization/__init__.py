"""WordPiece tokenization, one module per pipeline stage.

normalizer -> pre-tokenizer (optionally Kiwi morphemes) -> WordPiece model -> post-processor,
run by the Hugging Face `tokenizers` engine. `Tokenizer` (tokenizer.py) is the public face;
`train_tokenizer` (trainer.py) makes a new vocabulary; `tokenizer_stats` (stats.py) measures one.
Around the class: folder.py (the Hugging Face folder, both ways), pipeline.py (the stages over a
vocabulary), alignment.py (offsets of text composed to NFC), call_settings.py (per-call
truncation/padding), inputs.py (argument checks, tensors), encoding.py (`Encoding`).
"""
