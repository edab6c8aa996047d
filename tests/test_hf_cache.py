"""Model names that are not folders resolve from the Hugging Face cache (the hub's own layout),
for every command; nothing is ever downloaded."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from _tiny_checkpoints import make_checkpoint, make_tokenizer
from hanformer.cli.main import main
from hanformer.errors import CheckpointError
from hanformer.models.bert.heads import BertForSequenceClassification
from hanformer.models.checkpoint import inspect_checkpoint, load_model
from hanformer.models.hf_cache import cached_snapshot, hub_cache_dir, locate_model
from hanformer.tasks.evaluate import resolve_model_dir

REPO_ID = "klue-test/tiny-bert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    tokenizer = make_tokenizer(root / "tok")
    return make_checkpoint(root / "model", tokenizer, "BertForSequenceClassification", labels=["neg", "pos"])


def lay_out_cache(cache, repo_id, source, commit=COMMIT, ref="main"):
    """Copy `source` into the hub's cache layout: blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/<ref>."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for file in sorted(source.iterdir()):
        if not file.is_file():
            continue
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        (snapshot / file.name).symlink_to(f"../../blobs/{blob.name}")  # relative, as huggingface_hub links
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)  # no trailing newline, as huggingface_hub writes it
    return snapshot


@pytest.fixture()
def hub(tmp_path, monkeypatch, checkpoint):
    """HF_HUB_CACHE pointing at a cache holding REPO_ID; the working directory has no such folder."""
    cache = tmp_path / "hub"
    snapshot = lay_out_cache(cache, REPO_ID, checkpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    return cache, snapshot


def test_a_cached_model_name_loads_everywhere_a_folder_does(hub, checkpoint, capsys):
    cache, snapshot = hub
    assert locate_model(REPO_ID) == snapshot
    assert resolve_model_dir(REPO_ID) == snapshot
    model = load_model(REPO_ID)
    assert isinstance(model, BertForSequenceClassification)
    reference = load_model(checkpoint)
    ids = torch.tensor([[2, 5, 7, 3]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)
    assert inspect_checkpoint(REPO_ID)["path"] == str(snapshot)
    assert main(["inspect", REPO_ID, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == {"0": "neg", "1": "pos"}


def test_cache_location_follows_hf_hub_cache_then_hf_home_then_xdg(tmp_path, monkeypatch, checkpoint):
    monkeypatch.chdir(tmp_path)
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert hub_cache_dir() == tmp_path / "hf-home" / "hub"
    snapshot = lay_out_cache(tmp_path / "hf-home" / "hub", REPO_ID, checkpoint)
    assert resolve_model_dir(REPO_ID) == snapshot
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(CheckpointError, match=rf"not in the Hugging Face cache at {tmp_path / 'elsewhere'}"):
        resolve_model_dir(REPO_ID)


def test_the_layout_agrees_with_huggingface_hub(hub):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    cache, snapshot = hub
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        found = huggingface_hub.try_to_load_from_cache(REPO_ID, name, cache_dir=str(cache))
        assert found == str(snapshot / name)
    assert cached_snapshot(REPO_ID, cache=cache) == snapshot


def test_a_model_not_in_the_cache_says_where_it_looked_and_how_to_download(hub, monkeypatch, capsys):
    cache, _ = hub
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    expected = (f"klue/bert-base: not a folder and not in the Hugging Face cache at {cache / 'models--klue--bert-base'}; "
                "hanformer never downloads; download it with `hf download klue/bert-base` or pass a folder")
    with pytest.raises(CheckpointError) as info:
        resolve_model_dir("klue/bert-base")
    assert str(info.value) == expected
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match=r"HF_HUB_OFFLINE is set and hanformer never downloads; download it "
                                              r"where the network is reachable with `hf download klue/bert-base`"):
        load_model("klue/bert-base")
    assert main(["inspect", "klue/bert-base"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hanformer: error: klue/bert-base: not a folder") and err.count("\n") == 1
    # Paths that cannot be hub names keep the plain message.
    with pytest.raises(CheckpointError, match="checkpoint directory not found: runs/a/b/final"):
        load_model("runs/a/b/final")


def test_a_local_folder_wins_over_the_cache(hub, tmp_path, checkpoint):
    local = tmp_path / REPO_ID
    shutil.copytree(checkpoint, local)
    assert resolve_model_dir(REPO_ID) == local.relative_to(tmp_path)


def test_a_ref_that_is_not_a_commit_hash_is_not_followed(hub):
    cache, _ = hub
    (cache / "models--klue-test--tiny-bert" / "refs" / "main").write_text("../../../../somewhere")
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache"):
        resolve_model_dir(REPO_ID)
    assert cached_snapshot(REPO_ID, revision=COMMIT, cache=cache) is not None  # a commit names its snapshot


def test_a_sharded_snapshot_whose_shards_link_into_blobs_loads(hub, tmp_path, checkpoint):
    """The index's shard names are links into ../../blobs: inside the cached repository, so allowed."""
    from safetensors.torch import load_file, save_file

    cache, _ = hub
    sharded = tmp_path / "sharded"
    shutil.copytree(checkpoint, sharded)
    state = load_file(str(sharded / "model.safetensors"))
    (sharded / "model.safetensors").unlink()
    keys = sorted(state)
    halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in halves.items():
        save_file({k: state[k] for k in part}, str(sharded / name))
    (sharded / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {k: name for name, part in halves.items() for k in part}}))
    lay_out_cache(cache, "klue-test/sharded", sharded, commit="f" * 40)
    model = load_model("klue-test/sharded")
    with torch.no_grad():
        ids = torch.tensor([[2, 5, 7, 3]])
        assert torch.equal(model(ids).logits, load_model(checkpoint)(ids).logits)
