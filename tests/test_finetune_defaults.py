"""Fine-tuning defaults: a sentence-transformers checkpoint is classified through its own pooling."""

import json

import pytest

from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.model import BertModel
from hanformer.tasks.model_io import load_task_model, sentence_transformers_pooling
from hanformer.tasks.registry import get_task

TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=32)


def _encoder_dir(tmp_path, *, st_pooling: dict | None, keep_pooling_key: bool = False):
    """A 1-layer encoder saved as a Hugging Face folder; with `st_pooling`, laid out as a
    sentence-transformers model (modules.json + 1_Pooling/config.json), its config.json without
    `classifier_pooling` as such models ship it."""
    d = tmp_path / "encoder"
    BertModel(BertConfig(**TINY)).save_pretrained(d)
    config = json.loads((d / "config.json").read_text())
    if not keep_pooling_key:
        config.pop("classifier_pooling", None)
    (d / "config.json").write_text(json.dumps(config))
    if st_pooling is not None:
        (d / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
        (d / "1_Pooling").mkdir()
        (d / "1_Pooling" / "config.json").write_text(json.dumps(st_pooling))
    return d


MEAN = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}
CLS = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}


@pytest.mark.parametrize("modes, expected", [(MEAN, "mean"), (CLS, "cls"), (None, None),
                                             ({"pooling_mode_max_tokens": True}, None),
                                             ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}, None)])
def test_sentence_transformers_pooling_read_from_the_folder(tmp_path, modes, expected):
    assert sentence_transformers_pooling(_encoder_dir(tmp_path, st_pooling=modes)) == expected


def test_unreadable_pooling_config_is_no_opinion(tmp_path):
    d = _encoder_dir(tmp_path, st_pooling=MEAN)
    (d / "1_Pooling" / "config.json").write_text("{not json")
    assert sentence_transformers_pooling(d) is None


def test_sentence_transformers_mean_model_classifies_through_the_mean(tmp_path):
    sst2 = get_task("sst2")
    d = _encoder_dir(tmp_path, st_pooling=MEAN)
    assert load_task_model(sst2, d, ["0", "1"]).config.classifier_pooling == "mean"
    # an explicit choice still wins
    assert load_task_model(sst2, d, ["0", "1"], pooling="cls").config.classifier_pooling == "cls"


def test_plain_checkpoint_keeps_cls(tmp_path):
    d = _encoder_dir(tmp_path, st_pooling=None)
    assert load_task_model(get_task("sst2"), d, ["0", "1"]).config.classifier_pooling == "cls"


def test_checkpoint_own_pooling_beats_the_sentence_transformers_file(tmp_path):
    # config.json's classifier_pooling is the checkpoint's own choice (e.g. a model fine-tuned here)
    d = _encoder_dir(tmp_path, st_pooling=MEAN, keep_pooling_key=True)
    assert json.loads((d / "config.json").read_text())["classifier_pooling"] == "cls"
    assert load_task_model(get_task("sst2"), d, ["0", "1"]).config.classifier_pooling == "cls"
