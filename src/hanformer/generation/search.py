"""Decoding loops: greedy, multinomial sampling and beam search over token ids.

They work with any causal LM that follows this small protocol (hanformer's `GPTForCausalLM`
and `transformers`' `GPT2LMHeadModel` both do)::

    out = model(input_ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True)
    out.logits           # (batch, length, vocab)
    out.past_key_values  # the cache to pass back next step; beam search calls its `reorder(rows)`
                         # (or transformers' `reorder_cache(rows)`)

A model may also offer `model.allocate_cache(batch_size, max_length)`: the loop then passes that
cache in at the first step, so keys/values are written into preallocated buffers instead of being
concatenated at every step.

Encoder–decoder models (translation) run the same loops through `decode_encoder_decoder`: the
source is encoded once, each row's decoder starts from the decoder start token, and every step
calls the model as transformers' `MarianMTModel` is called::

    encoded = model.get_encoder()(input_ids=source, attention_mask=source_mask).last_hidden_state
    out = model(attention_mask=source_mask, decoder_input_ids=ids, encoder_outputs=(encoded,),
                past_key_values=cache, use_cache=True)

Beams and returned sequences repeat the encoded source, never re-encode it.

Prompts of different lengths are left-padded: the attention mask hides the padding and position
ids count only real tokens (`cumsum(mask) - 1`), so a padded prompt continues exactly like the
same prompt alone. The loops reproduce `transformers`' `generate` step for step (same processors,
same tie-breaking, same beam bookkeeping), which the parity tests check token for token.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import torch

from hanformer.generation.config import GenerationConfig
from hanformer.generation.processors import apply_processors, build_processors

# (tokens chosen this step: (rows,), which rows were still generating: (rows,) bool)
StepCallback = Callable[[torch.Tensor, torch.Tensor], None]
# (sequences so far: (rows, length), prompt length) -> (rows,) bool: rows that must stop now
StopCriterion = Callable[[torch.Tensor, int], torch.Tensor]

_NEG = -1.0e9  # "impossible" score used by beam bookkeeping (finite, so sums stay ordered)


@dataclasses.dataclass
class EncodedSource:
    """An encoder–decoder model's source, encoded once: every decoding step attends to it."""

    hidden: torch.Tensor
    """(rows, source length, hidden): the encoder's last hidden states."""
    attention_mask: torch.Tensor
    """(rows, source length): 1 = real source token, 0 = padding."""

    def repeat(self, times: int) -> EncodedSource:
        """Each row `times` times in a row, as the loops repeat prompts for beams and samples."""
        if times == 1:
            return self
        return EncodedSource(self.hidden.repeat_interleave(times, dim=0),
                             self.attention_mask.repeat_interleave(times, dim=0))


@dataclasses.dataclass
class DecodeOutput:
    sequences: torch.Tensor
    """(batch * num_return_sequences, prompt_length + generated): prompt (with its left padding) and continuation."""
    prompt_length: int
    sequence_scores: torch.Tensor | None = None
    """Beam search only: length-penalised log-probability of each returned sequence."""


