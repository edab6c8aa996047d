"""The score stage of one `[language_models.<name>]` model: held-out perplexity in one unit for
every kind, and a few samples, written to scores.json.

The unit is the word piece of the shared tokenizer. heldout.txt holds one document per line, so:

    ngram       `ngram.api.perplexity` (KenLM's definition): every piece of each line and its `</s>`
    lstm, gru   `rnn.api.rnn_perplexity` over `doc [SEP] doc [SEP] ...`, one stream, the recurrent
                state carried throughout: every piece and every [SEP] but the stream's first token
    gpt         the same stream, scored by `causal_stream_nll` in windows of the model's context
                that overlap by half, so every token but the first is predicted once, with at least
                half a window of context once the stream is that long

So all three predict the same tokens (one end-of-document token per document; the n-gram model
also the stream's first piece), and the perplexities are per word piece of the same text.
Samples start from the start of a document (`<s>`, or the [SEP] the neural models read as one),
with the run's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hanformer.errors import CheckpointError
from hanformer.generation.api import generate, load_generator
from hanformer.models.gpt.model import GPTForCausalLM
from hanformer.models.ngram.api import perplexity as ngram_perplexity
from hanformer.models.ngram.api import sample_sentences
from hanformer.models.rnn.api import rnn_perplexity, sample_rnn
from hanformer.models.rnn.tokens import text_stream
from hanformer.recipes.recipe import LanguageModelsSection
from hanformer.utils.files import atomic_write_json

UNIT = "word piece (one end-of-document token per document included)"


@dataclass(frozen=True)
class ScorePlan:
    """What the score stage does with a model: the `[language_models]` sampling keys and the seed."""

    kind: str
    samples: int
    sample_tokens: int
    temperature: float
    window: int
    seed: int

    @classmethod
    def of(cls, kind: str, lms: LanguageModelsSection, seed: int) -> ScorePlan:
        return cls(kind=kind, samples=lms.samples, sample_tokens=lms.sample_tokens, temperature=lms.temperature,
                   window=lms.score_window, seed=seed)


def causal_stream_nll(model: Any, ids: np.ndarray, window: int) -> tuple[float, int]:
    """(summed negative log-likelihood in nats, predicted tokens) of a causal LM over `ids`: windows
    of `window` tokens (at most the model's context) starting every `window // 2` tokens, each
    scoring only the tokens no earlier window scored. Call in eval mode."""
    window = max(2, min(window, int(model.config.n_positions)))
    stride = max(1, window // 2)
    device = next(model.parameters()).device
    tokens = torch.as_tensor(ids, dtype=torch.long, device=device)
    nll, scored_to = 0.0, 1  # the first token has no context, so it is never predicted
    with torch.inference_mode():
        for start in range(0, max(1, len(ids) - 1), stride):
            end = min(start + window, len(ids))
            if end <= scored_to:
                continue
            chunk = tokens[start:end][None]
            logits = model(chunk).logits[0, :-1].float()
            first = scored_to - start - 1  # logits[i] predicts chunk[i + 1]
            nll += float(F.cross_entropy(logits[first:], chunk[0, first + 1:], reduction="sum"))
            scored_to = end
            if end == len(ids):
                break
    return nll, len(ids) - 1


def _gpt_scores(model_dir: Path, heldout: Path, plan: ScorePlan) -> dict[str, Any]:
    model, tokenizer = load_generator(model_dir)
    if not isinstance(model, GPTForCausalLM):
        raise CheckpointError(f"{model_dir}: expected the GPT this stage trained, found a {type(model).__name__}")
    stream = text_stream(heldout, tokenizer, "text")
    stream.require(2, "held-out")
    nll, predicted = causal_stream_nll(model, stream.ids, plan.window)
    loss = nll / predicted
    texts = generate(model, [""], tokenizer=tokenizer, do_sample=True, top_k=0, temperature=plan.temperature,
                     max_new_tokens=min(plan.sample_tokens, int(model.config.n_positions) - 1),
                     num_return_sequences=plan.samples, seed=plan.seed)
    return {"perplexity": math.exp(min(loss, 50.0)), "loss": loss, "tokens": predicted,
            "documents": stream.documents, "context": min(plan.window, int(model.config.n_positions)),
            "samples": [t.text for t in texts]}


def _rnn_scores(model_dir: Path, heldout: Path, plan: ScorePlan) -> dict[str, Any]:
    scores = rnn_perplexity(model_dir, heldout, input_format="text", streams=1, window=plan.window)
    samples = sample_rnn(model_dir, num=plan.samples, max_new_tokens=plan.sample_tokens,
                         temperature=plan.temperature, seed=plan.seed)
    return {"perplexity": scores["perplexity"], "loss": scores["loss"], "tokens": scores["predicted_tokens"],
            "documents": scores["documents"], "samples": samples}


def _ngram_scores(model_dir: Path, heldout: Path, plan: ScorePlan) -> dict[str, Any]:
    scores = ngram_perplexity(model_dir, heldout, input_format="text")
    samples = sample_sentences(model_dir, num=plan.samples, seed=plan.seed, max_words=plan.sample_tokens)
    return {"perplexity": scores["perplexity"], "loss": math.log(scores["perplexity"]), "tokens": scores["tokens"],
            "documents": scores["sentences"], "oov": scores["oov"],
            "perplexity_without_oov": scores["perplexity_without_oov"], "samples": samples}


_SCORERS = {"ngram": _ngram_scores, "lstm": _rnn_scores, "gru": _rnn_scores, "gpt": _gpt_scores}


def score_language_model(plan: ScorePlan, model_dir: Path, heldout: Path, out: Path) -> dict[str, Any]:
    """Score and sample the model in `model_dir` on `heldout`; scores.json goes to `out`."""
    summary = {"kind": plan.kind, "unit": UNIT, **_SCORERS[plan.kind](model_dir, heldout, plan)}
    atomic_write_json(out, summary)
    return summary
