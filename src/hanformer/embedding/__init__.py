"""Sentence embeddings from any encoder checkpoint: `encode.embed` (mean of the token vectors,
L2-normalised, as sentence-transformers models are used) and its settings (`config`)."""
