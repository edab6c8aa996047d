"""ELECTRA discriminators against transformers on random weights, with embeddings narrower than
the encoder (`embeddings_project`): every head both ways, the detection loss, and a
discriminator checkpoint (as koelectra ships) fine-tuned under another head."""

from __future__ import annotations

import json
import logging

import pytest
import torch

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

from _hf_families import VOCAB, assert_same_outputs, batch, save_random  # noqa: E402
from hanformer.errors import CheckpointError  # noqa: E402
from hanformer.models.bert.heads import BertForSequenceClassification, BertModel  # noqa: E402
from hanformer.models.checkpoint import inspect_checkpoint, load_model  # noqa: E402

PAD = 0
NAMES = ["ElectraModel", "ElectraForSequenceClassification", "ElectraForTokenClassification",
         "ElectraForQuestionAnswering", "ElectraForPreTraining"]


def _config(embedding_size: int = 16):
    return transformers.ElectraConfig(vocab_size=VOCAB, embedding_size=embedding_size, hidden_size=32,
                                      num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                      max_position_embeddings=40, pad_token_id=PAD)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    out = {}
    for name in NAMES:
        directory = tmp_path_factory.mktemp(name)
        out[name] = (save_random(transformers, name, _config(), directory), directory)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_transformers_checkpoint_loads_with_the_same_outputs(checkpoints, name):
    reference, directory = checkpoints[name]
    ours = load_model(directory)
    inputs = {**batch(PAD), "token_type_ids": (torch.arange(17) > 6).long().expand(4, 17)}
    with torch.no_grad():
        assert_same_outputs(reference(**inputs), ours(**inputs), name, inputs["attention_mask"])


@pytest.mark.parametrize("name", NAMES)
def test_our_checkpoint_loads_into_transformers_without_missing_keys(checkpoints, name, tmp_path):
    reference, directory = checkpoints[name]
    load_model(directory).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [name] and config["embedding_size"] == 16
    back, info = getattr(transformers, name).from_pretrained(tmp_path, output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}
    inputs = batch(PAD, seed=1)
    with torch.no_grad():
        assert_same_outputs(reference(**inputs), back.eval()(**inputs), name, inputs["attention_mask"])


def test_without_projection_when_embeddings_are_as_wide_as_the_encoder(tmp_path):
    reference = save_random(transformers, "ElectraModel", _config(embedding_size=32), tmp_path)
    ours = load_model(tmp_path)
    assert ours.embeddings.project is None
    inputs = batch(PAD)
    with torch.no_grad():
        assert_same_outputs(reference(**inputs), ours(**inputs), "ElectraModel", inputs["attention_mask"])


def test_replaced_token_detection_loss_matches_transformers(checkpoints):
    reference, directory = checkpoints["ElectraForPreTraining"]
    inputs = batch(PAD)
    labels = (torch.arange(17) % 3 == 0).long().expand(4, 17)
    with torch.no_grad():
        assert load_model(directory)(**inputs, labels=labels).loss.item() == pytest.approx(
            reference(**inputs, labels=labels).loss.item(), abs=1e-6)


def test_discriminator_checkpoint_fine_tunes_under_a_classifier(checkpoints, caplog):
    """A released discriminator is an ElectraForPreTraining: its detection head is dropped, the
    classifier starts fresh, and the encoder is the same."""
    reference, directory = checkpoints["ElectraForPreTraining"]
    with caplog.at_level(logging.INFO, logger="hanformer.models"):
        model = BertForSequenceClassification.from_pretrained(directory, num_labels=2)
    assert "discriminator_predictions.dense.weight" in caplog.text  # dropped, named as transformers names it
    assert "classifier.out_proj.weight" in caplog.text  # newly initialised
    inputs = batch(PAD)
    with torch.no_grad():
        want = reference.electra(**inputs).last_hidden_state
        got = model.bert(**inputs).last_hidden_state
    mask = inputs["attention_mask"].bool()
    assert (want[mask] - got[mask]).abs().max().item() <= 1e-5
    assert isinstance(BertModel.from_pretrained(directory), BertModel)


def test_inspect_reports_the_projection_and_the_detection_head(checkpoints):
    _, directory = checkpoints["ElectraForPreTraining"]
    info = inspect_checkpoint(directory)
    assert info["model_type"] == "electra" and info["embedding_size"] == 16 and info["hidden_size"] == 32
    assert info["heads"] == ["replaced-token detection"]
    assert info["parameters"] == load_model(directory).num_parameters()


def test_parameter_count_formula_equals_the_built_encoder(checkpoints):
    model = load_model(checkpoints["ElectraModel"][1])
    assert model.config.parameter_count() == model.num_parameters()


def test_a_generator_checkpoint_is_refused_with_the_classes_that_load(tmp_path):
    save_random(transformers, "ElectraForMaskedLM", _config(), tmp_path)
    with pytest.raises(CheckpointError, match=r"'ElectraForMaskedLM' is not supported for model_type 'electra'; "
                                              r"choose one of ElectraModel, .*ElectraForPreTraining"):
        load_model(tmp_path)
