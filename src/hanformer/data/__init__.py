"""Pretraining data: corpus readers, sentence splitting, token shards on disk, NSP instances,
masked-LM masking, packed causal-LM sequences and the resumable batch sources the Trainer reads."""
