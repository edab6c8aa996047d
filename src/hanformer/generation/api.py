"""Text in, text out: `generate(model, prompts, config)` over the id-level loops in `search.py`.

This layer owns what needs a tokenizer: encoding prompts (with the document-start token the
model was trained with), left padding, fitting prompts into the context window, stop strings,
and turning streamed token ids into streamed text.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hanformer.data.padding import pad_rows, padding_mask_of
from hanformer.errors import ConfigError, InputError
from hanformer.generation.config import GenerationConfig
from hanformer.models.checkpoint import load_model
from hanformer.models.gpt.model import GPTForCausalLM
from hanformer.models.hf_cache import locate_model
from hanformer.models.hub import model_type
from hanformer.models.rnn.config import MODEL_TYPE as RNN_MODEL_TYPE
from hanformer.models.rnn.model import RNNLanguageModel
from hanformer.tokenization.tokenizer import Tokenizer

log = logging.getLogger("hanformer.generation")

# (output row, new text): called as text is produced (greedy and sampling)
TextCallback = Callable[[int, str], None]


@dataclasses.dataclass
class GeneratedText:
    prompt: str
    text: str
    """The continuation only (the prompt is not repeated), cut before any stop string."""
    token_ids: list[int]
    """The generated ids (ending with EOS when the model ended the text)."""
    finish_reason: str
    """'eos' (the model ended it), 'stop_string', or 'length' (max_new_tokens or the context window)."""
    prompt_tokens: int
    """Prompt length in tokens after any truncation (BOS included)."""


Generator = GPTForCausalLM | RNNLanguageModel


def load_generator(model_dir: str | Path) -> tuple[Generator, Tokenizer]:
    """A GPT or RNN language-model folder -> (model in eval mode, its tokenizer)."""
    model_dir = locate_model(model_dir)  # a hub name in the cache: the tokenizer is read from there too
    if model_type(model_dir) == RNN_MODEL_TYPE:
        return RNNLanguageModel.from_pretrained(model_dir).eval(), Tokenizer.from_pretrained(model_dir)
    model = load_model(model_dir)
    if not isinstance(model, GPTForCausalLM):
        raise InputError(f"{model_dir}: a {type(model).__name__} checkpoint cannot generate text; generation needs "
                         "a causal language model (a GPT checkpoint, e.g. from `hanformer pretrain --objective clm`, "
                         "or an RNN one from `hanformer rnn train`)")
    return model.eval(), Tokenizer.from_pretrained(model_dir)


class _Continuation:
    """Text of generated ids *in context*: a word piece like "##다" joins the prompt's last word,
    so decoding the new ids alone would be wrong. Decode prompt + new ids and drop the prompt's text."""

    def __init__(self, tokenizer: Tokenizer, prompts: list[list[int]]) -> None:
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.heads = [tokenizer.decode(p, skip_special_tokens=True) for p in prompts]

    def __call__(self, prompt: int, generated: list[int]) -> str:
        full = self.tokenizer.decode(self.prompts[prompt] + generated, skip_special_tokens=True)
        head = self.heads[prompt]
        if full.startswith(head):
            return full[len(head):]
        return self.tokenizer.decode(generated, skip_special_tokens=True)


def _shifted(on_text: TextCallback | None, offset: int) -> TextCallback | None:
    """`on_text` for a call that generates rows offset.. of the caller's batch."""
    if on_text is None:
        return None
    return lambda row, text: on_text(offset + row, text)


def _cut_at_stop(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stop_strings) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


# Decoders' clean-up rules rewrite at most this many characters, each starting with a space
# (the longest is the `tokenizers` WordPiece decoder's " do not" -> " don't").
_REWRITE_WINDOW = 7


