"""ELECTRA replaced-token detection: the model's loss, the `rtd` objective end to end, resume,
and the exported discriminator fine-tuning as a plain BERT."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _pretrain_corpus import make_shards  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.models.bert.config import BertConfig  # noqa: E402
from hanformer.models.bert.electra import ElectraForPreTraining  # noqa: E402
from hanformer.training.progress import read_metrics  # noqa: E402

TINY = ["--model", "tiny", "--model-config", "hidden_size=32,num_attention_heads=2,intermediate_size=64",
        "--seq-len", "64", "--batch-size", "8", "--no-progress", "--no-tensorboard", "--peak-tflops", "1",
        "--lr", "0.002", "--warmup-steps", "2", "--log-every", "1", "--eval-batches", "3",
        "--objective", "rtd"]


def _model() -> ElectraForPreTraining:
    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=50, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return ElectraForPreTraining(config, generator_layers=1, rtd_weight=50.0)


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 50, (3, 12), generator=g)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    labels = torch.full_like(ids, -100)
    where = torch.tensor([[0, 2], [0, 7], [1, 3], [2, 1], [2, 4]])
    labels[where[:, 0], where[:, 1]] = ids[where[:, 0], where[:, 1]]
    masked_ids = ids.clone()
    masked_ids[where[:, 0], where[:, 1]] = 4  # [MASK]
    return masked_ids, mask, labels, ids


def test_loss_is_generator_mlm_plus_weighted_detection_on_real_tokens():
    model = _model().eval()
    masked_ids, mask, labels, original = _batch()
    out = model(masked_ids, mask, labels=labels, sampler=torch.Generator().manual_seed(3))
    # The straightforward computation: generator logits everywhere, replacements drawn the same way.
    gen_hidden = model.generator.bert(masked_ids, mask).last_hidden_state
    full_logits = model.generator.mlm(gen_hidden)
    sel = labels != -100
    gen_loss = F.cross_entropy(full_logits[sel], labels[sel])
    sampled = torch.multinomial(torch.softmax(full_logits[sel], -1), 1,
                                generator=torch.Generator().manual_seed(3)).squeeze(1)
    corrupted = masked_ids.clone()
    corrupted[sel] = sampled
    target = (corrupted != original).float()
    disc_logits = model.rtd(model.bert(corrupted, mask).last_hidden_state)
    real = mask.bool()
    rtd_loss = F.binary_cross_entropy_with_logits(disc_logits[real], target[real])
    torch.testing.assert_close(out.generator_loss, gen_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.rtd_loss, rtd_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.loss, gen_loss + 50.0 * rtd_loss, rtol=1e-5, atol=1e-5)
    assert out.rtd_logits.shape == (int(real.sum()),)
    # Only masked positions can be replaced; a sample equal to the original is no replacement.
    assert torch.equal(out.replaced, (corrupted != original)[real])
    assert not (corrupted != original)[~sel].any()


def test_generator_shares_embeddings_and_detection_loss_does_not_train_it():
    model = _model()
    assert model.generator.bert.embeddings is model.bert.embeddings
    masked_ids, mask, labels, _ = _batch()
    out = model(masked_ids, mask, labels=labels)
    out.rtd_loss.backward()
    layer = next(model.generator.bert.layers.parameters())
    assert layer.grad is None or not layer.grad.any()  # sampling is not differentiable
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_save_writes_discriminator_as_bert_and_generator_for_fill_mask(tmp_path):
    from hanformer.models.bert.heads import BertForMaskedLM
    from hanformer.models.bert.model import BertModel

    model = _model().eval()
    model.save_pretrained(tmp_path / "m")
    bert = BertModel.from_pretrained(tmp_path / "m").eval()
    generator = BertForMaskedLM.from_pretrained(tmp_path / "m" / "generator").eval()
    ids = torch.randint(5, 50, (2, 9))
    torch.testing.assert_close(bert(ids).last_hidden_state, model.bert(ids).last_hidden_state)
    torch.testing.assert_close(generator(ids).logits, model.generator(ids).logits)
    assert generator.config.num_hidden_layers == 1 and bert.config.num_hidden_layers == 2


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("rtd"))


@pytest.mark.slow
def test_cli_rtd_pretraining_resumes_exactly_and_exports_a_bert(shards, tmp_path, capsys):
    from hanformer.models.bert.heads import BertForSequenceClassification

    args = [*TINY, "--data", str(shards), "--dropout", "0.1", "--eval-every", "3"]
    assert main(["pretrain", *args, "--max-steps", "6", "--output-dir", str(tmp_path / "full")]) == 0
    assert main(["pretrain", *args, "--max-steps", "3", "--output-dir", str(tmp_path / "part")]) == 0
    assert main(["pretrain", *args, "--max-steps", "6", "--output-dir", str(tmp_path / "part"), "--resume"]) == 0
    capsys.readouterr()
    full = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "full", "train")]
    part = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "part", "train")]
    assert full == part  # replacements are sampled from the saved RNG state: exact resume
    evals = read_metrics(tmp_path / "full", "eval")
    last = evals[-1]
    for key in ("mlm_accuracy", "perplexity", "unigram_accuracy", "rtd_accuracy", "rtd_loss",
                "replaced_precision", "replaced_recall"):
        assert key in last, key
    assert 0.5 < last["rtd_baseline_accuracy"] < 1 and 0 <= last["rtd_accuracy"] <= 1
    assert "nsp_accuracy" not in last
    final = tmp_path / "full" / "final"
    config = json.loads((final / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and (final / "generator" / "config.json").is_file()
    assert (final / "vocab.txt").is_file()
    clf = BertForSequenceClassification.from_pretrained(final, num_labels=2)
    assert clf.config.hidden_size == 32


def test_rtd_refuses_init_from(shards, tmp_path, capsys):
    code = main(["pretrain", *TINY, "--data", str(shards), "--max-steps", "1", "--init-from", str(tmp_path),
                 "--output-dir", str(tmp_path / "x")])
    assert code != 0
    assert "init_from is not supported with objective 'rtd'" in capsys.readouterr().err


def test_a_collapsed_detector_is_said_at_the_end():
    from hanformer.pretraining.rtd import collapsed_detector, rtd_metrics

    class Score:  # the generator's half of the metrics does not matter here
        def metrics(self) -> dict:
            return {}

    # 100 tokens, 12 replaced, never flagged: accuracy equals the always-"original" baseline
    collapsed = rtd_metrics(Score(), loss=35.0, tp=0.0, fp=0.0, fn=12.0, tn=88.0)
    assert collapsed["rtd_accuracy"] == collapsed["rtd_baseline_accuracy"] == 0.88
    warning = collapsed_detector(collapsed)
    assert warning is not None and "lower --lr" in warning and "0.8800" in warning
    learning = rtd_metrics(Score(), loss=30.0, tp=3.0, fp=1.0, fn=9.0, tn=87.0)
    assert collapsed_detector(learning) is None
