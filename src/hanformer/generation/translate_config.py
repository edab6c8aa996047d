"""The settings of `hanformer translate` and `translate()`: decoding choices, kept apart from the
model code so that the command line can show them without importing torch."""

from __future__ import annotations

import dataclasses
from typing import Literal

from hanformer.errors import ConfigError
from hanformer.generation.config import GenerationConfig
from hanformer.utils.config import setting


@dataclasses.dataclass
class TranslateConfig:
    num_beams: int = setting(4, "beam width (1 = greedy)")
    max_length: int = setting(128, "longest translation, in tokens (EOS included); capped by the model's positions")
    length_penalty: float = setting(1.0, "beam only: finished beams score sum(logprob) / length**length_penalty")
    early_stopping: bool | Literal["never"] = setting(
        False, "beam only: true = stop when num_beams translations are finished; false = when no running beam "
               "can plausibly beat them; 'never' = only when that is certain")
    num_return_sequences: int = setting(1, "translations per sentence, best first (n-best; at most num_beams)")
    no_repeat_ngram_size: int = setting(0, "forbid repeating any n-gram of this size (0 = off)")
    batch_size: int = setting(32, "sentences translated together (sorted by length, so batches pad little)")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("num_beams", "max_length", "num_return_sequences", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} = {getattr(self, name)}: must be at least 1")
        self.generation(128)  # the decoding settings' own checks (n-best <= beams, ...)

    def generation(self, room: int) -> GenerationConfig:
        """The decoding settings, the length fitted into `room` target positions."""
        return GenerationConfig(max_new_tokens=min(self.max_length, room), num_beams=self.num_beams,
                                length_penalty=self.length_penalty, early_stopping=self.early_stopping,
                                num_return_sequences=self.num_return_sequences,
                                no_repeat_ngram_size=self.no_repeat_ngram_size,
                                do_sample=False)
