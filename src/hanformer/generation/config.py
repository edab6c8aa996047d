"""How to decode: one typed config for greedy, sampling and beam search.

Field names and defaults follow `transformers.GenerationConfig`, so the same settings give the
same outputs in both libraries (see `tests/test_generation_parity.py`). What differs: impossible
combinations are rejected up front with a one-line `ConfigError` instead of a warning.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from hanformer.errors import ConfigError
from hanformer.utils.config import setting


@dataclasses.dataclass
class GenerationConfig:
    max_new_tokens: int = setting(50, "how many tokens to generate after the prompt (at most)")
    do_sample: bool = setting(False, "sample from the distribution instead of taking the most likely token")
    num_beams: int = setting(1, "beam width; 1 = no beam search (greedy or sampling)")
    temperature: float = setting(1.0, "sampling only: divide logits by this (< 1 sharper, > 1 flatter); must be > 0")
    top_k: int = setting(50, "sampling only: keep the k most likely tokens (0 = off; transformers' default is 50)")
    top_p: float = setting(1.0, "sampling only: keep the smallest set of tokens whose probability reaches top_p (nucleus); in (0, 1], 1 = off")
    repetition_penalty: float = setting(1.0, "> 1 discourages tokens already in the text (CTRL-style); 1 = off")
    no_repeat_ngram_size: int = setting(0, "forbid repeating any n-gram of this size (0 = off)")
    length_penalty: float = setting(1.0, "beam only: finished beams score sum(logprob) / length**length_penalty (> 0 favours longer)")
    early_stopping: bool | Literal["never"] = setting(
        False, "beam only: true = stop when num_beams candidates are finished; false = stop when no running beam "
               "can plausibly beat them; 'never' = only when that is certain")
    num_return_sequences: int = setting(1, "sequences returned per prompt (beam: the best ones, <= num_beams; sampling: independent samples)")
    stop_strings: list[str] = setting([], "stop a sequence as soon as its generated text contains one of these (excluded from the returned text)")
    eos_token_id: int | None = setting(None, "token that ends a sequence (default: the model's)")
    pad_token_id: int | None = setting(None, "token used to left-pad prompts and fill finished sequences (default: the model's, else eos)")
    seed: int | None = setting(None, "random seed for sampling; the same seed gives the same text")
    use_cache: bool = setting(True, "reuse keys/values of past positions (one position per new token instead of the whole prefix)")
    prepend_bos: bool = setting(
        True, "start each prompt with the model's bos token (the document separator it was trained on), so the "
              "prompt reads as the start of a document; an empty prompt always starts from it")
    long_prompt: Literal["truncate", "error"] = setting(
        "truncate", "a prompt that leaves no room for max_new_tokens in the context window: 'truncate' keeps its "
                    "last tokens (with a warning), 'error' refuses")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject impossible settings with a message that says what to change."""
        for name in ("temperature", "top_p", "repetition_penalty", "length_penalty"):
            value = getattr(self, name)
            if not math.isfinite(value):  # inf or NaN would pass the range checks below or poison the scores
                raise ConfigError(f"{name} = {value}: must be a finite number")
        for name in ("eos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name} = {value}: token ids are >= 0 (leave it unset for the model's)")
        if self.seed is not None and not 0 <= self.seed < 2**64:  # what torch.Generator takes
            raise ConfigError(f"seed = {self.seed}: must be a whole number from 0 to 2**64 - 1")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens = {self.max_new_tokens}: must be at least 1")
        if self.num_beams < 1:
            raise ConfigError(f"num_beams = {self.num_beams}: must be at least 1 (1 = no beam search)")
        if self.num_beams > 1 and self.do_sample:
            raise ConfigError(
                f"num_beams = {self.num_beams} with do_sample = true: beam search with sampling is not supported; "
                "use either --num-beams N (deterministic) or --do-sample (with --num-beams 1)")
        if not self.temperature > 0:
            raise ConfigError(f"temperature = {self.temperature}: must be > 0 (for deterministic output use greedy, "
                              "i.e. leave do_sample off)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p = {self.top_p}: must be in (0, 1] (1 = off)")
        if self.top_k < 0:
            raise ConfigError(f"top_k = {self.top_k}: must be >= 0 (0 = off)")
        if not self.repetition_penalty > 0:
            raise ConfigError(f"repetition_penalty = {self.repetition_penalty}: must be > 0 (1 = off)")
        if self.no_repeat_ngram_size < 0:
            raise ConfigError(f"no_repeat_ngram_size = {self.no_repeat_ngram_size}: must be >= 0 (0 = off)")
        if self.num_return_sequences < 1:
            raise ConfigError(f"num_return_sequences = {self.num_return_sequences}: must be at least 1")
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            raise ConfigError(f"num_return_sequences = {self.num_return_sequences} > num_beams = {self.num_beams}: "
                              "beam search can return at most num_beams sequences")
        if self.num_beams == 1 and not self.do_sample and self.num_return_sequences > 1:
            raise ConfigError(f"num_return_sequences = {self.num_return_sequences} with greedy decoding would repeat "
                              "the same text; use --do-sample or --num-beams")
        if self.early_stopping not in (True, False, "never"):
            raise ConfigError(f"early_stopping = {self.early_stopping!r}: must be true, false or 'never'")
        if any(s == "" for s in self.stop_strings):
            raise ConfigError("stop_strings contains an empty string; remove it")

    @property
    def strategy(self) -> str:
        """'greedy', 'sample' or 'beam' (what the settings amount to)."""
        if self.num_beams > 1:
            return "beam"
        return "sample" if self.do_sample else "greedy"

    def replace(self, **changes: Any) -> GenerationConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
