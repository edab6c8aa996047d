"""Checkpoints are user input: shard indexes that point outside the folder, weights that do not
fit config.json, non-float weights, and configs asking for impossible models are one-line errors,
raised before anything large is read or allocated."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from hanformer.cli.main import main
from hanformer.errors import CheckpointError, ConfigError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.heads import BertForPreTraining
from hanformer.models.bert.model import BertModel
from hanformer.models.checkpoint import inspect_checkpoint, load_model
from hanformer.models.common import layers, sizing
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM
from hanformer.models.hub import read_state_dict, weight_files

VOCAB = 61
INDEX = "model.safetensors.index.json"


def tiny_bert() -> BertConfig:
    return BertConfig.preset("tiny", vocab_size=VOCAB, hidden_size=32, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=16)


def tiny_gpt() -> GPTConfig:
    return GPTConfig(vocab_size=VOCAB, n_positions=16, n_embd=32, n_layer=2, n_head=2)


@pytest.fixture()
def bert_dir(tmp_path):
    torch.manual_seed(0)
    BertForPreTraining(tiny_bert()).save_pretrained(tmp_path / "bert")
    return tmp_path / "bert"


@pytest.fixture()
def gpt_dir(tmp_path):
    torch.manual_seed(0)
    GPTForCausalLM(tiny_gpt()).save_pretrained(tmp_path / "gpt")
    return tmp_path / "gpt"


def edit_config(directory, **changes):
    config = json.loads((directory / "config.json").read_text())
    config.update(changes)
    (directory / "config.json").write_text(json.dumps(config))


def shard(directory, names_to_files: dict[str, str]) -> None:
    """Split the checkpoint into the shard files named by the index (model.safetensors removed)."""
    state = load_file(str(directory / "model.safetensors"))
    (directory / "model.safetensors").unlink()
    files: dict[str, dict[str, torch.Tensor]] = {}
    weight_map = {}
    for i, key in enumerate(sorted(state)):
        name = names_to_files.get(key, f"model-0000{i % 2 + 1}-of-00002.safetensors")
        weight_map[key] = name
        files.setdefault(name, {})[key] = state[key]
    for name, tensors in files.items():
        if name and "/" not in name and not name.startswith(".."):  # the refused names are never written
            save_file(tensors, str(directory / name))
    (directory / INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


# --- 1. shard indexes may only name files inside the checkpoint -------------------------------

def test_a_sharded_checkpoint_loads_and_reads_only_its_own_shards(bert_dir):
    before = read_state_dict(bert_dir)
    shard(bert_dir, {})
    assert [p.name for p in weight_files(bert_dir)] == ["model-00001-of-00002.safetensors",
                                                         "model-00002-of-00002.safetensors"]
    after = read_state_dict(bert_dir)
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert isinstance(load_model(bert_dir), BertForPreTraining)


@pytest.mark.parametrize("entry, problem", [
    ("../../../../etc/passwd", "climbs out of the folder with '..'"),
    ("/etc/passwd", "is an absolute path"),
    ("sub/../../outside.safetensors", "climbs out of the folder with '..'"),
    ("", "is not a file name"),
])
def test_index_entries_that_leave_the_folder_are_refused(bert_dir, entry, problem):
    shard(bert_dir, {"bert.pooler.dense.bias": entry})
    index = bert_dir / INDEX
    for action in (weight_files, read_state_dict, inspect_checkpoint, load_model, BertModel.from_pretrained):
        with pytest.raises(CheckpointError) as info:
            action(bert_dir)
        message = str(info.value)
        assert message.startswith(f"{index} (field 'weight_map'): entry 'bert.pooler.dense.bias' names {entry!r}, "
                                  f"which {problem}; a checkpoint may only name files inside its own folder")
        assert "\n" not in message


def test_an_index_entry_that_links_out_of_the_folder_is_refused(bert_dir, tmp_path):
    secret = tmp_path / "elsewhere" / "secret.safetensors"
    secret.parent.mkdir()
    save_file({"bert.pooler.dense.bias": torch.zeros(32)}, str(secret))
    shard(bert_dir, {"bert.pooler.dense.bias": "pooler.safetensors"})
    (bert_dir / "pooler.safetensors").unlink()
    (bert_dir / "pooler.safetensors").symlink_to(secret)
    with pytest.raises(CheckpointError, match=r"entry 'bert\.pooler\.dense\.bias' names 'pooler\.safetensors', "
                                              r"which leads out of the folder \(to .*secret\.safetensors\) through a link"):
        load_model(bert_dir)
    # A link that stays inside the folder is fine.
    (bert_dir / "pooler.safetensors").unlink()
    (bert_dir / "real").mkdir()
    save_file({"bert.pooler.dense.bias": torch.zeros(32)}, str(bert_dir / "real" / "pooler.safetensors"))
    (bert_dir / "pooler.safetensors").symlink_to(bert_dir / "real" / "pooler.safetensors")
    assert torch.equal(read_state_dict(bert_dir)["bert.pooler.dense.bias"], torch.zeros(32))


def test_an_index_whose_weight_map_is_not_a_table_is_refused(bert_dir):
    (bert_dir / INDEX).write_text(json.dumps({"weight_map": ["model.safetensors"]}))
    with pytest.raises(CheckpointError, match=r"\(field 'weight_map'\): must map tensor names to shard file names"):
        weight_files(bert_dir)


# --- 2. weights must fit config.json, and be floating point -----------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"vocab_size": 70}, r"tensor bert\.embeddings\.word_embeddings\.weight has shape \(61, 32\) in the checkpoint "
                         r"but the model expects \(70, 32\) from config\.json's vocab_size, hidden_size"),
    ({"intermediate_size": 48}, r"tensor bert\.encoder\.layer\.0\.intermediate\.dense\.bias has shape \(64,\) "
                                r"in the checkpoint but the model expects \(48,\) from config\.json's "
                                r"intermediate_size, hidden_size"),
    ({"max_position_embeddings": 20}, r"bert\.embeddings\.position_embeddings\.weight has shape \(16, 32\) .* "
                                      r"max_position_embeddings, hidden_size"),
])
def test_inspect_and_load_refuse_a_config_that_does_not_match_the_weights(bert_dir, capsys, changes, message):
    edit_config(bert_dir, **changes)
    with pytest.raises(CheckpointError, match=message):
        inspect_checkpoint(bert_dir)
    with pytest.raises(CheckpointError, match=message):
        load_model(bert_dir)
    assert main(["inspect", str(bert_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hanformer: error: {bert_dir}: tensor bert.") and err.count("\n") == 1


def test_a_layer_count_that_differs_from_the_weights_names_the_key(bert_dir, gpt_dir):
    edit_config(bert_dir, num_hidden_layers=3)
    for action in (inspect_checkpoint, load_model):
        with pytest.raises(ConfigError, match=rf"{bert_dir / 'config.json'}: num_hidden_layers = 3 but the weights "
                                              r"hold 2 layers \(encoder\.layer\.N\.\* numbered 0 to 1\); set "
                                              r"num_hidden_layers to 2"):
            action(bert_dir)
    edit_config(gpt_dir, n_layer=1)
    for action in (inspect_checkpoint, load_model):
        with pytest.raises(ConfigError, match=r"n_layer = 1 but the weights hold 2 layers \(h\.N\.\*"):
            action(gpt_dir)


def test_gpt_inspect_and_load_refuse_misshapen_weights(gpt_dir):
    edit_config(gpt_dir, n_inner=100)
    message = (r"tensor transformer\.layers\.0\.ffn\.up\.weight has shape \(128, 32\) in the checkpoint but the "
               r"model expects \(100, 32\) from config\.json's n_inner, n_embd")
    with pytest.raises(CheckpointError, match=message):
        inspect_checkpoint(gpt_dir)
    with pytest.raises(CheckpointError, match=message):
        GPTForCausalLM.from_pretrained(gpt_dir)


@pytest.mark.parametrize("dtype, name", [(torch.int32, "I32"), (torch.int64, "I64"), (torch.bool, "BOOL")])
def test_integer_weights_are_refused_not_cast(bert_dir, gpt_dir, dtype, name):
    for directory, key in ((bert_dir, "bert.embeddings.word_embeddings.weight"), (gpt_dir, "transformer.wte.weight")):
        state = load_file(str(directory / "model.safetensors"))
        state[key] = state[key].to(dtype)
        save_file(state, str(directory / "model.safetensors"))
        message = rf"tensor {key.replace('.', r'[.]')} has dtype {name}, but model weights are floating point"
        with pytest.raises(CheckpointError, match=message):
            inspect_checkpoint(directory)
        with pytest.raises(CheckpointError, match=message):
            load_model(directory)


def test_integer_buffers_of_transformers_checkpoints_still_load(bert_dir, gpt_dir):
    """position_ids / token_type_ids (BERT) and the old causal-mask buffers (GPT-2) are integers by design."""
    state = load_file(str(bert_dir / "model.safetensors"))
    state["bert.embeddings.position_ids"] = torch.arange(16)[None]
    state["bert.embeddings.token_type_ids"] = torch.zeros(1, 16, dtype=torch.long)
    save_file(state, str(bert_dir / "model.safetensors"))
    assert inspect_checkpoint(bert_dir)["dtypes"] == {"F32": BertForPreTraining(tiny_bert()).num_parameters()}
    assert isinstance(load_model(bert_dir), BertForPreTraining)

    state = load_file(str(gpt_dir / "model.safetensors"))
    state["transformer.h.0.attn.bias"] = torch.ones(1, 1, 16, 16, dtype=torch.uint8)
    save_file(state, str(gpt_dir / "model.safetensors"))
    assert isinstance(load_model(gpt_dir), GPTForCausalLM)
    assert inspect_checkpoint(gpt_dir)["layers"] == 2


# --- 3. configs asking for impossible models fail before allocating ---------------------------

@pytest.fixture()
def no_layers_may_be_built(monkeypatch):
    """Fail the test if a Transformer layer is built (on any device): the refusal must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a TransformerBlock was built before the config was checked")
    monkeypatch.setattr(layers.TransformerBlock, "__init__", refuse)


