"""GPT: config in GPT-2 field names (`config`), the decoder-only model (`model`) and the
Hugging Face GPT-2 checkpoint layout (`checkpoint`)."""
