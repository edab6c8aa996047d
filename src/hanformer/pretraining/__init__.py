"""Pretraining objectives on token shards, one module each: `mlm` (masked LM, with or without
next-sentence prediction), `rtd` (ELECTRA's replaced-token detection), `clm` (GPT's causal LM);
`masked` holds what the masked ones share, `config` the settings, `run` the entry point."""
