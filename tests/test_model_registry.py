"""The one architecture table: every class is found by its name, task and checkpoint family."""

from __future__ import annotations

import pytest

from hanformer.errors import CheckpointError
from hanformer.models.bert.checkpoint import BERT
from hanformer.models.bert.family_checkpoint import FAMILY
from hanformer.models.bert.heads import BertForSequenceClassification, BertForTokenClassification
from hanformer.models.gpt.checkpoint import GPT
from hanformer.models.gpt.model import GPTForCausalLM, GPTModel
from hanformer.models.registry import (
    MODELS,
    adapter_for_class,
    architecture_class,
    task_class,
    task_of,
)


def test_each_class_is_read_and_written_by_its_familys_adapter():
    for name, spec in MODELS.items():
        assert adapter_for_class(spec.model_class) is spec.adapter, name
    # a BERT head reads a RoBERTa checkpoint through the families' adapter, a GPT never does
    assert adapter_for_class(BertForTokenClassification, "roberta") is FAMILY
    assert adapter_for_class(BertForTokenClassification, "bert") is BERT
    assert adapter_for_class(GPTForCausalLM, "roberta") is GPT


def test_task_heads_and_served_tasks_come_from_the_table():
    roberta_tokens = task_class("token-classification", "xlm-roberta")
    assert roberta_tokens is MODELS["XLMRobertaForTokenClassification"].model_class
    assert issubclass(roberta_tokens, BertForTokenClassification)
    assert task_class("classification", None) is BertForSequenceClassification
    assert task_of(roberta_tokens) == "token-classification"
    assert task_of(MODELS["ElectraForPreTraining"].model_class) == "embeddings"
    assert task_of(MODELS["RobertaForMaskedLM"].model_class) == "fill-mask"
    assert task_of(GPTForCausalLM) == "text-generation"


def test_architecture_names_are_checked_against_the_checkpoints_family():
    assert architecture_class("GPT2Model", "gpt2", "d") is GPTModel
    assert architecture_class("BertModel", "electra", "d") is MODELS["BertModel"].model_class  # swapped on load
    with pytest.raises(CheckpointError, match=r"d: architecture 'GPT2Model' is not supported; choose one of BertModel"):
        architecture_class("GPT2Model", "bert", "d")
    with pytest.raises(CheckpointError, match=r"not supported for model_type 'roberta'; choose one of RobertaModel"):
        architecture_class("GPT2LMHeadModel", "roberta", "d")