class _TextStream:
    """Turns tokens chosen step by step into text deltas per row.

    Word pieces only become text in context ("##다" joins the previous piece, punctuation drops
    the space before it), so each row's continuation is decoded whole and only the new suffix is
    sent. Decoding can rewrite the tail of text already decoded ("i '" + "s" -> "i's"), and sent
    text cannot be taken back, so the part that may still change is held back: from the first
    space in the last `_REWRITE_WINDOW` characters (every clean-up rule starts with a space).
    With stop strings, the last few characters are also held back until it is clear they do not
    begin a stop string, so a stop string is never shown. The pieces sent add up to the
    returned text.
    """

    def __init__(self, continuation: _Continuation, per_prompt: int, rows: int, stop_strings: Sequence[str],
                 callback: TextCallback, eos_token_id: int | None) -> None:
        self.continuation, self.callback, self.stop_strings = continuation, callback, list(stop_strings)
        self.per_prompt = per_prompt
        self.eos = eos_token_id
        self.hold = max((len(s) for s in stop_strings), default=1) - 1
        self.ids: list[list[int]] = [[] for _ in range(rows)]
        self.sent = [""] * rows
        self.done = [False] * rows

    def on_step(self, tokens: Any, active: Any) -> None:
        for row, (token, alive) in enumerate(zip(tokens.tolist(), active.tolist(), strict=True)):
            if not alive or self.done[row]:
                continue
            if token == self.eos:
                self.finish(row)
                continue
            self.ids[row].append(token)
            self._emit(row, final=False)

    def _emit(self, row: int, final: bool) -> None:
        text, stopped = _cut_at_stop(self.continuation(row // self.per_prompt, self.ids[row]), self.stop_strings)
        if stopped:
            final = True
            self.done[row] = True
        visible = text if final else text[:self._stable_length(text)]
        if visible.startswith(self.sent[row]) and len(visible) > len(self.sent[row]):
            self.callback(row, visible[len(self.sent[row]):])
            self.sent[row] = visible

    def _stable_length(self, text: str) -> int:
        """How much of `text` no later token can change or turn into a stop string."""
        end = max(len(text) - self.hold, 0)
        space = text.find(" ", max(len(text) - _REWRITE_WINDOW, 0))
        return min(end, space) if space >= 0 else end

    def finish(self, row: int | None = None) -> None:
        for r in [row] if row is not None else range(len(self.ids)):
            if not self.done[r]:
                self._emit(r, final=True)
                self.done[r] = True


def _stop_criterion(continuation: _Continuation, stop_strings: Sequence[str]) -> Callable[[Any, int], Any]:
    import torch

    def stop(sequences: torch.Tensor, prompt_length: int) -> torch.Tensor:
        # Rows are prompts x (beams or samples); all of a prompt's rows are adjacent.
        per_prompt = sequences.shape[0] // len(continuation.prompts)
        hits = [any(s in continuation(i // per_prompt, row) for s in stop_strings)
                for i, row in enumerate(sequences[:, prompt_length:].tolist())]
        return torch.tensor(hits, dtype=torch.bool, device=sequences.device)

    return stop


def encode_prompts(tokenizer: Tokenizer, prompts: Sequence[str], config: GenerationConfig, *,
                   bos_token_id: int | None, context: int | None) -> list[list[int]]:
    """Prompt ids: [BOS] + word pieces, fitted into the context window as `config.long_prompt` says
    (`context` None: no window, as for a recurrence)."""
    room: int | None = None
    if context is not None:
        room = context - config.max_new_tokens
        if room < 1:
            raise ConfigError(f"max_new_tokens = {config.max_new_tokens} leaves no room for a prompt in this "
                              f"model's context window of {context} tokens; use at most {context - 1}")
    out = []
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise InputError(f"prompt {i + 1} is a {type(prompt).__name__}, expected text")
        ids = tokenizer.encode(prompt, add_special_tokens=False).ids
        if bos_token_id is not None and (config.prepend_bos or not ids):
            ids = [bos_token_id, *ids]
        if not ids:
            raise InputError(f"prompt {i + 1} is empty and the model has no bos_token_id to start from; "
                             "give some text to continue")
        if room is not None and len(ids) > room:
            if config.long_prompt == "error":
                raise InputError(f"prompt {i + 1} has {len(ids)} tokens but only {room} fit (context window "
                                 f"{context} - max_new_tokens {config.max_new_tokens}); shorten it, lower "
                                 "--max-new-tokens, or use --long-prompt truncate")
            log.warning("prompt %d has %d tokens; keeping its last %d (context window %d - max_new_tokens %d)",
                        i + 1, len(ids), room, context, config.max_new_tokens)
            ids = ids[-room:]
        out.append(ids)
    return out


def generate(model: Any, prompts: str | Sequence[str], config: GenerationConfig | None = None, *,
             tokenizer: Tokenizer | None = None, on_text: TextCallback | None = None,
             **settings: Any) -> list[GeneratedText]:
    """Continue each prompt with a causal language model.

    `model` is a GPT or RNN language-model folder, or a loaded `GPTForCausalLM` /
    `RNNLanguageModel` (then pass `tokenizer`).
    Settings come from `config` and/or keyword overrides (`max_new_tokens=40, do_sample=True`).
    Returns `num_return_sequences` results per prompt, prompt by prompt. `on_text(row, text)`
    receives the text as it is produced (greedy and sampling; beam search knows its result only
    at the end, so it is delivered then).
    """

    from hanformer.generation.search import decode

    if isinstance(model, (str, Path)):
        model, loaded_tokenizer = load_generator(model)
        tokenizer = tokenizer or loaded_tokenizer
    if tokenizer is None:
        raise ConfigError("generate: pass the tokenizer along with a loaded model (or pass a checkpoint directory)")
    config = config or GenerationConfig()
    if settings:
        config = config.replace(**settings)
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        raise InputError("no prompts given")
    recurrent = isinstance(model, RNNLanguageModel)
    if recurrent:
        # Documents are separated by one token in an RNN's stream: it starts a text and ends it.
        config = config.replace(prepend_bos=True)
        bos = eos_default = pad_default = model.config.separator_id
        context = None
    else:
        bos, eos_default, pad_default = model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id
        context = model.config.n_positions
    eos = config.eos_token_id if config.eos_token_id is not None else eos_default
    pad = config.pad_token_id if config.pad_token_id is not None else pad_default
    pad = pad if pad is not None else (eos if eos is not None else 0)
    ids = encode_prompts(tokenizer, prompts, config, bos_token_id=bos, context=context)
    if recurrent and len({len(i) for i in ids}) > 1:
        # A recurrence reads every position (no padding to skip): prompts of differing lengths go one at a time.
        results: list[GeneratedText] = []
        for p in prompts:
            results += generate(model, [p], config, tokenizer=tokenizer, on_text=_shifted(on_text, len(results)))
        return results

    device = model.device
    input_ids = pad_rows(ids, pad, left=True, device=device)
    attention_mask = padding_mask_of(ids, left=True, device=device)
    per_prompt = config.num_return_sequences
    continuation = _Continuation(tokenizer, ids)
    stream = None
    if on_text is not None and config.num_beams == 1:
        stream = _TextStream(continuation, per_prompt, len(prompts) * per_prompt, config.stop_strings, on_text, eos)
    stop = _stop_criterion(continuation, config.stop_strings) if config.stop_strings else None
    was_training = model.training
    model.eval()
    try:
        out = decode(model, input_ids, attention_mask, config, eos_token_id=eos, pad_token_id=pad,
                     on_step=stream.on_step if stream else None, stop=stop)
    finally:
        model.train(was_training)
    if stream is not None:
        stream.finish()

    results = []
    for row, sequence in enumerate(out.sequences[:, out.prompt_length:].tolist()):
        generated = sequence
        reason = "length"
        if eos is not None and eos in generated:
            generated = generated[:generated.index(eos) + 1]
            reason = "eos"
        prompt_index = row // per_prompt
        text, stopped = _cut_at_stop(continuation(prompt_index, generated), config.stop_strings)
        if stopped:
            reason = "stop_string"
        results.append(GeneratedText(prompt=prompts[prompt_index], text=text, token_ids=generated,
                                     finish_reason=reason, prompt_tokens=len(ids[prompt_index])))
        if on_text is not None and stream is None:
            on_text(row, text)
    return results