def test_200000_layers_are_refused_before_any_layer_is_built(bert_dir, gpt_dir, no_layers_may_be_built):
    edit_config(bert_dir, num_hidden_layers=200_000)
    with pytest.raises(ConfigError, match=r"num_hidden_layers = 200000 but the weights hold 2 layers"):
        load_model(bert_dir)
    edit_config(gpt_dir, n_layer=200_000)
    with pytest.raises(ConfigError, match=r"n_layer = 200000 but the weights hold 2 layers"):
        GPTForCausalLM.from_pretrained(gpt_dir)


def test_a_model_larger_than_memory_is_refused_before_allocating(no_layers_may_be_built):
    # 10**9 x 1024 embedding: 4 TB of float32, more than any machine running this test has.
    with pytest.raises(ConfigError, match=r"^BertConfig: vocab_size 1000000000, hidden_size 1024, num_hidden_layers "
                                          r"2, intermediate_size 4096, max_position_embeddings 512 make a model of "
                                          r"1,0\d\d,\d{3},\d{3},\d{3} parameters \([\d.]+ GiB in float32\), more than the "
                                          r"[\d.]+ GiB of memory available"):
        BertModel(BertConfig.preset("tiny", vocab_size=10**9, hidden_size=1024, num_attention_heads=16,
                                    intermediate_size=4096, max_position_embeddings=512))
    with pytest.raises(ConfigError, match=r"^GPTConfig: vocab_size 1000000000, n_embd 1024, n_layer 2"):
        GPTForCausalLM(GPTConfig(vocab_size=10**9, n_embd=1024, n_layer=2, n_head=16))


