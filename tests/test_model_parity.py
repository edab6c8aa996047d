"""Numerical parity with transformers: every head, random weights, padded batches, pairs; real MiniLM."""

from __future__ import annotations

import logging

import pytest
import torch

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

from hanformer.embedding.encode import encode_batch, load_tokenizer, pool  # noqa: E402
from hanformer.models.bert.config import BertConfig  # noqa: E402
from hanformer.models.bert.model import BertModel  # noqa: E402
from hanformer.models.registry import architectures  # noqa: E402

ARCHITECTURES = architectures("bert")

TOL = 1e-5
VOCAB = 97

# Fields each architecture returns that must match transformers'.
FIELDS = {
    "BertModel": ("last_hidden_state", "pooler_output"),
    "BertForPreTraining": ("prediction_logits", "seq_relationship_logits"),
    "BertForMaskedLM": ("logits",),
    "BertForSequenceClassification": ("logits",),
    "BertForTokenClassification": ("logits",),
    "BertForQuestionAnswering": ("start_logits", "end_logits"),
}


def _config(**overrides) -> BertConfig:
    values = dict(vocab_size=VOCAB, num_hidden_layers=2, num_labels=3, max_position_embeddings=64)
    return BertConfig.preset("tiny", **{**values, **overrides})


def _batch(pairs: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """Mixed lengths, right padding; pairs have token type 1 on the second segment."""
    g = torch.Generator().manual_seed(seed)
    lengths = [17, 5, 11, 2]
    ids = torch.randint(1, VOCAB, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
        ids[row, n:] = 0
        if pairs:
            types[row, n // 2:n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _hf_class(name: str):
    return getattr(transformers, name)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """One random-weight model per architecture, saved by us."""
    torch.manual_seed(0)
    out = {}
    for name, cls in ARCHITECTURES.items():
        model = cls(_config()).eval()
        # Non-trivial LayerNorm and bias values so a mapping mistake cannot hide behind init values.
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        directory = tmp_path_factory.mktemp(name)
        model.save_pretrained(directory)
        out[name] = (model, directory)
    return out


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_saved_checkpoint_loads_into_transformers_without_missing_or_unexpected_keys(saved_models, name):
    _, directory = saved_models[name]
    _, info = _hf_class(name).from_pretrained(directory, output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}


@pytest.mark.parametrize("pairs", [False, True], ids=["single", "pairs"])
@pytest.mark.parametrize("unpad", [True, False], ids=["unpadded", "padded"])
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_head_matches_transformers(saved_models, name, pairs, unpad):
    ours, directory = saved_models[name]
    ref = _hf_class(name).from_pretrained(directory, attn_implementation="sdpa").eval()
    batch = _batch(pairs)
    encoder = ours if isinstance(ours, BertModel) else ours.bert
    encoder.unpad = unpad
    try:
        with torch.no_grad():
            a, b = ours(**batch), ref(**batch)
    finally:
        encoder.unpad = True
    real = batch["attention_mask"].bool()
    for field in FIELDS[name]:
        x, y = getattr(a, field), getattr(b, field)
        assert x.shape == y.shape, field
        if unpad and x.dim() >= 2 and x.shape[:2] == real.shape:
            # Unpadded runs skip padding positions entirely; compare the real tokens.
            x, y = x[real], y[real]
        assert (x - y).abs().max().item() <= TOL, field


def test_losses_match_transformers(saved_models):
    batch = _batch(pairs=True)
    g = torch.Generator().manual_seed(1)
    real = batch["attention_mask"].bool()
    mlm_labels = torch.where(real & (torch.rand(real.shape, generator=g) < 0.3),
                             torch.randint(0, VOCAB, real.shape, generator=g), torch.tensor(-100))
    mlm_labels[0, 1] = 7  # at least one masked position
    token_labels = torch.where(real, torch.randint(0, 3, real.shape, generator=g), torch.tensor(-100))
    cases = {
        "BertForPreTraining": dict(labels=mlm_labels, next_sentence_label=torch.tensor([0, 1, 1, 0])),
        "BertForMaskedLM": dict(labels=mlm_labels),
        "BertForSequenceClassification": dict(labels=torch.tensor([0, 2, 1, 1])),
        "BertForTokenClassification": dict(labels=token_labels),
        "BertForQuestionAnswering": dict(start_positions=torch.tensor([1, 0, 3, 40]),
                                         end_positions=torch.tensor([2, 0, 5, 41])),
    }
    for name, labels in cases.items():
        ours, directory = saved_models[name]
        ref = _hf_class(name).from_pretrained(directory).eval()
        inputs = batch
        if name == "BertForQuestionAnswering":
            # Our span loss leaves padding out of the softmax (transformers includes it), so
            # compare where there is none.
            inputs = {k: v[:1] for k, v in batch.items()}
            labels = {k: v[:1] for k, v in labels.items()}
        with torch.no_grad():
            a, b = ours(**inputs, **labels), ref(**inputs, **labels)
        assert abs(a.loss.item() - b.loss.item()) <= TOL, name


@pytest.mark.parametrize("num_labels,labels", [
    (1, torch.tensor([0.5, -1.0, 2.0, 0.0])),                    # regression
    (3, torch.tensor([[1.0, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1]])),  # multi-label
])
def test_sequence_classification_problem_types_match_transformers(tmp_path, num_labels, labels):
    cls = ARCHITECTURES["BertForSequenceClassification"]
    torch.manual_seed(3)
    ours = cls(_config(num_labels=num_labels)).eval()
    ours.save_pretrained(tmp_path)
    ref = transformers.BertForSequenceClassification.from_pretrained(tmp_path).eval()
    batch = _batch(pairs=False)
    with torch.no_grad():
        a, b = ours(**batch, labels=labels), ref(**batch, labels=labels)
    assert a.logits.shape == b.logits.shape == (4, num_labels)
    assert abs(a.loss.item() - b.loss.item()) <= TOL


def test_transformers_checkpoint_loads_into_ours(tmp_path):
    """The other direction: transformers saves, we load and agree."""
    torch.manual_seed(1)
    hf_config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=128, max_position_embeddings=64)
    ref = transformers.BertForPreTraining(hf_config).eval()
    ref.save_pretrained(tmp_path)
    ours = ARCHITECTURES["BertForPreTraining"].from_pretrained(tmp_path)
    batch = _batch(pairs=True)
    with torch.no_grad():
        a, b = ours(**batch), ref(**batch)
    real = batch["attention_mask"].bool()
    assert (a.prediction_logits[real] - b.prediction_logits[real]).abs().max() <= TOL
    assert (a.seq_relationship_logits - b.seq_relationship_logits).abs().max() <= TOL


def test_attentions_and_hidden_states_match_transformers_eager(saved_models):
    ours, directory = saved_models["BertModel"]
    ref = transformers.BertModel.from_pretrained(directory, attn_implementation="eager").eval()
    batch = _batch(pairs=True)
    with torch.no_grad():
        a = ours(**batch, output_attentions=True, output_hidden_states=True)
        b = ref(**batch, output_attentions=True, output_hidden_states=True)
    real = batch["attention_mask"].bool()
    assert len(a.attentions) == len(b.attentions) == 2
    assert len(a.hidden_states) == len(b.hidden_states) == 3
    for x, y in zip(a.attentions, b.attentions, strict=True):
        assert x.shape == y.shape == (4, 2, 17, 17)
        # Rows of real query tokens (padding queries attend to nothing meaningful).
        q = real[:, None, :, None].expand_as(x)
        assert (x - y).abs()[q].max() <= TOL
        assert torch.allclose(x.sum(-1)[real[:, None, :].expand(-1, 2, -1)], torch.tensor(1.0))
    for x, y in zip(a.hidden_states, b.hidden_states, strict=True):
        assert (x[real] - y[real]).abs().max() <= TOL


def test_real_minilm_hidden_states_and_embeddings_match_transformers(minilm_dir):
    from hanformer.embedding.encode import embed

    texts = ["A man is eating food.", "A man is eating a piece of bread.",
             "The girl is carrying a baby.", "서울은 한국의 수도이다.", "Hi"]
    ours = BertModel.from_pretrained(minilm_dir)
    ref = transformers.BertModel.from_pretrained(minilm_dir).eval()
    tokenizer = load_tokenizer(minilm_dir)
    batch = encode_batch(tokenizer, texts, 128)
    assert not bool(batch["attention_mask"].all())  # really padded
    with torch.no_grad():
        a = ours(**batch).last_hidden_state
        b = ref(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert (a[real] - b[real]).abs().max().item() <= TOL
    ref_embeddings = pool(b, batch["attention_mask"])
    ours_embeddings = embed(minilm_dir, texts)
    assert (ours_embeddings - ref_embeddings).abs().max().item() <= TOL
    assert torch.allclose(ours_embeddings.norm(dim=-1), torch.ones(len(texts)), atol=1e-6)


def test_no_warnings_loading_minilm(minilm_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="hanformer"):
        BertModel.from_pretrained(minilm_dir)
    assert caplog.records == []
