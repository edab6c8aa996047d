"""Inference behind the web app: one loaded checkpoint, plain-Python results ready for JSON.

The engine knows nothing about HTTP; `app.py` validates requests and calls it from a thread
pool. Every method is safe to call from several threads at once: the model only runs forward
passes under `torch.inference_mode`, and `Tokenizer` is itself safe to share between threads.
A causal LM (GPT) checkpoint serves text generation (`generate`) and tokenization; a translation
model (Transformer or recurrent encoder-decoder) serves translation (`translation.py`) and
tokenization; the encoder-only endpoints answer that they do not apply.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hanformer import __version__
from hanformer.data.padding import pad_rows, padding_mask_of
from hanformer.embedding.encode import EmbedConfig, embed
from hanformer.errors import CheckpointError, HanformerError
from hanformer.generation.api import generate, load_generator
from hanformer.generation.config import GenerationConfig
from hanformer.generation.translate import load_translator
from hanformer.models.checkpoint import load_model
from hanformer.models.hub import model_type
from hanformer.models.registry import GENERATION, serves_translation, task_of
from hanformer.models.rnn.config import MODEL_TYPE as RNN_MODEL_TYPE
from hanformer.serving.config import ServeConfig
from hanformer.serving.errors import FieldError, check_answer_size
from hanformer.serving.translation import TranslationService
from hanformer.tasks.examples import TextExample
from hanformer.tasks.inference import predict_examples, prediction_record, raw_examples
from hanformer.tasks.model_dir import resolve_model_dir
from hanformer.tasks.task_model import TaskModel
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.visualization.attention import attention_data

if TYPE_CHECKING:
    from hanformer.generation.api import GeneratedText

# Which endpoints each kind of checkpoint answers (for /info and the page's footer).
ENCODER_ENDPOINTS = ["/api/tokenize", "/api/embeddings", "/api/attention"]
CAUSAL_LM_ENDPOINTS = ["/api/tokenize", "/api/generate"]
TRANSLATION_ENDPOINTS = ["/api/tokenize", "/api/translate", "/api/translate/attention"]
HEAD_TASKS = ("classification", "regression", "token-classification", "question-answering")

# A vocabulary whose words are this much Hangul is Korean (the page's examples follow it). Words are
# vocabulary entries with a letter; Hangul means a syllable block, since hanformer adds the jamo
# to every vocabulary and multilingual ones hold a few thousand syllables among 100k entries.
KOREAN_VOCABULARY_SHARE = 0.2

# Bytes of JSON per item of an answer, to refuse one too large before computing it: a fill-mask
# candidate without its sequence, a float with its comma (attention: 4 decimals; embeddings: full
# precision) and a packed attention weight (one byte, in base64).
CANDIDATE_JSON_BYTES = 96
ATTENTION_FLOAT_BYTES = 7
EMBEDDING_FLOAT_BYTES = 22
PACKED_WEIGHT_BYTES = 4 / 3


def hangul_share(vocabulary: Iterable[str]) -> float:
    """Of the entries with a letter, the share with a Hangul syllable (`##` pieces count as words)."""
    words = hangul = 0
    for token in vocabulary:
        if any(c.isalpha() for c in token):
            words += 1
            hangul += any("\uac00" <= c <= "\ud7a3" for c in token)
    return hangul / words if words else 0.0


class GenerationCancelled(Exception):
    """Raised inside the decoding loop when the caller no longer wants the text (client gone).

    Not a `HanformerError`: it is no fault of the input and is never shown to anyone."""


@dataclass
class Batch:
    encodings: list[Any]
    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor


class InferenceEngine:
    """A model and its tokenizer, loaded once from a checkpoint directory."""

    def __init__(self, model_dir: str | Path, config: ServeConfig) -> None:

        self.model_dir = resolve_model_dir(model_dir)  # a fine-tuning output dir serves its best/
        self.config = config
        self.translation: TranslationService | None = None
        kind = model_type(self.model_dir)
        if serves_translation(kind):
            # load_translator checks what translation needs (an output layer, the tokenizer).
            model, self.tokenizer = load_translator(self.model_dir)
            self.model: Any = model
            self.translation = TranslationService(model, self.tokenizer, config)
        elif kind == RNN_MODEL_TYPE:  # LSTM/GRU language models keep their own folder layout
            self.model, self.tokenizer = load_generator(self.model_dir)
        else:
            self.model = load_model(self.model_dir)
            self.model.eval()
            self.tokenizer = Tokenizer.from_pretrained(self.model_dir)
        architecture = type(self.model).__name__
        self.architecture = architecture
        # The checkpoint's class decides which task the app serves.
        self.task = GENERATION if kind == RNN_MODEL_TYPE else task_of(type(self.model))
        self.causal_lm = self.task == GENERATION
        if architecture == "GPTModel":
            raise CheckpointError(f"{self.model_dir}: a GPTModel checkpoint (GPT without its language-model head) "
                                  "has nothing to serve; serve a GPTForCausalLM / GPT2LMHeadModel checkpoint")
        model_config = self.model.config
        # BERT names the context window max_position_embeddings, GPT-2 n_positions; a recurrence has none.
        context: int = getattr(model_config, "max_position_embeddings", 0) or getattr(model_config, "n_positions",
                                                                                       config.max_tokens)
        self.max_tokens = min(config.max_tokens, context)
        self.labels: list[str] | None = None
        self.task_name: str | None = None
        self.task_model: TaskModel | None = None
        if self.task in ("classification", "token-classification", "question-answering"):
            self.task_model = TaskModel.of_loaded(self.model_dir, self.model, self.tokenizer, self.task,
                                                  self.max_tokens)
            self.labels, self.task_name = self.task_model.labels, self.task_model.task.name
            if self.task_model.task.kind == "regression":
                self.task = "regression"
        self.language = "ko" if hangul_share(self.tokenizer.get_vocab()) >= KOREAN_VOCABULARY_SHARE else "en"

    # ---- description ------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:

        cfg = self.model.config
        name = self.model_dir.name
        if name in ("best", "final") and self.model_dir.parent.name:
            name = f"{self.model_dir.parent.name}/{name}"  # runs/nsmc/best -> nsmc/best
        return {
            "name": name,
            "version": __version__,
            "task": self.task,
            "task_name": self.task_name,
            "pair": bool(self.task_model and self.task_model.task.pair),
            "architecture": self.architecture,
            "labels": self.labels,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "vocab_size": self.tokenizer.vocab_size,
            "mask_token": self._token(self.tokenizer.mask_token_id),
            "language": self.language,
            "causal_lm": self.causal_lm,
            "endpoints": self.endpoints(),
            "config": cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg)),
            "limits": {"max_chars": self.config.max_chars, "max_batch": self.config.max_batch,
                       "max_tokens": self.max_tokens, "attention_max_tokens": self.config.attention_max_tokens,
                       "max_top_k": self.config.max_top_k, "max_masks": self.config.max_masks,
                       "max_body_bytes": self.config.max_body_bytes,
                       "max_response_bytes": self.config.max_response_bytes,
                       "max_new_tokens": self.config.max_new_tokens, "max_beams": self.config.max_beams,
                       "max_generations": self.config.max_generations},
        }

    def endpoints(self) -> list[str]:
        """The POST endpoints that answer for this checkpoint (the others explain why not)."""
        if self.causal_lm:
            return list(CAUSAL_LM_ENDPOINTS)
        if self.translation is not None:
            return list(TRANSLATION_ENDPOINTS)
        served = list(ENCODER_ENDPOINTS)
        if self.task == "fill-mask":
            served[1:1] = ["/api/fill-mask", "/api/predict"]  # predict fills the masks too
        elif self.task in HEAD_TASKS:
            served[2:2] = ["/api/predict"]
        return served

    def _check_answer_size(self, size: float, field: str, advice: str) -> None:
        check_answer_size(size, self.config.max_response_bytes, field, advice)

    def _require_encoder(self, field: str, what: str) -> None:
        if self.causal_lm:
            raise FieldError(field, f"{what} needs an encoder (BERT) checkpoint; this one is a causal language "
                                    f"model ({self.architecture}): use /api/generate")
        if self.translation is not None:
            raise FieldError(field, f"{what} needs an encoder (BERT) checkpoint; this one is a translation "
                                    f"model ({self.architecture}): use /api/translate")

    def translator(self, field: str) -> TranslationService:
        """The translation side of a translation model; for any other checkpoint a 422 naming `field`."""
        if self.translation is None:
            raise FieldError(field, f"this checkpoint ({self.architecture}, {self.task}) is not a translation "
                                    "model; serve one from `hanformer translation train` or a MarianMTModel "
                                    "checkpoint")
        return self.translation

    # ---- shared steps -----------------------------------------------------------------------

    def _token(self, token_id: int | None) -> str | None:
        if token_id is None:
            return None
        return self.tokenizer.backend.id_to_token(int(token_id))

    def batch(self, texts: list[str], pairs: list[str] | None = None, *,
              max_tokens: int | None = None) -> Batch:
        """Encode and pad a batch (truncated to `max_tokens`, default the server's limit)."""
        limit = self.max_tokens if max_tokens is None else max_tokens
        encodings = self.tokenizer.encode_batch(texts, pairs, max_length=limit, truncation=True)
        ids = [e.ids for e in encodings]
        input_ids = pad_rows(ids, self.tokenizer.pad_token_id)
        token_type_ids = pad_rows([e.type_ids for e in encodings], 0)
        attention_mask = padding_mask_of(ids)
        return Batch(encodings, input_ids, token_type_ids, attention_mask)

    # ---- endpoints --------------------------------------------------------------------------

    def tokenize(self, texts: list[str], pairs: list[str] | None = None) -> list[dict[str, Any]]:
        out = []
        for e in self.tokenizer.encode_batch(texts, pairs):
            out.append({"tokens": list(e.tokens), "ids": list(e.ids), "type_ids": list(e.type_ids),
                        "offsets": [list(o) for o in e.offsets],
                        "word_ids": list(e.word_ids)})
        return out

    def embeddings(self, texts: list[str], pooling: str = "mean", normalize: bool = True) -> list[list[float]]:
        """One vector per text: mean of the last layer's token vectors (or the [CLS] vector)."""

        self._require_encoder("texts", "/api/embeddings")
        hidden = self.model.config.hidden_size
        self._check_answer_size(len(texts) * hidden * EMBEDDING_FLOAT_BYTES, "texts",
                                f"send fewer texts (each answers {hidden} numbers)")
        config = EmbedConfig(batch_size=self.config.max_batch, max_length=self.max_tokens,
                             pooling=pooling, normalize=normalize)  # type: ignore[arg-type]
        return embed(self.model, texts, tokenizer=self.tokenizer, config=config).tolist()

    def fill_mask(self, texts: list[str], top_k: int) -> list[dict[str, Any]]:
        self._require_encoder("texts", "/api/fill-mask")
        if self.task != "fill-mask":
            raise FieldError("texts", f"this checkpoint ({self.architecture}) has no masked-LM head; "
                                      "serve a pretrained (BertForPreTraining/BertForMaskedLM) checkpoint")
        mask_id = self.tokenizer.mask_token_id
        batch = self.batch(texts)
        self._check_masks(batch, texts, top_k)
        is_mask = batch.input_ids == mask_id
        # The vocabulary projection at the masks only, (masks, vocab) in reading order: on every
        # position it would be (texts, tokens, vocab) floats, gigabytes for a full request.
        with torch.inference_mode():
            out = self.model(batch.input_ids, attention_mask=batch.attention_mask,
                             token_type_ids=batch.token_type_ids,
                             labels=torch.where(is_mask, batch.input_ids, torch.full_like(batch.input_ids, -100)))
        logits = out.logits if getattr(out, "logits", None) is not None else out.prediction_logits
        results = []
        next_mask = 0
        for e, text in zip(batch.encodings, texts, strict=True):
            masks = []
            for pos, token_id in enumerate(e.ids):
                if token_id != mask_id:
                    continue
                probs = torch.softmax(logits[next_mask].float(), dim=-1)
                next_mask += 1
                scores, ids = probs.topk(min(top_k, probs.numel()))
                start, end = e.offsets[pos]
                candidates = []
                for score, cand in zip(scores.tolist(), ids.tolist(), strict=True):
                    token = self._token(cand) or ""
                    word = token[2:] if token.startswith("##") else token
                    candidates.append({"token": token, "id": cand, "score": score,
                                       "sequence": text[:start] + word + text[end:]})
                masks.append({"position": pos, "candidates": candidates})
            results.append({"masks": masks})
        return results

    def _check_masks(self, batch: Batch, texts: list[str], top_k: int) -> None:
        """Every text has 1..max_masks masks, and the answer (each candidate repeats its text
        with the mask filled in) fits in max_response_bytes."""
        mask_id = self.tokenizer.mask_token_id
        mask_token = self._token(mask_id)
        limit = self.config.max_masks
        size = 0
        for i, (e, text) in enumerate(zip(batch.encodings, texts, strict=True)):
            masks = e.ids.count(mask_id)
            if masks == 0:
                raise FieldError(f"texts[{i}]", f"texts[{i}] has no {mask_token} token; "
                                                f"put {mask_token} where a word should be predicted")
            if masks > limit:
                raise FieldError(f"texts[{i}]", f"texts[{i}] has {masks} {mask_token} tokens, more than "
                                                f"max_masks = {limit} (`hanformer serve --max-masks`); "
                                                "split it into several texts")
            size += masks * top_k * (len(text.encode("utf-8")) + CANDIDATE_JSON_BYTES)
        self._check_answer_size(size, "top_k", "ask for a smaller top_k, or send fewer or shorter texts")

    def predict(self, texts: list[str], pairs: list[str] | None = None) -> list[dict[str, Any]]:
        """The checkpoint's task head on each text (for QA: texts are questions, pairs contexts).

        The same path as `hanformer predict` and evaluation (`hanformer.tasks.inference`), so the
        app gives exactly the answers the evaluation scored: word/character units for NER, QA
        windows with a stride over long contexts, labels with probabilities.
        """

        if self.task == "fill-mask":
            return self.fill_mask(texts, self.config.top_k)
        self._require_encoder("texts", "/api/predict")
        if self.task_model is None:
            raise FieldError("texts", f"this checkpoint ({self.architecture}) has no task head; "
                                      "use /api/embeddings or /api/attention")
        if self.task == "question-answering" and pairs is None:
            raise FieldError("pairs", "a question-answering model needs a context for every question: "
                                      "send the questions as 'texts' and the contexts as 'pairs'")
        task, settings = self.task_model.task, self.task_model.settings
        if task.pair and pairs is None:
            raise FieldError("pairs", f"task {task.name!r} takes sentence pairs: send one 'pairs' entry per text")
        examples = raw_examples(task, [TextExample(t, None if pairs is None else pairs[i], source=f"texts[{i}]")
                                       for i, t in enumerate(texts)])
        preds = predict_examples(task, self.model, self.task_model.encoder, examples, settings, self.labels,
                                 batch_size=self.config.max_batch)
        names = self.task_model.label_names
        return [prediction_record(task, e, label, detail, names=names)
                for e, label, detail in zip(examples, preds.labels, preds.details, strict=True)]

    def attention(self, text: str, pair: str | None = None, packed: bool = False) -> dict[str, Any]:

        self._require_encoder("text", "/api/attention")
        data = attention_data(self.model, self.tokenizer, text, pair,
                              max_length=min(self.config.attention_max_tokens, self.max_tokens))
        # Per layer: every head's map, then the mean and the rollout.
        weights = data.num_layers * (data.num_heads + 2) * len(data.tokens) ** 2
        self._check_answer_size(weights * (PACKED_WEIGHT_BYTES if packed else ATTENTION_FLOAT_BYTES),
                                "text", "send a shorter text" + ("" if packed else ", or ask for packed: true"))
        return data.to_dict(packed=packed)

    # ---- generation (causal LMs) ---------------------------------------------------------------

    def generation_config(self, settings: dict[str, Any]) -> GenerationConfig:
        """Request settings -> a `GenerationConfig`, validated by the generation package itself.

        Its errors become a `FieldError` naming the setting; settings left out take the
        generation defaults, except `max_new_tokens`, kept within the server's limit and half the
        context window (room for the prompt).
        """

        if not self.causal_lm:
            raise FieldError("prompt", f"this checkpoint ({self.architecture}) is not a causal language model and "
                                       "cannot generate text; serve a GPT or RNN language model (`hanformer pretrain "
                                       "--objective clm`, `hanformer rnn train`)")
        settings = dict(settings)
        if settings.get("max_new_tokens") is None:
            default = GenerationConfig().max_new_tokens
            settings["max_new_tokens"] = max(1, min(default, self.config.max_new_tokens, self.max_tokens // 2))
        try:
            return GenerationConfig(**settings)
        except HanformerError as e:
            raise _setting_error(e) from None

    def generate(self, prompt: str, config: GenerationConfig, on_text: Callable[[str], None],
                 cancelled: threading.Event | None = None) -> GeneratedText:
        """Continue `prompt`, handing each new piece of text to `on_text` as it is produced.

        Blocks (the app calls it in a worker thread). Once `cancelled` is set, the decoding loop
        stops at its next piece of text by raising `GenerationCancelled`. Beam search knows its
        text only at the end, so it delivers it in one piece and cannot be stopped part-way.
        """

        if cancelled is not None and cancelled.is_set():
            raise GenerationCancelled

        def relay(row: int, text: str) -> None:
            if cancelled is not None and cancelled.is_set():
                raise GenerationCancelled
            on_text(text)

        try:
            return generate(self.model, [prompt], config, tokenizer=self.tokenizer, on_text=relay)[0]
        except HanformerError as e:
            raise _setting_error(e) from None


def _setting_error(error: HanformerError) -> FieldError:
    """The generation package's messages start with the setting at fault ("top_p = 1.5: ...",
    "prompt 1 has 80 tokens ..."); name it as the request field."""

    match = re.match(r"\w+", str(error))
    names = {f.name for f in dataclasses.fields(GenerationConfig)} | {"prompt"}
    field = match.group(0) if match and match.group(0) in names else "prompt"
    return FieldError(field, str(error))