def test_loading_checks_memory_against_the_config_file(bert_dir, monkeypatch):
    needed = 4 * BertModel(tiny_bert()).num_parameters()
    monkeypatch.setattr(sizing, "available_memory", lambda: needed - 1)
    with pytest.raises(ConfigError, match=rf"^{bert_dir / 'config.json'}: vocab_size 61, hidden_size 32, .* make a "
                                          r"model of [\d,]+ parameters \(0\.0 GiB in float32\), more than the 0\.0 GiB "
                                          r"of memory available"):
        load_model(bert_dir)
    monkeypatch.setattr(sizing, "available_memory", lambda: needed * 10)
    assert isinstance(load_model(bert_dir), BertForPreTraining)


@pytest.mark.parametrize("variant", [{}, {"norm_placement": "pre"}, {"position_embedding_type": "sinusoidal"}])
def test_the_parameter_formula_equals_the_built_model(variant):
    config = BertConfig.preset("tiny", **variant)
    assert config.parameter_count() == BertModel(config).num_parameters()
    assert BertConfig.preset("base").parameter_count() == 109_482_240  # bert-base-uncased
    for gpt in (GPTConfig.preset("tiny"), GPTConfig.preset("tiny", n_inner=100)):
        assert gpt.parameter_count() == GPTForCausalLM(gpt).num_parameters()
    assert GPTConfig.preset("gpt2-small").parameter_count() == 124_439_808  # GPT-2 small


