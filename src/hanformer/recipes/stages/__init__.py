"""The stages of a recipe, one module each: `tokenizer`, `data`, `pretrain`, `finetune` (with
`baseline`, the TF-IDF baseline), `evaluate` (with `predictions`) and `report`. Each checks its
recipe table and returns a `Stage` whose work calls one component's public API; `build` puts
them in run order. No training or scoring logic lives here.

The recipe runner fills in some component settings itself (where outputs go, which tokenizer or
checkpoint a stage reads, the run's seed); a recipe that sets one of those gets a clear error
instead of having it silently overwritten.
"""

from __future__ import annotations

from hanformer.recipes.stages.build import build_stages

__all__ = ["build_stages"]
