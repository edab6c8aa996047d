"""--init-encoder: a translation model whose encoder starts as a pretrained BERT computes exactly what
that BERT computes (ours and transformers'), saves and loads in the Marian layout, and trains."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from _parallel_toy import toy_pairs, write_lines
from hanformer.cli.main import main
from hanformer.errors import ConfigError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.model import BertModel
from hanformer.models.encoder_decoder.config import TransformerConfig
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM
from hanformer.models.encoder_decoder.settings import BERT_DECIDED, TranslationTrainConfig
from hanformer.models.encoder_decoder.vocab import special_ids, train_joint_vocabulary
from hanformer.models.encoder_decoder.warm_start import (
    bert_encoder_fields,
    decoder_defaults,
    load_bert,
    load_bert_encoder,
)
from hanformer.tokenization.tokenizer import Tokenizer


def _randomise_norms(model: torch.nn.Module) -> None:
    """LayerNorms start at ones and zeros; give them values, so that copying them is tested."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.2)
                module.bias.normal_(0.0, 0.2)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Parallel toy files and a random BERT folder (weights + WordPiece tokenizer of both sides)."""
    d = tmp_path_factory.mktemp("warm")
    pairs = toy_pairs(400, 0)
    files = {"train.en": write_lines(d / "train.en", [s for s, _ in pairs]),
             "train.de": write_lines(d / "train.de", [t for _, t in pairs])}
    tokenizer = train_joint_vocabulary([s for p in pairs for s in p], d / "bert", vocab_size=200, kind="wordpiece")
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64, max_position_embeddings=40,
                                hidden_act="gelu"), add_pooling_layer=False)
    _randomise_norms(bert)
    bert.save_pretrained(d / "bert")
    return {**files, "bert": d / "bert"}


def _warm_model(bert: BertModel, max_positions: int = 32) -> TransformerForSeq2SeqLM:
    fields = {**decoder_defaults(bert.config, layers=1), **bert_encoder_fields(bert.config),
              "max_position_embeddings": max_positions}
    model = TransformerForSeq2SeqLM(TransformerConfig.from_dict(fields, strict=True))
    load_bert_encoder(model, bert)
    return model.eval()


def _ids(vocab: int, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random ids (above the special tokens) and their mask."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (len(lengths), max(lengths)), generator=g)
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids.masked_fill(mask == 0, 0), mask


def test_warm_started_encoder_computes_what_our_bert_computes(toy: dict[str, Path]) -> None:
    bert = load_bert(toy["bert"]).eval()
    model = _warm_model(bert)
    ids, mask = _ids(bert.config.vocab_size, [9, 5, 1])
    with torch.no_grad():
        ours = model.get_encoder()(ids, mask).last_hidden_state
        expected = bert(ids, mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(ours[real], expected[real], atol=1e-5, rtol=1e-5)
    # The decoder and the output projection read the same (BERT's) token vectors.
    assert model.output_weight().data_ptr() == model.model.encoder.token_embeddings.weight.data_ptr()
    torch.testing.assert_close(model.output_weight(), bert.embeddings.word_embeddings.weight)


def test_warm_started_encoder_matches_transformers_on_a_real_bert(minilm_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    model = _warm_model(load_bert(minilm_dir), max_positions=64)
    ids, mask = _ids(reference.config.vocab_size, [12, 7])
    with torch.no_grad():
        ours = model.get_encoder()(ids, mask).last_hidden_state
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(ours[real], expected[real], atol=2e-5, rtol=1e-4)


def test_embedding_layer_norm_saves_and_loads_in_the_marian_layout(toy: dict[str, Path], tmp_path: Path) -> None:
    model = _warm_model(load_bert(toy["bert"]))
    model.save_pretrained(tmp_path / "m")
    again = TransformerForSeq2SeqLM.from_pretrained(tmp_path / "m").eval()
    assert again.config.normalize_embedding
    assert again.config.parameter_count() == again.num_parameters()
    ids, mask = _ids(model.config.vocab_size, [6, 4])
    start = torch.full((2, 3), model.config.start_token_id)
    with torch.no_grad():
        torch.testing.assert_close(again(ids, mask, decoder_input_ids=start).logits,
                                   model(ids, mask, decoder_input_ids=start).logits)
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        assert "model.encoder.layernorm_embedding.weight" in set(f.keys())


def test_cli_trains_a_translation_model_from_a_bert_encoder(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["translation", "train", "--train-source", str(toy["train.en"]), "--train-target",
                 str(toy["train.de"]), "--out", str(out), "--init-encoder", str(toy["bert"]), "--model", "tiny",
                 "--model-overrides", "decoder_layers=1", "--valid-size", "20", "--max-length", "16",
                 "--max-tokens", "256", "--max-steps", "3", "--eval-every", "3", "--eval-sentences", "4",
                 "--no-progress", "--no-tensorboard", "--device", "cpu"])
    assert code == 0
    final = TransformerForSeq2SeqLM.from_pretrained(out / "final")
    assert (final.config.d_model, final.config.encoder_layers, final.config.decoder_layers) == (32, 2, 1)
    assert final.config.normalize_embedding and not final.config.scale_embedding
    # The translation vocabulary is the BERT's.
    assert Tokenizer.from_pretrained(out / "final").vocab_hash == Tokenizer.from_pretrained(toy["bert"]).vocab_hash
    assert special_ids(Tokenizer.from_pretrained(out / "final"))["start"] == final.config.start_token_id


def test_the_refused_overrides_are_exactly_the_fields_the_bert_decides(toy: dict[str, Path]) -> None:
    assert set(BERT_DECIDED) == set(bert_encoder_fields(load_bert(toy["bert"]).config))


@pytest.mark.parametrize(("changes", "message"), [
    ({"architecture": "gru"}, "--architecture gru has none to start"),
    ({"tokenizer": "elsewhere"}, "leave out --tokenizer"),
    ({"model_overrides": {"d_model": 64}}, "--model-overrides d_model: --init-encoder takes these from the BERT"),
])
def test_settings_that_contradict_the_bert_are_refused(toy: dict[str, Path], changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TranslationTrainConfig(train_source="a", train_target="b", init_encoder=str(toy["bert"]), **changes).validate()


def test_a_bert_without_enough_positions_or_with_entities_is_refused(toy: dict[str, Path], tmp_path: Path) -> None:
    bert = load_bert(toy["bert"])
    with pytest.raises(ConfigError, match="needs 64 positions but the BERT has 40; lower --max-length"):
        _warm_model(bert, max_positions=64)
    entity = BertModel(dataclasses.replace(bert.config, entity_type_vocab_size=2), add_pooling_layer=False)
    entity.save_pretrained(tmp_path / "entity")
    with pytest.raises(ConfigError, match="an entity-aware BERT"):
        load_bert(tmp_path / "entity")
