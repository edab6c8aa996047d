"""RoBERTa and XLM-RoBERTa against transformers on random weights: every head both ways
(transformers' file -> ours, ours -> transformers with no missing or unexpected keys), plus the
family's differences (positions from pad_token_id + 1, one segment type, the dense classifier)."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

from _hf_families import VOCAB, assert_same_outputs, batch, save_random  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.errors import CheckpointError, InputError  # noqa: E402
from hanformer.models.bert.heads import BertForPreTraining, BertForSequenceClassification  # noqa: E402
from hanformer.models.checkpoint import inspect_checkpoint, load_model  # noqa: E402
from hanformer.tasks.model_io import load_task_model  # noqa: E402
from hanformer.tasks.registry import get_task  # noqa: E402

PAD = 1
MAX_POSITIONS = 40  # 38 tokens: RoBERTa reserves positions 0 and 1 (pad_token_id + 1)
SUFFIXES = ["Model", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering", "ForMaskedLM"]
NAMES = [prefix + suffix for prefix in ("Roberta", "XLMRoberta") for suffix in SUFFIXES]


def _config(name: str):
    config_class = transformers.XLMRobertaConfig if name.startswith("XLM") else transformers.RobertaConfig
    return config_class(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=MAX_POSITIONS, type_vocab_size=1,
                        pad_token_id=PAD, layer_norm_eps=1e-5)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """name -> (transformers model, the folder it saved itself to)."""
    out = {}
    for name in NAMES:
        directory = tmp_path_factory.mktemp(name)
        out[name] = (save_random(transformers, name, _config(name), directory), directory)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_transformers_checkpoint_loads_with_the_same_outputs(checkpoints, name):
    reference, directory = checkpoints[name]
    ours = load_model(directory)
    inputs = batch(PAD)
    with torch.no_grad():
        assert_same_outputs(reference(**inputs), ours(**inputs), name, inputs["attention_mask"])
        (ours.bert if hasattr(ours, "bert") else ours).unpad = False  # the padded grid computes the same
        assert_same_outputs(reference(**inputs), ours(**inputs), name, inputs["attention_mask"])


@pytest.mark.parametrize("name", NAMES)
def test_our_checkpoint_loads_into_transformers_without_missing_keys(checkpoints, name, tmp_path):
    reference, directory = checkpoints[name]
    load_model(directory).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [name]
    assert config["model_type"] == ("xlm-roberta" if name.startswith("XLM") else "roberta")
    back, info = getattr(transformers, name).from_pretrained(tmp_path, output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}
    inputs = batch(PAD, seed=1)
    with torch.no_grad():
        assert_same_outputs(reference(**inputs), back.eval()(**inputs), name, inputs["attention_mask"])


def test_losses_match_transformers(checkpoints):
    inputs = batch(PAD)
    labels = torch.tensor([0, 2, 1, 2])
    reference, directory = checkpoints["RobertaForSequenceClassification"]
    with torch.no_grad():
        assert load_model(directory)(**inputs, labels=labels).loss.item() == pytest.approx(
            reference(**inputs, labels=labels).loss.item(), abs=1e-6)
    reference, directory = checkpoints["RobertaForMaskedLM"]
    masked = torch.full_like(inputs["input_ids"], -100)
    masked[0, 3], masked[2, 7] = 5, 9
    with torch.no_grad():
        assert load_model(directory)(**inputs, labels=masked).loss.item() == pytest.approx(
            reference(**inputs, labels=masked).loss.item(), abs=1e-6)


def test_positions_hold_max_positions_minus_the_reserved_two(checkpoints):
    reference, directory = checkpoints["RobertaModel"]
    ours = load_model(directory)
    longest = torch.randint(3, VOCAB, (1, MAX_POSITIONS - PAD - 1))
    with torch.no_grad():
        assert (ours(longest).last_hidden_state - reference(longest).last_hidden_state).abs().max() <= 1e-5
        with pytest.raises(InputError, match=r"limit of 38 tokens \(max_position_embeddings 40 minus the 2"):
            ours(torch.randint(3, VOCAB, (1, MAX_POSITIONS - 1)))


def test_one_segment_type_reads_every_token_as_segment_zero(checkpoints):
    """klue/roberta's BERT tokenizer marks a second text with type 1; the model has one type."""
    _, directory = checkpoints["RobertaForSequenceClassification"]
    ours = load_model(directory)
    inputs = batch(PAD)
    with torch.no_grad():
        plain = ours(**inputs).logits
        marked = ours(**inputs, token_type_ids=(torch.arange(17) > 3).long().expand(4, 17)).logits
    assert torch.equal(plain, marked)


def test_bert_classes_load_the_family_head_and_refuse_what_roberta_lacks(checkpoints, caplog):
    _, directory = checkpoints["XLMRobertaForMaskedLM"]
    with caplog.at_level(logging.WARNING, logger="hanformer.models"):
        model = BertForSequenceClassification.from_pretrained(directory, num_labels=4)
    assert isinstance(model, BertForSequenceClassification) and model.classifier.out_proj.out_features == 4
    assert "classifier.dense.weight" in caplog.text  # a fresh head, named as transformers names it
    model.save_pretrained(directory.parent / "as-classifier")
    saved = json.loads((directory.parent / "as-classifier" / "config.json").read_text())
    assert saved["architectures"] == ["XLMRobertaForSequenceClassification"]
    with pytest.raises(CheckpointError, match="does not load as BertForPreTraining"):
        BertForPreTraining.from_pretrained(directory)


def test_inspect_names_family_heads_and_counts_parameters(checkpoints):
    _, directory = checkpoints["RobertaForSequenceClassification"]
    info = inspect_checkpoint(directory)
    assert info["architectures"] == ["RobertaForSequenceClassification"] and info["model_type"] == "roberta"
    assert info["heads"] == ["classifier (3 outputs)"]
    assert info["parameters"] == load_model(directory).num_parameters()


def test_config_that_does_not_match_the_weights_is_a_one_line_cli_error(checkpoints, tmp_path, capsys):
    _, directory = checkpoints["RobertaModel"]
    broken = tmp_path / "broken"
    shutil.copytree(directory, broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    assert main(["inspect", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hanformer: error: ") and err.count("\n") == 1
    assert "config.json: num_hidden_layers = 3 but the weights hold 2 layers" in err


def test_a_classifier_of_other_labels_is_refused_or_replaced_on_request(checkpoints):
    _, directory = checkpoints["XLMRobertaForSequenceClassification"]  # 3 outputs
    with pytest.raises(CheckpointError, match=r"3-label head .*--reinit-head"):
        load_task_model(get_task("nsmc"), directory, ["0", "1"])
    model = load_task_model(get_task("nsmc"), directory, ["0", "1"], reinit_head=True)
    assert model.classifier.out_proj.out_features == 2 and model.config.family == "xlm-roberta"
    encoder = load_model(directory).bert
    assert all(torch.equal(a, b) for a, b in zip(model.bert.state_dict().values(),
                                                 encoder.state_dict().values(), strict=True))


@pytest.mark.parametrize("name", ["RobertaModel", "XLMRobertaModel"])
def test_parameter_count_formula_equals_the_built_model(checkpoints, name):
    model = load_model(checkpoints[name][1])
    assert model.config.parameter_count() == model.num_parameters()
