"""The one table of model architectures: config.json name -> class, checkpoint adapter, task.

`load_model`, `inspect_checkpoint`, `from_pretrained`/`save_pretrained`, fine-tuning (which head
a task puts on a checkpoint) and the web app (what a checkpoint serves) all look models up here.
Names are transformers' class names (`BertForMaskedLM`, `GPT2LMHeadModel`,
`XLMRobertaForTokenClassification`, ...); a few of ours (`GPTForCausalLM`) are accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hanformer.errors import CheckpointError
from hanformer.models.bert.checkpoint import BERT
from hanformer.models.bert.family import FAMILY_MODEL_TYPES, InFamily, family_architectures
from hanformer.models.bert.family_checkpoint import FAMILY
from hanformer.models.bert.heads import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from hanformer.models.bert.model import BertModel, BertPreTrainedModel
from hanformer.models.encoder_decoder.checkpoint import MARIAN
from hanformer.models.encoder_decoder.config import MODEL_TYPE as ENCODER_DECODER
from hanformer.models.encoder_decoder.model import (
    TransformerForSeq2SeqLM,
    TransformerModel,
    TransformerPreTrainedModel,
)
from hanformer.models.gpt.checkpoint import GPT
from hanformer.models.gpt.model import GPTForCausalLM, GPTModel, GPTPreTrainedModel
from hanformer.models.hub import CheckpointAdapter
from hanformer.models.seq2seq.checkpoint import RNN_SEQ2SEQ, RNNSeq2SeqLoader
from hanformer.models.seq2seq.config import ARCHITECTURE as RNN_ARCHITECTURE
from hanformer.models.seq2seq.config import MODEL_TYPE as RNN_SEQ2SEQ_TYPE
from hanformer.models.seq2seq.model import RNNForSeq2SeqLM

# What `hanformer serve` offers for a model; "none" where it has nothing to serve (GPTModel).
CLASSIFICATION, TOKENS, QA, FILL_MASK = "classification", "token-classification", "question-answering", "fill-mask"
EMBEDDINGS, GENERATION, TRANSLATION = "embeddings", "text-generation", "translation"


@dataclass(frozen=True)
class ModelSpec:
    """One architecture: its class, the adapter for its checkpoints, its config.json model_type
    and the task it serves. `loader` is the class whose `from_pretrained` `load_model` calls,
    where the model class's own does not take its arguments (RNNForSeq2SeqLM's)."""

    model_class: type[Any]
    adapter: CheckpointAdapter
    model_type: str
    task: str
    loader: type[Any] | None = None


_BERT_TASKS: dict[type[BertPreTrainedModel], str] = {
    BertModel: EMBEDDINGS, BertForPreTraining: FILL_MASK, BertForMaskedLM: FILL_MASK,
    BertForSequenceClassification: CLASSIFICATION, BertForTokenClassification: TOKENS,
    BertForQuestionAnswering: QA,
}


def _family_task(cls: type[Any]) -> str:
    """A family class serves what the BERT class it stands in for serves (the RTD detector and
    the bare encoder serve embeddings)."""
    return next((task for bert_class, task in _BERT_TASKS.items()
                 if bert_class is not BertModel and issubclass(cls, bert_class)), EMBEDDINGS)


MODELS: dict[str, ModelSpec] = {
    **{cls.__name__: ModelSpec(cls, BERT, "bert", task) for cls, task in _BERT_TASKS.items()},
    "GPT2LMHeadModel": ModelSpec(GPTForCausalLM, GPT, "gpt2", GENERATION),
    "GPTForCausalLM": ModelSpec(GPTForCausalLM, GPT, "gpt2", GENERATION),
    "GPT2Model": ModelSpec(GPTModel, GPT, "gpt2", "none"),
    "GPTModel": ModelSpec(GPTModel, GPT, "gpt2", "none"),
    "MarianMTModel": ModelSpec(TransformerForSeq2SeqLM, MARIAN, ENCODER_DECODER, TRANSLATION),
    "TransformerForSeq2SeqLM": ModelSpec(TransformerForSeq2SeqLM, MARIAN, ENCODER_DECODER, TRANSLATION),
    "MarianModel": ModelSpec(TransformerModel, MARIAN, ENCODER_DECODER, "none"),
    "TransformerModel": ModelSpec(TransformerModel, MARIAN, ENCODER_DECODER, "none"),
    RNN_ARCHITECTURE: ModelSpec(RNNForSeq2SeqLM, RNN_SEQ2SEQ, RNN_SEQ2SEQ_TYPE, TRANSLATION, RNNSeq2SeqLoader),
    **{name: ModelSpec(cls, FAMILY, family, _family_task(cls))
       for family in FAMILY_MODEL_TYPES for name, cls in family_architectures(family).items()},
}

# The base class of each family's models -> its adapter (most specific first: the RoBERTa /
# ELECTRA classes subclass BERT's).
_ADAPTER_OF_BASE: tuple[tuple[type, CheckpointAdapter], ...] = (
    (InFamily, FAMILY), (GPTPreTrainedModel, GPT), (TransformerPreTrainedModel, MARIAN),
    (RNNForSeq2SeqLM, RNN_SEQ2SEQ), (BertPreTrainedModel, BERT))
# The model_types whose checkpoints only their own architectures read (the encoder families
# read each other's and BERT's).
_OWN_ADAPTERS: dict[str, CheckpointAdapter] = {"gpt2": GPT, ENCODER_DECODER: MARIAN, RNN_SEQ2SEQ_TYPE: RNN_SEQ2SEQ}


def architectures(model_type: str) -> dict[str, type[Any]]:
    """Name -> class of the architectures of one model_type ("bert", "gpt2", "roberta", ...)."""
    return {name: spec.model_class for name, spec in MODELS.items() if spec.model_type == model_type}


def adapter_for_checkpoint(model_type: str | None) -> CheckpointAdapter:
    """The adapter that reads a checkpoint with this config.json model_type (BERT's by default)."""
    if model_type in _OWN_ADAPTERS:
        return _OWN_ADAPTERS[model_type]
    return FAMILY if model_type in FAMILY_MODEL_TYPES else BERT


def adapter_for_class(cls: type[Any], model_type: str | None = None) -> CheckpointAdapter:
    """The adapter that loads a checkpoint of `model_type` into `cls` (or saves a `cls` model).

    A BERT class reads RoBERTa / XLM-R / ELECTRA checkpoints as the family's class in its place.
    """
    adapter = next(adapter for base, adapter in _ADAPTER_OF_BASE if issubclass(cls, base))
    return FAMILY if adapter is BERT and model_type in FAMILY_MODEL_TYPES else adapter


def architecture_class(name: str, model_type: str | None, source: str) -> type[Any]:
    """The class to load a checkpoint of `model_type` as, by architecture `name`. The families
    take each other's names and BERT's ("BertModel" means the family's equivalent): loading puts
    the checkpoint's own family class in its place."""
    family = model_type if model_type in FAMILY_MODEL_TYPES else None
    own = family or (model_type if model_type in _OWN_ADAPTERS else "bert")
    accepted = (*FAMILY_MODEL_TYPES, "bert") if family else (own,)
    spec = MODELS.get(name)
    if spec is not None and spec.model_type in accepted:
        return spec.loader or spec.model_class
    for_type = f" for model_type {family!r}" if family else ""
    raise CheckpointError(f"{source}: architecture {name!r} is not supported{for_type}; "
                          f"choose one of {', '.join(architectures(own))}")


def task_class(task: str, model_type: str | None) -> type[Any]:
    """The class that puts a `task` head (CLASSIFICATION, TOKENS, QA) on a checkpoint of
    `model_type`: the family's own for RoBERTa / XLM-R / ELECTRA, else BERT's."""
    family = model_type if model_type in FAMILY_MODEL_TYPES else "bert"
    return next(spec.model_class for spec in MODELS.values() if spec.model_type == family and spec.task == task)


def task_of(cls: type[Any]) -> str:
    """What a model of class `cls` serves: that of the nearest class in its MRO the table lists
    (a subclass of a head serves what the head serves), else EMBEDDINGS."""
    tasks = {spec.model_class: spec.task for spec in MODELS.values()}
    return next((tasks[c] for c in cls.__mro__ if c in tasks), EMBEDDINGS)


def serves_translation(model_type: str | None) -> bool:
    """Whether checkpoints of this config.json model_type are translation models (the
    encoder-decoders), known before loading one."""
    return any(spec.task == TRANSLATION and spec.model_type == model_type for spec in MODELS.values())


def classes_read_by(adapter: CheckpointAdapter) -> dict[str, type[Any]]:
    """Name -> class of every architecture whose checkpoints `adapter` reads."""
    return {name: spec.model_class for name, spec in MODELS.items() if spec.adapter is adapter}
