"""What every model family shares: the Transformer blocks (`layers`), attention over packed
sequences (`unpad`), output dataclasses with transformers' field names (`outputs`), config
checks and size presets (`config`), the base class with checkpoint I/O (`base`), tensor-name
tables (`name_table`) and the size check before allocation (`sizing`)."""
