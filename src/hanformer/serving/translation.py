"""Translation behind the web app: lines in, translations out, and where each output token looked.

The translations are `hanformer.generation.translate`'s own (`translate()`), so the app answers
exactly what `hanformer translate` writes with the same settings. The cross-attention of one
translation comes from running the model once more with teacher forcing on the output it was
given: the Transformer's last decoder layer averaged over its heads, or the recurrent model's
one attention (an RNN trained with attention "none" has none to show).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from hanformer.errors import HanformerError
from hanformer.generation.alignment import cross_attention_map
from hanformer.generation.translate import TranslationModel, encode_sources, translate
from hanformer.generation.translate_config import TranslateConfig
from hanformer.serving.config import ServeConfig
from hanformer.serving.errors import FieldError, check_answer_size
from hanformer.tokenization.tokenizer import Tokenizer

# Bytes of JSON per attention weight (4 decimals and a comma), to refuse a matrix too large before computing it.
WEIGHT_JSON_BYTES = 7
WEIGHT_DECIMALS = 4


@dataclasses.dataclass(frozen=True)
class Decoding:
    """The decoding controls of a translate request (None: the server's default)."""

    num_beams: int
    max_new_tokens: int | None
    length_penalty: float

    @property
    def strategy(self) -> str:
        return "greedy" if self.num_beams == 1 else "beam"


class TranslationService:
    """A translation model and its tokenizer, loaded once by the engine (`load_translator`).

    Safe to call from several threads at once: `translate()` and the attention pass only run the
    model forward under inference mode, and the tokenizer is safe to share."""

    def __init__(self, model: TranslationModel, tokenizer: Tokenizer, config: ServeConfig) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        model_config = model.config
        self.positions: int = model_config.max_position_embeddings
        # An RNN says which attention it has; the Transformer always has cross-attention.
        self.attention_kind: str = getattr(model_config, "attention", "transformer")

    # ---- translations -------------------------------------------------------------------------

    def translate_config(self, decoding: Decoding) -> TranslateConfig:
        """The request's controls as `translate()`'s settings, checked by `TranslateConfig` itself
        (its errors name the request field). Left out, max_new_tokens is the translate default,
        kept within the server's limit and the model's positions."""
        max_length = decoding.max_new_tokens
        if max_length is None:
            max_length = max(1, min(TranslateConfig().max_length, self.config.max_new_tokens, self.positions - 1))
        try:
            return TranslateConfig(num_beams=decoding.num_beams, max_length=max_length,
                                   length_penalty=decoding.length_penalty, batch_size=self.config.max_batch)
        except HanformerError as e:
            raise _setting_error(e) from None

    def translate(self, texts: list[str], config: TranslateConfig) -> list[dict[str, Any]]:
        """One translation per line, in order (a blank line gives an empty translation)."""
        try:
            translations = translate(self.model, texts, config, tokenizer=self.tokenizer)
        except HanformerError as e:
            raise FieldError("texts", str(e)) from None
        return [{"source": t.source, "text": t.text, "tokens": self._tokens(t.token_ids), "token_ids": t.token_ids,
                 "score": t.score, "finish_reason": t.finish_reason, "source_tokens": t.source_tokens}
                for t in translations]

    # ---- cross-attention ----------------------------------------------------------------------

    def cross_attention(self, text: str, token_ids: list[int]) -> dict[str, Any]:
        """The attention of each output token (rows) over the source tokens (columns, EOS
        included) when the model reads `token_ids` as its translation of `text`."""
        model_config = self.model.config
        source = encode_sources(self.tokenizer, [text], model_config.eos_token_id, self.positions)[0]
        if not source:
            raise FieldError("text", "text: the sentence is blank; send the source line of a translation")
        self._check_output_ids(token_ids)
        answer: dict[str, Any] = {"source_tokens": self._tokens(source), "output_tokens": self._tokens(token_ids),
                                  "attention": self.attention_kind, "weights": None}
        if self.attention_kind == "none":
            answer["description"] = ("this model has no attention (attention = none): its decoder reads the "
                                     "encoder's final vectors at every step")
            return answer
        check_answer_size(len(token_ids) * len(source) * WEIGHT_JSON_BYTES, self.config.max_response_bytes,
                          "token_ids", "send a shorter translation")
        picture = cross_attention_map(self.model, source, token_ids)
        if picture is None:  # a recurrent model without attention has said so above; nothing else lacks it
            return answer
        answer["weights"] = [[round(w, WEIGHT_DECIMALS) for w in row] for row in picture.weights.tolist()]
        answer["description"] = (f"{self.attention_kind} attention" if picture.heads is None else
                                 f"last decoder layer, mean of its {picture.heads} heads")
        return answer

    def _check_output_ids(self, token_ids: list[int]) -> None:
        if not token_ids:
            raise FieldError("token_ids", "token_ids: empty; send the token_ids of a translation (from /api/translate)")
        room = self.positions - 1  # the decoder start token takes one position
        if len(token_ids) > room:
            raise FieldError("token_ids", f"token_ids: {len(token_ids)} tokens, more than the {room} target "
                                          "positions of this model")
        vocab = self.model.output_weight().shape[0]
        bad = next((i for i in token_ids if not 0 <= i < vocab), None)
        if bad is not None:
            raise FieldError("token_ids", f"token_ids: {bad} is not a token id of this model (0 to {vocab - 1})")

    def _tokens(self, ids: list[int]) -> list[str]:
        return [self.tokenizer.backend.id_to_token(int(i)) or "" for i in ids]


def _setting_error(error: HanformerError) -> FieldError:
    """`TranslateConfig`'s messages start with the setting at fault ("num_beams = 0: ..."); name
    it as the request field (max_length is the request's max_new_tokens)."""
    match = re.match(r"\w+", str(error))
    name = match.group(0) if match else ""
    field = {"max_length": "max_new_tokens"}.get(name, name)
    return FieldError(field if field in ("num_beams", "max_new_tokens", "length_penalty") else "body", str(error))
