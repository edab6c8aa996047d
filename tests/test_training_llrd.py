"""Layer-wise learning-rate decay: per-depth param groups with their own rates, kept by the schedule."""

import pytest
import torch

from hanformer.errors import ConfigError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import BertForSequenceClassification
from hanformer.training.config import TrainerConfig
from hanformer.training.optim import build_optimizer, layer_depths, param_groups
from hanformer.training.schedule import Schedule, lr_factor


def _tiny_classifier() -> BertForSequenceClassification:
    # 2 layers, hidden 128, a 100-piece vocabulary: built in milliseconds
    return BertForSequenceClassification(BertConfig.preset("tiny", vocab_size=100, num_labels=2))


def _rate_of(groups: list[dict], param: torch.nn.Parameter) -> float:
    return next(g["lr"] for g in groups if any(p is param for p in g["params"]))


def test_layer_depths_by_parameter_name():
    depths = layer_depths(["bert.embeddings.word_embeddings.weight", "bert.layers.0.ffn.up.weight",
                           "bert.layers.1.attention.qkv.bias", "bert.pooler.dense.weight", "classifier.bias"])
    assert depths == {"bert.embeddings.word_embeddings.weight": 3, "bert.layers.0.ffn.up.weight": 2,
                      "bert.layers.1.attention.qkv.bias": 1, "bert.pooler.dense.weight": 0,
                      "classifier.bias": 0}


def test_param_group_rates_decay_with_depth():
    model = _tiny_classifier()
    cfg = TrainerConfig(lr=1e-3, layer_lr_decay=0.5, weight_decay=0.01)
    optimizer = build_optimizer(model, cfg)
    groups = optimizer.param_groups
    bert = model.bert
    assert _rate_of(groups, model.classifier.weight) == pytest.approx(1e-3)
    assert _rate_of(groups, bert.pooler.dense.weight) == pytest.approx(1e-3)
    assert _rate_of(groups, bert.layers[1].ffn.up.weight) == pytest.approx(5e-4)
    assert _rate_of(groups, bert.layers[0].ffn.up.weight) == pytest.approx(2.5e-4)
    assert _rate_of(groups, bert.layers[0].ffn_norm.bias) == pytest.approx(2.5e-4)
    assert _rate_of(groups, bert.embeddings.word_embeddings.weight) == pytest.approx(1.25e-4)
    # weight decay still skips biases and norms at every depth
    for g in groups:
        assert g["weight_decay"] == (0.01 if all(p.ndim >= 2 for p in g["params"]) else 0.0)
    # every trainable parameter in exactly one group
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    # the first group trains at the full rate: the rate the trainer logs is the peak
    assert groups[0]["lr"] == pytest.approx(1e-3)


def test_schedule_scales_each_group_from_its_own_rate():
    model = _tiny_classifier()
    optimizer = build_optimizer(model, TrainerConfig(lr=1e-3, layer_lr_decay=0.5))
    schedule = Schedule(optimizer, "linear", warmup_steps=10)
    schedule.set(4, 0.0)  # in the warmup
    f = lr_factor(4, 0.0, 10, "linear", 0.0, 0.0)
    assert 0.0 < f < 1.0
    assert _rate_of(optimizer.param_groups, model.classifier.weight) == pytest.approx(1e-3 * f)
    assert _rate_of(optimizer.param_groups, model.bert.embeddings.word_embeddings.weight) == pytest.approx(1.25e-4 * f)
    assert schedule.last_lr == pytest.approx(1e-3 * f)  # what the trainer logs: the peak group's rate


def test_no_decay_keeps_the_two_plain_groups():
    model = _tiny_classifier()
    groups = param_groups(model, 0.01, 1e-3, layer_lr_decay=1.0)
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert all("lr" not in g for g in groups)  # the optimizer's own lr applies


@pytest.mark.parametrize("value", [0.0, 1.5, float("nan")])
def test_layer_lr_decay_out_of_range_names_the_flag(value):
    with pytest.raises(ConfigError, match=r"layer_lr_decay \(--layer-lr-decay\)"):
        TrainerConfig(layer_lr_decay=value).validate()
