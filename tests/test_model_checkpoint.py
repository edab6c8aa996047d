"""Checkpoints: old key names, prefixes, missing/extra heads, bad files, inspect/convert/embed commands."""

from __future__ import annotations

import json
import logging
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from hanformer.cli.main import main
from hanformer.errors import CheckpointError, ConfigError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import BertForPreTraining, BertForSequenceClassification
from hanformer.models.bert.model import BertModel
from hanformer.models.checkpoint import convert_checkpoint, inspect_checkpoint, load_model

VOCAB = 61


def tiny(**overrides) -> BertConfig:
    return BertConfig.preset("tiny", **{**dict(vocab_size=VOCAB, max_position_embeddings=32), **overrides})


@pytest.fixture()
def pretrained(tmp_path):
    torch.manual_seed(0)
    model = BertForPreTraining(tiny()).eval()
    model.save_pretrained(tmp_path / "pre")
    return model, tmp_path / "pre"


def _ids():
    return torch.randint(1, VOCAB, (2, 9), generator=torch.Generator().manual_seed(5))


def _write_config(directory, **changes):
    config = json.loads((directory / "config.json").read_text())
    config.update(changes)
    for key, value in list(config.items()):
        if value is None:
            del config[key]
    (directory / "config.json").write_text(json.dumps(config))


def test_old_tensor_names_bin_weights_and_no_architecture_load(pretrained, tmp_path):
    """An old-style checkpoint: LayerNorm.gamma/beta, decoder copies, position_ids, pytorch_model.bin."""
    model, directory = pretrained
    old = tmp_path / "old"
    old.mkdir()
    state = load_file(str(directory / "model.safetensors"))
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in state.items()}
    legacy["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    legacy["cls.predictions.decoder.bias"] = legacy.pop("cls.predictions.bias")
    legacy["bert.embeddings.position_ids"] = torch.arange(32)[None]
    torch.save(legacy, old / "pytorch_model.bin")
    (old / "config.json").write_text((directory / "config.json").read_text())
    _write_config(old, architectures=None)

    info = inspect_checkpoint(old)
    assert info["tensor_names"] == "legacy (LayerNorm.gamma/beta)"
    assert info["architectures"] == ["BertForPreTraining"]
    loaded = load_model(old)
    assert type(loaded) is BertForPreTraining
    with torch.no_grad():
        assert torch.equal(loaded(_ids()).prediction_logits, model(_ids()).prediction_logits)

    # convert -> clean safetensors with current names that transformers accepts as is.
    clean = convert_checkpoint(old, tmp_path / "clean")
    keys = set(load_file(str(clean / "model.safetensors")))
    assert "bert.embeddings.LayerNorm.weight" in keys and not any("gamma" in k or "decoder" in k for k in keys)
    transformers = pytest.importorskip("transformers")
    _, report = transformers.BertForPreTraining.from_pretrained(clean, output_loading_info=True)
    assert {k: v for k, v in report.items() if v} == {}


def test_heads_missing_start_fresh_and_extra_heads_are_dropped(pretrained, tmp_path, caplog):
    model, directory = pretrained
    # Bare encoder saved without the bert. prefix -> a classifier on top of it.
    model.bert.save_pretrained(tmp_path / "enc")
    with caplog.at_level(logging.WARNING, logger="hanformer"):
        clf = BertForSequenceClassification.from_pretrained(tmp_path / "enc", num_labels=3)
    assert "classifier.weight" in caplog.text and "newly initialised" in caplog.text
    assert clf.classifier.out_features == 3 and clf.config.num_labels == 3
    ids = _ids()
    with torch.no_grad():
        assert torch.equal(clf.bert(ids).last_hidden_state, model.bert(ids).last_hidden_state)
        # Pretraining checkpoint -> bare encoder: the MLM/NSP heads are not needed.
        encoder = BertModel.from_pretrained(directory)
        assert torch.equal(encoder(ids).pooler_output, model.bert(ids).pooler_output)
    assert load_model(directory, "BertModel").__class__ is BertModel


def test_missing_unexpected_and_misshapen_tensors_are_named(pretrained, tmp_path):
    _, directory = pretrained
    state = load_file(str(directory / "model.safetensors"))

    def write(name, tensors, **config_changes):
        d = tmp_path / name
        d.mkdir()
        save_file(tensors, str(d / "model.safetensors"))
        (d / "config.json").write_text((directory / "config.json").read_text())
        _write_config(d, **config_changes)
        return d

    missing = dict(state)
    del missing["bert.encoder.layer.1.output.dense.weight"]
    with pytest.raises(CheckpointError, match=r"missing tensors bert\.encoder\.layer\.1\.output\.dense\.weight"):
        BertForPreTraining.from_pretrained(write("missing", missing))

    extra = dict(state, **{"bert.encoder.layer.1.extra.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match=r"unexpected tensors bert\.encoder\.layer\.1\.extra\.weight"):
        BertForPreTraining.from_pretrained(write("extra", extra))

    with pytest.raises(CheckpointError, match=r"tensor bert\.embeddings\.word_embeddings\.weight has shape "
                                              r"\(61, 128\) in the checkpoint but the model expects \(70, 128\)"):
        BertForPreTraining.from_pretrained(write("shape", state, vocab_size=70))

    with pytest.raises(ConfigError, match=r"heads/config\.json: hidden_size 128 is not divisible by "
                                          r"num_attention_heads 3"):
        BertForPreTraining.from_pretrained(write("heads", state, num_attention_heads=3))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_truncated_and_unsafe_files_are_refused(pretrained, tmp_path):
    _, directory = pretrained
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "config.json").write_text((directory / "config.json").read_text())
    data = (directory / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: cannot read safetensors file .*truncated or corrupt"):
        BertForPreTraining.from_pretrained(cut)

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    (unsafe / "config.json").write_text((directory / "config.json").read_text())
    with open(unsafe / "pytorch_model.bin", "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(CheckpointError, match=r"cannot read PyTorch weights safely.*weights_only=True"):
        BertForPreTraining.from_pretrained(unsafe)

    with pytest.raises(CheckpointError, match="checkpoint directory not found"):
        load_model(tmp_path / "nowhere")


def test_cli_inspect_convert_and_errors(pretrained, tmp_path, capsys):
    _, directory = pretrained
    assert main(["inspect", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "BertForPreTraining" in out and "masked-LM" in out and "next-sentence prediction" in out
    assert main(["inspect", str(directory), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == BertForPreTraining(tiny()).num_parameters()
    assert info["layers"] == 2 and info["dtypes"] == {"F32": info["parameters"]}

    assert main(["convert", str(directory), str(tmp_path / "bf16"), "--dtype", "bfloat16",
                 "--architecture", "BertModel"]) == 0
    info = inspect_checkpoint(tmp_path / "bf16")
    assert info["architectures"] == ["BertModel"] and list(info["dtypes"]) == ["BF16"]
    assert info["heads"] == ["pooler"]

    assert main(["inspect", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hanformer: error: checkpoint directory not found") and err.count("\n") == 1


def test_cli_embed_ranks_similar_sentences_first(minilm_dir, capsys):
    food, bread, baby = "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."
    assert main(["embed", "--model", str(minilm_dir), food, bread, baby, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    sim = result["similarity"]
    assert sim[0][1] > 0.7 and sim[0][1] > sim[0][2] + 0.5
    assert len(result["embeddings"][0]) == 384
    assert main(["embed", "--model", str(minilm_dir), food, baby, bread]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith(f"{food}  <->  {bread}")  # most similar pair first
