"""Inference behind the web app: one loaded checkpoint, plain-Python results ready for JSON.

The engine knows nothing about HTTP; `app.py` validates requests and calls it from a thread
pool. Every method is safe to call from several threads at once: the model only runs forward
passes under `torch.inference_mode`, and tokenizer calls are serialised (see `Serialized`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hanformer.errors import InputError
from hanformer.serving.config import ServeConfig

# The checkpoint's class decides which task the app serves.
TASKS = {
    "BertForSequenceClassification": "classification",
    "BertForTokenClassification": "token-classification",
    "BertForQuestionAnswering": "question-answering",
    "BertForMaskedLM": "fill-mask",
    "BertForPreTraining": "fill-mask",
    "BertModel": "embeddings",
}


class FieldError(InputError):
    """Bad input in one request field; the app answers 422 naming `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Serialized:
    """A tokenizer whose calls run one at a time.

    `Tokenizer` sets the engine's truncation and padding for the length of each call and resets
    them afterwards, so two threads calling it at once could see each other's settings. The
    calls are short next to a forward pass, so serialising them costs little; the forward passes
    still run in parallel.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._tokenizer, name)
        if not callable(value) or name == "backend":
            return value

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return locked

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._tokenizer(*args, **kwargs)


@dataclass
class Batch:
    encodings: list[Any]
    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor


class InferenceEngine:
    """A model and its tokenizer, loaded once from a checkpoint directory."""

    def __init__(self, model_dir: str | Path, config: ServeConfig) -> None:
        from hanformer.models.checkpoint import load_model
        from hanformer.tasks.evaluate import resolve_model_dir
        from hanformer.tokenization.tokenizer import Tokenizer

        self.model_dir = resolve_model_dir(model_dir)  # a fine-tuning output dir serves its best/
        self.config = config
        self.model = load_model(self.model_dir)
        self.model.eval()
        self.tokenizer = Serialized(Tokenizer.from_pretrained(self.model_dir))
        architecture = type(self.model).__name__
        self.architecture = architecture
        self.task = TASKS.get(architecture, "embeddings")
        model_config = self.model.config
        self.max_tokens = min(config.max_tokens, model_config.max_position_embeddings)
        self.labels: list[str] | None = None
        self.task_name: str | None = None
        self.task_spec: tuple[Any, Any] | None = None
        if self.task in ("classification", "token-classification", "question-answering"):
            self._resolve_task()

    def _resolve_task(self) -> None:
        """The fine-tuning task behind the head: from task.json when hanformer fine-tuned it,
        otherwise a generic task of the head's kind with the labels of config.json."""
        import dataclasses

        from hanformer.tasks.encoding import PieceEncoder
        from hanformer.tasks.model_io import TaskSettings, read_task_file
        from hanformer.tasks.registry import get_task

        cfg = self.model.config
        recorded = read_task_file(self.model_dir) or {}
        if recorded.get("task"):
            task = get_task(recorded["task"])
            settings = TaskSettings.from_dict(recorded.get("settings", {}))
        else:
            if self.task == "classification":
                regression = cfg.problem_type == "regression" or cfg.num_labels == 1
                task = get_task("regression" if regression else "classification")
            elif self.task == "token-classification":
                # CoNLL's rules (whitespace words, BIO tags) with this checkpoint's own labels.
                task = dataclasses.replace(get_task("conll2003"), name="token-classification", labels=None)
            else:
                task = get_task("squad")
            settings = TaskSettings(max_length=self.max_tokens)
        if task.kind == "regression":
            self.task = "regression"
        if task.kind in ("classification", "token"):
            names = cfg.id2label or {i: f"LABEL_{i}" for i in range(cfg.num_labels)}
            self.labels = recorded.get("labels") or [names[i] for i in sorted(names)]
        self.task_name = task.name
        self.task_spec = (task, settings)
        self.encoder = PieceEncoder(self.tokenizer)

    # ---- description ------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        from hanformer import __version__

        cfg = self.model.config
        name = self.model_dir.name
        if name in ("best", "final") and self.model_dir.parent.name:
            name = f"{self.model_dir.parent.name}/{name}"  # runs/nsmc/best -> nsmc/best
        return {
            "name": name,
            "version": __version__,
            "task": self.task,
            "task_name": self.task_name,
            "pair": bool(self.task_spec and self.task_spec[0].pair),
            "architecture": self.architecture,
            "labels": self.labels,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "vocab_size": self.tokenizer.vocab_size,
            "mask_token": self._token(self.tokenizer.mask_token_id),
            "config": cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg)),
            "limits": {"max_chars": self.config.max_chars, "max_batch": self.config.max_batch,
                       "max_tokens": self.max_tokens, "attention_max_tokens": self.config.attention_max_tokens,
                       "max_top_k": self.config.max_top_k, "max_body_bytes": self.config.max_body_bytes},
        }

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
        width = max(len(e.ids) for e in encodings)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(encodings), width), pad, dtype=torch.long)
        token_type_ids = torch.zeros((len(encodings), width), dtype=torch.long)
        attention_mask = torch.zeros((len(encodings), width), dtype=torch.long)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            input_ids[row, :n] = torch.tensor(e.ids)
            token_type_ids[row, :n] = torch.tensor(e.type_ids)
            attention_mask[row, :n] = 1
        return Batch(encodings, input_ids, token_type_ids, attention_mask)

    def _forward(self, batch: Batch) -> Any:
        with torch.inference_mode():
            return self.model(batch.input_ids, attention_mask=batch.attention_mask,
                         token_type_ids=batch.token_type_ids)

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
        from hanformer.models.embedding import EmbedConfig, embed

        config = EmbedConfig(batch_size=self.config.max_batch, max_length=self.max_tokens,
                             pooling=pooling, normalize=normalize)  # type: ignore[arg-type]
        return embed(self.model, texts, tokenizer=self.tokenizer, config=config).tolist()

    def fill_mask(self, texts: list[str], top_k: int) -> list[dict[str, Any]]:
        if self.task != "fill-mask":
            raise FieldError("texts", f"this checkpoint ({self.architecture}) has no masked-LM head; "
                                      "serve a pretrained (BertForPreTraining/BertForMaskedLM) checkpoint")
        mask_id = self.tokenizer.mask_token_id
        mask_token = self._token(mask_id)
        batch = self.batch(texts)
        for i, e in enumerate(batch.encodings):
            if mask_id not in e.ids:
                raise FieldError(f"texts[{i}]", f"texts[{i}] has no {mask_token} token; "
                                                f"put {mask_token} where a word should be predicted")
        out = self._forward(batch)
        logits = out.logits if getattr(out, "logits", None) is not None else out.prediction_logits
        results = []
        for row, (e, text) in enumerate(zip(batch.encodings, texts, strict=True)):
            masks = []
            for pos, token_id in enumerate(e.ids):
                if token_id != mask_id:
                    continue
                probs = torch.softmax(logits[row, pos].float(), dim=-1)
                scores, ids = probs.topk(min(top_k, probs.numel()))
                start, end = e.offsets[pos]
                candidates = []
                for score, cand in zip(scores.tolist(), ids.tolist(), strict=True):
                    token = self._token(cand)
                    word = token[2:] if token.startswith("##") else token
                    candidates.append({"token": token, "id": cand, "score": score,
                                       "sequence": text[:start] + word + text[end:]})
                masks.append({"position": pos, "candidates": candidates})
            results.append({"masks": masks})
        return results

    def predict(self, texts: list[str], pairs: list[str] | None = None) -> list[dict[str, Any]]:
        """The checkpoint's task head on each text (for QA: texts are questions, pairs contexts).

        The same path as `hanformer predict` and evaluation (`hanformer.tasks.inference`), so the
        app gives exactly the answers the evaluation scored: word/character units for NER, QA
        windows with a stride over long contexts, labels with probabilities.
        """
        from hanformer.tasks.examples import TextExample
        from hanformer.tasks.inference import predict_examples, prediction_record, raw_examples

        if self.task == "fill-mask":
            return self.fill_mask(texts, self.config.top_k)
        if self.task_spec is None:
            raise FieldError("texts", f"this checkpoint ({self.architecture}) has no task head; "
                                      "use /api/embeddings or /api/attention")
        if self.task == "question-answering" and pairs is None:
            raise FieldError("pairs", "a question-answering model needs a context for every question: "
                                      "send the questions as 'texts' and the contexts as 'pairs'")
        task, settings = self.task_spec
        if task.pair and pairs is None:
            raise FieldError("pairs", f"task {task.name!r} takes sentence pairs: send one 'pairs' entry per text")
        examples = raw_examples(task, [TextExample(t, None if pairs is None else pairs[i], source=f"texts[{i}]")
                                       for i, t in enumerate(texts)])
        preds = predict_examples(task, self.model, self.encoder, examples, settings, self.labels,
                                 batch_size=self.config.max_batch)
        return [prediction_record(task, e, label, detail)
                for e, label, detail in zip(examples, preds.labels, preds.details, strict=True)]

    def attention(self, text: str, pair: str | None = None, packed: bool = False) -> dict[str, Any]:
        from hanformer.visualization.attention import attention_data

        data = attention_data(self.model, self.tokenizer, text, pair,
                              max_length=min(self.config.attention_max_tokens, self.max_tokens))
        return data.to_dict(packed=packed)