@pytest.mark.parametrize("key, value, message", [
    ("hidden_dropout_prob", 1.5, r"hidden_dropout_prob must be in \[0, 1\), got 1\.5"),
    ("attention_probs_dropout_prob", -0.1, r"attention_probs_dropout_prob must be in \[0, 1\), got -0\.1"),
    ("classifier_dropout", 1.0, r"classifier_dropout must be in \[0, 1\), got 1\.0"),
    ("hidden_act", "gelux", r"hidden_act 'gelux' is not one of gelu, gelu_new"),
    ("num_hidden_layers", 0, r"num_hidden_layers must be a positive integer, got 0"),
    ("vocab_size", -5, r"vocab_size must be a positive integer, got -5"),
    ("layer_norm_eps", 0, r"layer_norm_eps must be a positive number, got 0"),
    ("initializer_range", -0.02, r"initializer_range must be a positive number, got -0\.02"),
    ("classifier_pooling", "max", r"classifier_pooling = 'max' is not one of 'cls', 'mean'"),
    ("problem_type", "ranking", r"problem_type 'ranking' is not one of regression"),
    ("num_attention_heads", 5, r"hidden_size 32 is not divisible by num_attention_heads 5"),
])
def test_bert_config_values_are_checked_naming_the_file_and_key(bert_dir, key, value, message):
    edit_config(bert_dir, **{key: value})
    path = str(bert_dir / "config.json").replace(".", r"\.")
    for action in (inspect_checkpoint, load_model):
        with pytest.raises(ConfigError, match=rf"^{path}: {message}"):
            action(bert_dir)


@pytest.mark.parametrize("key, value, message", [
    ("resid_pdrop", 1.0, r"resid_pdrop must be in \[0, 1\), got 1\.0"),
    ("n_inner", 0, r"n_inner must be a positive integer, got 0"),
    ("activation_function", "swiglu", r"activation_function 'swiglu' is not one of gelu"),
    ("layer_norm_epsilon", -1e-5, r"layer_norm_epsilon must be a positive number"),
    ("eos_token_id", 61, r"eos_token_id 61 is outside the vocabulary \(size 61\)"),
    ("n_head", 3, r"n_embd 32 is not divisible by n_head 3"),
])
def test_gpt_config_values_are_checked_naming_the_file_and_key(gpt_dir, key, value, message):
    edit_config(gpt_dir, **{key: value})
    path = str(gpt_dir / "config.json").replace(".", r"\.")
    for action in (inspect_checkpoint, load_model):
        with pytest.raises(ConfigError, match=rf"^{path}: {message}"):
            action(gpt_dir)
