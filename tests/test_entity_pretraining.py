"""Pretraining an entity-aware BERT: `data prepare --entities kiwi` marks every entity in the
shards' text, masked-LM batches carry the entity ids the markers give, the pretrained model holds a
trained entity table, and fine-tuning from it keeps its entity inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _pretrain_corpus import make_tokenizer, write_corpus  # noqa: E402
from hanformer.cli.main import main  # noqa: E402
from hanformer.data.prepare import PrepareConfig, prepare_data  # noqa: E402
from hanformer.data.shards import ShardSet  # noqa: E402
from hanformer.entities.config import EntityConfig  # noqa: E402
from hanformer.entities.marking import ENTITY_END, ENTITY_START, MarkerIds, entity_ids_from_markers  # noqa: E402
from hanformer.entities.tokens import recorded_entity_config  # noqa: E402
from hanformer.errors import ConfigError  # noqa: E402
from hanformer.models.bert.heads import BertForPreTraining  # noqa: E402
from hanformer.pretraining.config import PretrainConfig  # noqa: E402
from hanformer.pretraining.mlm import build_mlm_nsp  # noqa: E402
from hanformer.tokenization.tokenizer import Tokenizer  # noqa: E402
from hanformer.training.distributed import DistInfo  # noqa: E402

pytest.importorskip("kiwipiepy")

CLS, SEP, PAD, OPEN, CLOSE = 100, 101, 0, 8, 9


def test_entity_ids_are_the_tokens_between_markers_within_a_segment():
    rows = np.array([
        [CLS, 1, OPEN, 3, 4, CLOSE, 5, SEP, PAD],     # one entity of two pieces
        [CLS, 3, CLOSE, 4, OPEN, 5, 5, SEP, 6],       # cut at both ends: what is left is entity; none crosses [SEP]
        [CLS, 1, OPEN, 4, SEP, 6, CLOSE, 7, SEP],     # an entity cut by the pair's [SEP] is two parts
        [CLS, 1, 2, 3, 4, 5, 6, 7, SEP],              # no entity
    ])
    ids = entity_ids_from_markers(rows, MarkerIds(OPEN, CLOSE), (CLS, SEP, PAD))
    assert ids.tolist() == [[0, 0, 0, 1, 1, 0, 0, 0, 0],
                            [0, 1, 0, 0, 0, 1, 1, 0, 0],
                            [0, 0, 0, 1, 0, 1, 0, 0, 0],
                            [0] * 9]


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    d = tmp_path_factory.mktemp("entity-shards")
    text = write_corpus(d / "wiki.txt", n_docs=60)
    tok = make_tokenizer(text, d / "tok")
    config = PrepareConfig(progress=False, valid_fraction=0.1, entity=EntityConfig(entities="kiwi"))
    prepare_data([text], tok, d / "shards", config)
    return d


def test_prepare_marks_the_entities_in_the_shards(marked):
    shards = ShardSet(marked / "shards")
    tokenizer = Tokenizer.from_pretrained(shards.tokenizer_dir)
    plain = Tokenizer.from_pretrained(marked / "tok")
    assert tokenizer.vocab_size == plain.vocab_size + 2 and shards.vocab_size == tokenizer.vocab_size
    start, end = tokenizer.convert_tokens_to_ids([ENTITY_START, ENTITY_END])
    assert {start, end} <= set(shards.meta["all_special_ids"])  # never masked, never a random replacement
    tokens = np.asarray(shards.train.tokens)
    assert (tokens == start).sum() == (tokens == end).sum() > 100
    text = tokenizer.decode(tokens[:4000].tolist(), skip_special_tokens=False)
    assert f"{ENTITY_START} 서울 {ENTITY_END}" in text  # Kiwi's proper nouns (NNP) of the corpus
    assert f"{ENTITY_START} 학교" not in text  # a common noun (NNG) is not one
    recorded = recorded_entity_config(tokenizer)
    assert recorded is not None and recorded.entities == "kiwi" and recorded.entity_embedding


def test_masked_lm_batches_carry_the_entity_ids_and_the_model_its_table(marked):
    shards = ShardSet(marked / "shards")
    tokenizer = Tokenizer.from_pretrained(shards.tokenizer_dir)
    config = PretrainConfig(data=str(marked / "shards"), model="tiny", seq_len=64, batch_size=8,
                            model_config={"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64})
    parts = build_mlm_nsp(config, shards, tokenizer, DistInfo())
    assert parts.model.config.entity_type_vocab_size == 2
    batch = parts.train_batches.builder.build(0, 0)
    start, end = tokenizer.convert_tokens_to_ids([ENTITY_START, ENTITY_END])
    expected = entity_ids_from_markers(batch["input_ids"].numpy(), MarkerIds(start, end),
                                       (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id))
    assert batch["entity_ids"].sum() > 0 and torch.equal(batch["entity_ids"], torch.from_numpy(expected))
    out = parts.model(**batch)  # the model reads them
    assert torch.isfinite(out.loss)


def test_pretrain_then_finetune_keeps_the_entity_inputs(marked, tmp_path, capsys):
    out = tmp_path / "pt"
    rc = main(["pretrain", "--data", str(marked / "shards"), "--model", "tiny", "--model-config",
               "hidden_size=32,num_attention_heads=2,intermediate_size=64", "--seq-len", "64", "--batch-size", "8",
               "--max-steps", "4", "--lr", "1e-2", "--output-dir", str(out), "--no-progress", "--no-tensorboard",
               "--peak-tflops", "1"])
    assert rc == 0, capsys.readouterr().err
    model = BertForPreTraining.from_pretrained(out / "final")
    table = model.bert.embeddings.entity_type_embeddings.weight
    assert table.shape[0] == 2 and table.abs().sum() > 0  # zero at the start, moved by training
    data = tmp_path / "reviews.tsv"
    rows = [("서울 여행 좋았다", 1), ("부산 음식 별로", 0), ("대한민국 영화 최고", 1), ("서울 날씨 최악", 0)] * 8
    data.write_text("id\tdocument\tlabel\n" + "".join(f"{i}\t{t}\t{y}\n" for i, (t, y) in enumerate(rows)),
                    encoding="utf-8")
    rc = main(["finetune", "--task", "nsmc", "--model", str(out / "final"), "--train", str(data), "--out",
               str(tmp_path / "ft"), "--max-steps", "2", "--batch-size", "8", "--valid-fraction", "0.25", "--threads", "1",
               "--no-progress", "--no-tensorboard"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "entities: kiwi" in err  # taken from the pretrained model's tokenizer, with no option
    recorded = recorded_entity_config(Tokenizer.from_pretrained(tmp_path / "ft" / "best"))
    assert recorded is not None and recorded.entities == "kiwi"


def test_pretraining_data_needs_the_markers():
    config = PrepareConfig(entity=EntityConfig(entities="kiwi", entity_markers=False))
    with pytest.raises(ConfigError, match="keep the markers"):
        config.validate()