class _Stepper:
    """Feeds the model one step at a time and carries the cache, attention mask and positions."""

    def __init__(self, model: Any, attention_mask: torch.Tensor, use_cache: bool, max_length: int,
                 source: EncodedSource | None = None) -> None:
        self.model = model
        self.use_cache = use_cache
        self.source = source
        # Without padding the mask is all ones: pass None and let the model skip masking work.
        self.mask: torch.Tensor | None = None if bool(attention_mask.all()) else attention_mask
        positions = attention_mask.long().cumsum(-1) - 1
        self.positions = positions.masked_fill(attention_mask == 0, 0)
        self.cache = None
        # Only the last position's logits are needed; models that can skip the rest say so
        # with a `logits_to_keep` argument (hanformer's GPT and transformers' models).
        self.extra = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
        allocate = getattr(model, "allocate_cache", None)
        if use_cache and callable(allocate):
            self.cache = allocate(attention_mask.shape[0], max_length)

    def _run(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if self.source is not None:
            # Decoder inputs are never padded (every row starts at the start token), so the
            # model counts positions from its cache; the mask is the source's.
            out = self.model(attention_mask=self.source.attention_mask, decoder_input_ids=input_ids,
                             encoder_outputs=(self.source.hidden,), past_key_values=self.cache,
                             use_cache=self.use_cache, **self.extra)
        else:
            out = self.model(input_ids, attention_mask=self.mask, position_ids=positions,
                             past_key_values=self.cache, use_cache=self.use_cache, **self.extra)
        if self.use_cache:
            self.cache = out.past_key_values
        return out.logits[:, -1, :].float()

    def prefill(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits (rows, vocab) after the whole prompt."""
        return self._run(input_ids, self.positions)

    def step(self, sequences: torch.Tensor) -> torch.Tensor:
        """Next-token logits after `sequences`, whose last column was just chosen."""
        rows = sequences.shape[0]
        next_position = self.positions[:, -1:] + 1
        self.positions = torch.cat([self.positions, next_position], dim=1)
        if self.mask is not None:
            self.mask = torch.cat([self.mask, self.mask.new_ones(rows, 1)], dim=1)
        if self.use_cache:
            return self._run(sequences[:, -1:], next_position)
        return self._run(sequences, self.positions)

    @property
    def can_select_rows(self) -> bool:
        """Whether rows can leave the batch mid-search (hanformer's caches; transformers' are left whole)."""
        return not self.use_cache or hasattr(self.cache, "select_rows")

    def select_rows(self, rows: torch.Tensor) -> None:
        """Go on with the batch rows `rows` only (fewer than now)."""
        self.positions = self.positions.index_select(0, rows)
        if self.mask is not None:
            self.mask = self.mask.index_select(0, rows)
        if self.source is not None:
            self.source = EncodedSource(self.source.hidden.index_select(0, rows),
                                        self.source.attention_mask.index_select(0, rows))
        if self.use_cache and self.cache is not None:
            self.cache.select_rows(rows)

    def reorder(self, rows: torch.Tensor) -> None:
        """Beam search: keep cache rows `rows` (the beams that survive) in their new order."""
        if self.cache is None:
            return
        if hasattr(self.cache, "reorder"):  # hanformer's KVCache
            self.cache.reorder(rows)
        elif hasattr(self.cache, "reorder_cache"):  # transformers' Cache
            self.cache.reorder_cache(rows)
        else:  # legacy tuple-of-tuples cache
            self.cache = tuple(tuple(t.index_select(0, rows) for t in layer) for layer in self.cache)


def _pad_lengths(attention_mask: torch.Tensor) -> torch.Tensor | None:
    if bool(attention_mask.all()):
        return None
    return (attention_mask != 0).int().argmax(dim=1)


@torch.inference_mode()
def decode(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
           config: GenerationConfig, *, eos_token_id: int | None, pad_token_id: int | None,
           on_step: StepCallback | None = None, stop: StopCriterion | None = None,
           source: EncodedSource | None = None) -> DecodeOutput:
    """Continue each (left-padded) prompt in `input_ids` according to `config`.

    `on_step` is called after every step of greedy/sampling with the chosen tokens (streaming);
    beam search only knows its winners at the end, so it does not stream. `stop` lets the caller
    end sequences early, e.g. on stop strings. `source`: the encoded source of an encoder–decoder
    model, one row per prompt (see `decode_encoder_decoder`).
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if pad_token_id is None:
        pad_token_id = eos_token_id
    if config.num_beams > 1:
        return _beam_search(model, input_ids, attention_mask, config, eos_token_id, pad_token_id, stop, source)
    if config.num_return_sequences > 1:
        input_ids = input_ids.repeat_interleave(config.num_return_sequences, dim=0)
        attention_mask = attention_mask.repeat_interleave(config.num_return_sequences, dim=0)
        source = source.repeat(config.num_return_sequences) if source is not None else None
    return _greedy_or_sample(model, input_ids, attention_mask, config, eos_token_id, pad_token_id,
                             on_step, stop, source)


@torch.inference_mode()
def decode_encoder_decoder(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                           config: GenerationConfig, *, decoder_start_token_id: int, eos_token_id: int | None,
                           pad_token_id: int | None, on_step: StepCallback | None = None,
                           stop: StopCriterion | None = None) -> DecodeOutput:
    """Translate each (right-padded) source in `input_ids` according to `config`.

    The source is encoded once; the decoder of every row starts from `decoder_start_token_id`,
    and the returned sequences begin with it (prompt_length 1), as transformers' do.
    """
    encoded = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    start = torch.full((input_ids.shape[0], 1), decoder_start_token_id, dtype=torch.long, device=input_ids.device)
    return decode(model, start, None, config, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                  on_step=on_step, stop=stop, source=EncodedSource(encoded, attention_mask))


def _greedy_or_sample(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      config: GenerationConfig, eos_token_id: int | None, pad_token_id: int | None,
                      on_step: StepCallback | None, stop: StopCriterion | None,
                      source: EncodedSource | None) -> DecodeOutput:
    rows, prompt_length = input_ids.shape
    max_length = prompt_length + config.max_new_tokens
    processors = build_processors(config, _pad_lengths(attention_mask))
    generator = None
    if config.do_sample and config.seed is not None:
        generator = torch.Generator(device=input_ids.device).manual_seed(config.seed)

    # Preallocated so each step writes one column instead of copying the whole sequence.
    buffer = input_ids.new_empty(rows, max_length)
    buffer[:, :prompt_length] = input_ids
    active = torch.ones(rows, dtype=torch.bool, device=input_ids.device)
    stepper = _Stepper(model, attention_mask, config.use_cache, max_length, source)
    logits = stepper.prefill(input_ids)
    length = prompt_length
    while True:
        sequences = buffer[:, :length]
        scores = apply_processors(processors, sequences, logits) if processors else logits
        if config.do_sample:
            probs = torch.softmax(scores, dim=-1)
            tokens = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
        else:
            tokens = torch.argmax(scores, dim=-1)
        if eos_token_id is not None:  # finished rows keep receiving padding
            assert pad_token_id is not None  # decode() falls back to eos_token_id
            tokens = torch.where(active, tokens, pad_token_id)
        buffer[:, length] = tokens
        length += 1
        if on_step is not None:
            on_step(tokens, active)
        if eos_token_id is not None:
            active &= tokens != eos_token_id
        if stop is not None:
            active &= ~stop(buffer[:, :length], prompt_length)
        if length >= max_length or not bool(active.any()):
            break
        logits = stepper.step(buffer[:, :length])
    return DecodeOutput(buffer[:, :length].clone(), prompt_length)


def _beam_rows(prompts: torch.Tensor, beams: int) -> torch.Tensor:
    """The flat (prompt * beams + beam) rows of `prompts`."""
    return (prompts[:, None] * beams + torch.arange(beams, device=prompts.device)[None, :]).reshape(-1)


def _gather_beams(tensor: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Pick beams along dim 1: tensor (batch, beams, ...), indices (batch, picked)."""
    while indices.dim() < tensor.dim():
        indices = indices.unsqueeze(-1)
    return torch.take_along_dim(tensor, indices, dim=1)


def _beam_search(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 config: GenerationConfig, eos_token_id: int | None, pad_token_id: int | None,
                 stop: StopCriterion | None, source: EncodedSource | None) -> DecodeOutput:
    """Beam search with `transformers`' bookkeeping, so results match it exactly.

    Each step keeps the 2 * num_beams best continuations over all beams: the best num_beams that
    did not just end go on running; those among the top num_beams that ended (EOS, stop, length
    limit) compete, with a length penalty, for the num_beams "finished" slots. The search ends
    when the finished set can no longer improve (`early_stopping` decides how that is judged).
    """
    batch, prompt_length = input_ids.shape
    beams = config.num_beams
    max_length = prompt_length + config.max_new_tokens
    keep = max(2, 1 + (eos_token_id is not None)) * beams
    top_mask = torch.arange(keep, device=input_ids.device) < beams
    length_penalty, early_stopping = config.length_penalty, config.early_stopping
    device = input_ids.device

    flat_ids = input_ids.repeat_interleave(beams, dim=0)
    flat_mask = attention_mask.repeat_interleave(beams, dim=0)
    processors = build_processors(config, _pad_lengths(flat_mask))
    # Unused tail positions are filled like transformers fills them (pad, or eos when pad is 0/None).
    fill = (pad_token_id or eos_token_id) if eos_token_id is not None else -1
    running = torch.full((batch, beams, max_length), fill, dtype=torch.long, device=device)
    running[:, :, :prompt_length] = flat_ids.view(batch, beams, prompt_length)
    finished_seqs = running.clone()
    # Only beam 0 starts "alive", so the first step does not pick the same token num_beams times.
    running_scores = torch.zeros(batch, beams, device=device)
    running_scores[:, 1:] = _NEG
    finished_scores = torch.full((batch, beams), _NEG, device=device)
    is_finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)
    can_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)
    running_origin = torch.full((batch, beams, max_length - prompt_length), -1, dtype=torch.long, device=device)
    finished_origin = running_origin.clone()
    batch_offset = torch.arange(batch, device=device).view(-1, 1) * beams

    stepper = _Stepper(model, flat_mask, config.use_cache, max_length,
                       source.repeat(beams) if source is not None else None)
    logits = stepper.prefill(flat_ids)
    length = prompt_length
    kept = torch.arange(batch, device=device)  # the prompts whose beams the model still runs
    while True:
        log_probs = torch.log_softmax(logits, dim=-1)
        if processors:
            log_probs = apply_processors(processors, running[:, :, :length].reshape(batch * beams, length), log_probs)
        vocab = log_probs.shape[-1]
        total = (log_probs.view(batch, beams, vocab) + running_scores[:, :, None]).view(batch, beams * vocab)

        # Best `keep` continuations over all beams of each prompt.
        top_scores, top_index = torch.topk(total, k=keep)
        from_beam = top_index // vocab
        cand_seqs = _gather_beams(running, from_beam)
        cand_seqs[:, :, length] = top_index % vocab
        cand_origin = _gather_beams(running_origin, from_beam)
        cand_origin[:, :, length - prompt_length] = from_beam + batch_offset

        # Which candidates end here.
        ends = torch.full((batch, keep), length + 1 >= max_length, dtype=torch.bool, device=device)
        if eos_token_id is not None:
            ends |= cand_seqs[:, :, length] == eos_token_id
        if stop is not None:
            ends |= stop(cand_seqs[:, :, :length + 1].reshape(batch * keep, length + 1),
                         prompt_length).view(batch, keep)

        # Running beams for the next step: the best candidates that did not end.
        alive_scores = top_scores + ends.float() * _NEG
        pick = torch.topk(alive_scores, k=beams)[1]
        running = _gather_beams(cand_seqs, pick)
        running_scores = _gather_beams(alive_scores, pick)
        running_origin = _gather_beams(cand_origin, pick)

        # Finished set: merge the newly ended top candidates (length-penalised) and keep the best.
        just_ended = ends & top_mask[None, :]
        final_scores = top_scores / ((length + 1 - prompt_length) ** length_penalty)
        full = torch.all(is_finished, dim=-1, keepdim=True) & (early_stopping is True)
        final_scores += full.float() * _NEG
        final_scores += (~can_improve).float() * _NEG
        final_scores += (~just_ended) * _NEG
        merged_scores = torch.cat([finished_scores, final_scores], dim=1)
        best = torch.topk(merged_scores, k=beams)[1]
        finished_seqs = _gather_beams(torch.cat([finished_seqs, cand_seqs], dim=1), best)
        finished_scores = _gather_beams(merged_scores, best)
        finished_origin = _gather_beams(torch.cat([finished_origin, cand_origin], dim=1), best)
        is_finished = _gather_beams(torch.cat([is_finished, just_ended], dim=1), best)

        length += 1
        # Can a running beam still beat the worst finished one? (transformers' heuristic)
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_length - prompt_length
        else:
            best_length = length - prompt_length
        best_running = running_scores[:, :1] / (best_length ** length_penalty)
        worst_finished = torch.where(is_finished, torch.min(finished_scores, dim=1, keepdim=True)[0], _NEG)
        can_improve = can_improve & torch.any(best_running > worst_finished, dim=-1, keepdim=True)
        done = (not bool(can_improve.any())
                or (bool(is_finished.all()) and early_stopping is True)
                or bool(ends.all()))
        if done:
            break
        # A prompt whose finished set can no longer change leaves the batch (as in fairseq):
        # its beams stop costing model work; the bookkeeping above still covers every prompt.
        still = can_improve[kept, 0]
        if stepper.can_select_rows and not bool(still.all()):
            stepper.select_rows(_beam_rows(still.nonzero().squeeze(1), beams))
            kept = kept[still]
        # The surviving beams of each kept prompt, numbered as the stepper now holds its rows.
        origin = running_origin[kept, :, length - 1 - prompt_length] % beams
        stepper.reorder((torch.arange(len(kept), device=device)[:, None] * beams + origin).reshape(-1))
        kept_logits = stepper.step(running[kept, :, :length].reshape(len(kept) * beams, length))
        if len(kept) == batch:
            logits = kept_logits
        else:
            logits = kept_logits.new_zeros(batch, beams, kept_logits.shape[-1])
            logits[kept] = kept_logits.view(len(kept), beams, -1)
            logits = logits.view(batch * beams, -1)

    n = config.num_return_sequences
    sequences = finished_seqs[:, :n].reshape(batch * n, max_length)
    scores = finished_scores[:, :n].reshape(batch * n)
    origin = finished_origin[:, :n].reshape(batch * n, -1)
    generated = int((origin >= 0).sum(dim=1).max())
    return DecodeOutput(sequences[:, :prompt_length + generated].clone(), prompt_length, scores)
