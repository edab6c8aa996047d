"""The report's alignment pictures: where a translation looked (`generation/alignment.py`),
with the tokens named, for the worst-first examples. A recurrent model without attention has
no picture."""

from __future__ import annotations

from typing import Any

from hanformer.generation.alignment import cross_attention_map
from hanformer.generation.translate import encode_sources
from hanformer.tokenization.tokenizer import Tokenizer


def alignment(model: Any, tokenizer: Tokenizer, source: str, output_ids: list[int], layer: int) -> dict[str, Any] | None:
    """The cross-attention of decoder layer `layer` (-1: the last), averaged over its heads, while
    the model writes `output_ids` (a translation of `source`, EOS included): rows are output
    tokens, columns source tokens. None when the model has no attention or the output is empty."""
    if not source.strip():
        return None
    config = model.config
    source_ids = encode_sources(tokenizer, [source], config.eos_token_id, config.max_position_embeddings)[0]
    picture = cross_attention_map(model, source_ids, output_ids, layer)
    if picture is None:
        return None
    return {"source": source, "source_tokens": list(tokenizer.convert_ids_to_tokens(source_ids)),
            "output_tokens": list(tokenizer.convert_ids_to_tokens(output_ids)),
            "weights": [[round(float(v), 4) for v in row] for row in picture.weights.tolist()],
            "layer": picture.layer, "layers": picture.layers, "heads": picture.heads}
