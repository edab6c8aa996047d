"""Recurrent encoder–decoders (GRU/LSTM; no attention, Bahdanau, Luong): masking, attention
weights, the shared decoding loops (greedy, beam, cache), save/load, training through
`hanformer translation train` and exact resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from _parallel_toy import LEXICON as TOY_LEXICON
from _parallel_toy import toy_pairs, write_lines
from hanformer.cli.main import main
from hanformer.errors import CheckpointError, ConfigError, InputError
from hanformer.evaluation.translation import translation_scores
from hanformer.generation.config import GenerationConfig
from hanformer.generation.search import EncodedSource, _beam_search, decode_encoder_decoder
from hanformer.generation.translate import encode_sources, load_translator, translate
from hanformer.models.encoder_decoder.settings import PRESET_NAMES, TranslationTrainConfig
from hanformer.models.encoder_decoder.train import train_translation
from hanformer.models.seq2seq import RNNForSeq2SeqLM, RNNSeq2SeqConfig
from hanformer.models.seq2seq.cache import RNNSeq2SeqCache
from hanformer.models.seq2seq.config import PRESETS
from hanformer.training.config import TrainerConfig

PAD, START, EOS, VOCAB = 0, 2, 3, 40
VARIANTS = [(cell, attention) for cell in ("gru", "lstm") for attention in ("none", "bahdanau", "luong")]


def _model(cell: str, attention: str, **overrides: Any) -> RNNForSeq2SeqLM:
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig.preset("tiny", vocab_size=VOCAB, cell=cell, attention=attention, embedding_size=16,
                                     hidden_size=16, attention_size=12, num_layers=2, pad_token_id=PAD,
                                     eos_token_id=EOS, decoder_start_token_id=START, **overrides)
    return RNNForSeq2SeqLM(config).eval()


def _sources() -> tuple[torch.Tensor, torch.Tensor]:
    """Three right-padded sources of lengths 7, 4 and 2 (each ending with EOS)."""
    rows = [[5, 9, 11, 6, 8, 7, EOS], [12, 5, 30, EOS], [17, EOS]]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [PAD] * (width - len(r)) for r in rows])
    return ids, (ids != PAD).long()


# ------------------------------------------------------------------------------------ the model
def test_presets_match_the_transformer_names_and_parameter_count_is_exact() -> None:
    assert tuple(PRESETS) == PRESET_NAMES
    for cell, attention in VARIANTS:
        for shared, tied, bidirectional in ((True, True, True), (False, False, False)):
            model = _model(cell, attention, share_encoder_decoder_embeddings=shared, tie_word_embeddings=tied,
                           bidirectional=bidirectional)
            assert model.num_parameters() == model.config.parameter_count()


@pytest.mark.parametrize("cell,attention", VARIANTS)
def test_padding_in_the_batch_changes_nothing_and_attention_is_a_distribution_over_real_tokens(
        cell: str, attention: str) -> None:
    model = _model(cell, attention)
    ids, mask = _sources()
    target = torch.tensor([[START, 5, 8, 13, 9]] * 3)
    out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=target, output_attentions=True)
    assert out.logits.shape == (3, 5, VOCAB) and out.encoder_last_hidden_state.shape == (3, 7, 32)
    assert torch.all(out.encoder_last_hidden_state[mask == 0] == 0)
    for row in (1, 2):  # alone, unpadded, each row computes what it computed in the padded batch
        n = int(mask[row].sum())
        alone = model(input_ids=ids[row:row + 1, :n], decoder_input_ids=target[row:row + 1], output_attentions=True)
        torch.testing.assert_close(alone.logits[0], out.logits[row], atol=1e-5, rtol=1e-5)
        if attention != "none":
            torch.testing.assert_close(alone.cross_attentions[0], out.cross_attentions[row, :, :n],
                                       atol=1e-5, rtol=1e-5)
    if attention == "none":
        assert out.cross_attentions is None
        return
    weights = out.cross_attentions
    assert weights.shape == (3, 5, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
    assert torch.all(weights.masked_select((mask == 0)[:, None, :].expand_as(weights)) == 0)


def test_left_padding_bad_ids_and_bad_settings_are_clear_errors() -> None:
    model = _model("gru", "luong")
    ids, mask = _sources()
    with pytest.raises(InputError, match="right-padded"):
        model(input_ids=ids, attention_mask=mask.flip(1), decoder_input_ids=ids[:, :2])
    with pytest.raises(InputError, match="outside the vocabulary"):
        model(input_ids=ids + VOCAB, attention_mask=mask, decoder_input_ids=ids[:, :2])
    with pytest.raises(ConfigError, match="attention"):
        RNNSeq2SeqConfig(attention="dot")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--architecture"):
        TranslationTrainConfig(architecture="gru", model_overrides={"cell": "lstm"}).validate()


# ------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("cell,attention", VARIANTS)
def test_greedy_equals_one_beam_and_beam_search_with_cache_equals_recomputation(cell: str, attention: str) -> None:
    model = _model(cell, attention, dropout=0.0)
    ids, mask = _sources()
    special = {"decoder_start_token_id": START, "eos_token_id": EOS, "pad_token_id": PAD}
    greedy = decode_encoder_decoder(model, ids, mask, GenerationConfig(max_new_tokens=8), **special)
    # One beam, no length penalty: the beam keeps the best token each step, as greedy does.
    memory = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    start = torch.full((3, 1), START)
    one_beam = _beam_search(model, start, torch.ones_like(start), GenerationConfig(max_new_tokens=8, length_penalty=0.0),
                            EOS, PAD, None, EncodedSource(memory, mask))
    width = greedy.sequences.shape[1]
    assert torch.equal(one_beam.sequences[:, :width], greedy.sequences)
    # The cached decoder (one token per call, the state carried and reordered) decodes exactly
    # what re-running the whole prefix at every step decodes.
    beams = [decode_encoder_decoder(model, ids, mask, GenerationConfig(max_new_tokens=8, num_beams=3,
                                                                       num_return_sequences=2, use_cache=use_cache),
                                    **special) for use_cache in (True, False)]
    assert torch.equal(beams[0].sequences, beams[1].sequences)
    assert beams[0].sequence_scores is not None and beams[1].sequence_scores is not None
    torch.testing.assert_close(beams[0].sequence_scores, beams[1].sequence_scores)


@pytest.mark.parametrize("cell,attention,overrides", [
    ("gru", "bahdanau", {}), ("lstm", "none", {"share_encoder_decoder_embeddings": False}),
    ("lstm", "luong", {"tie_word_embeddings": False, "bidirectional": False})])
def test_save_load_round_trip_gives_identical_logits(tmp_path: Path, cell: str, attention: str,
                                                     overrides: dict[str, Any]) -> None:
    model = _model(cell, attention, **overrides)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "rnn_seq2seq"
    stored = load_file(tmp_path / "model.safetensors")
    assert "decoder.embeddings.weight" not in stored or not model.config.share_encoder_decoder_embeddings
    loaded = RNNForSeq2SeqLM.from_pretrained(tmp_path)
    assert loaded.config == model.config
    ids, mask = _sources()
    target = torch.tensor([[START, 5, 8]] * 3)
    a = model(input_ids=ids, attention_mask=mask, decoder_input_ids=target).logits
    b = loaded(input_ids=ids, attention_mask=mask, decoder_input_ids=target).logits
    assert torch.equal(a, b)


# ------------------------------------------------------------------------------------ training
LEXICON = dict(list(TOY_LEXICON.items())[:10])


def _write_corpus(folder: Path, name: str, n: int, seed: int) -> tuple[Path, Path]:
    pairs = toy_pairs(n, seed, LEXICON)
    return (write_lines(folder / f"{name}.en", [s for s, _ in pairs]),
            write_lines(folder / f"{name}.de", [t for _, t in pairs]))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("parallel")
    (train_en, train_de), (valid_en, valid_de) = _write_corpus(d, "train", 1000, 0), _write_corpus(d, "valid", 40, 1)
    return {"train.en": train_en, "train.de": train_de, "valid.en": valid_en, "valid.de": valid_de}


def test_cli_trains_a_bahdanau_gru_that_hanformer_translate_uses(
        corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    assert main(["translation", "train", "--architecture", "gru", "--attention", "bahdanau",
                 "--train-source", str(corpus["train.en"]), "--train-target", str(corpus["train.de"]),
                 "--valid-source", str(corpus["valid.en"]), "--valid-target", str(corpus["valid.de"]),
                 "--out", str(out), "--model", "tiny", "--model-overrides", "dropout=0.0",
                 "--subword", "wordpiece", "--vocab-size", "300", "--max-length", "24", "--max-tokens", "256",
                 "--max-steps", "300", "--warmup-steps", "30", "--lr", "3e-3", "--eval-every", "0",
                 "--eval-sentences", "0", "--no-progress", "--no-tensorboard", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 300 and summary["eval"]["bleu"] > 70, summary
    settings = json.loads((out / "translation_config.json").read_text(encoding="utf-8"))
    assert settings["architecture"] == "gru" and settings["parameters"] > 0
    hyp = tmp_path / "valid.hyp.de"
    assert main(["translate", "--model", summary["final"], "--input", str(corpus["valid.en"]), "--output", str(hyp),
                 "--num-beams", "3"]) == 0
    references = corpus["valid.de"].read_text(encoding="utf-8").splitlines()
    assert translation_scores(hyp.read_text(encoding="utf-8").splitlines(), references).bleu > 70
    model, tokenizer = load_translator(summary["final"])
    assert isinstance(model, RNNForSeq2SeqLM) and model.config.attention == "bahdanau"
    first = translate(model, [references[0]], tokenizer=tokenizer, num_beams=1)[0]
    assert first.finish_reason == "eos"
    # A trained model ends sources at different steps, so beam search lets finished ones leave
    # the batch (select_rows on the cache): still exactly what recomputation decodes.
    sources = encode_sources(tokenizer, corpus["valid.en"].read_text(encoding="utf-8").splitlines(),
                             model.config.eos_token_id, model.config.max_position_embeddings)
    width = max(len(ids) for ids in sources)
    ids = torch.tensor([row + [model.config.pad_token_id] * (width - len(row)) for row in sources])
    selected: list[int] = []
    select_rows = RNNSeq2SeqCache.select_rows
    monkeypatch.setattr(RNNSeq2SeqCache, "select_rows",
                        lambda cache, rows: (selected.append(len(rows)), select_rows(cache, rows)))
    special = {"decoder_start_token_id": model.config.start_token_id, "eos_token_id": model.config.eos_token_id,
               "pad_token_id": model.config.pad_token_id}
    beams = [decode_encoder_decoder(model, ids, (ids != model.config.pad_token_id).long(),
                                    GenerationConfig(max_new_tokens=20, num_beams=3, use_cache=use_cache), **special)
             for use_cache in (True, False)]
    assert selected and torch.equal(beams[0].sequences, beams[1].sequences)


def _config(corpus: dict[str, Path], out: Path, **trainer: Any) -> TranslationTrainConfig:
    return TranslationTrainConfig(
        train_source=str(corpus["train.en"]), train_target=str(corpus["train.de"]), out=str(out),
        architecture="lstm", attention="luong", model="tiny", model_overrides={"dropout": 0.3, "num_layers": 2},
        vocab_size=60, max_length=16, max_tokens=128, eval_sentences=4,
        trainer=TrainerConfig(**{"warmup_steps": 4, "lr": 3e-3, "max_steps": 8, "log_every": 4, "progress": False,
                                 "tensorboard": False, "device": "cpu", "metric_for_best": "bleu", **trainer}))


def test_resume_from_half_way_gives_identical_weights(corpus: dict[str, Path], tmp_path: Path) -> None:
    """8 steps straight = 4 steps, checkpoint, resume, 4 more (dropout on, so the batch position
    and the RNG streams must both come back)."""
    reference = train_translation(_config(corpus, tmp_path / "ref", save_every=4, keep_last=5))
    out = tmp_path / "resumed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "ref/checkpoints/step-00000004", out / "checkpoints/step-00000004")
    shutil.copytree(tmp_path / "ref/tokenizer", out / "tokenizer")
    resumed = train_translation(_config(corpus, out, save_every=4, keep_last=5), resume=True)
    assert resumed.step == 8 and reference.final_dir is not None and resumed.final_dir is not None
    a, b = load_file(reference.final_dir / "model.safetensors"), load_file(resumed.final_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert set(reference.eval_metrics) == {"loss", "ppl", "bleu", "chrf"}
    # Another architecture is another run: its checkpoint is refused.
    with pytest.raises(CheckpointError, match="different model|other settings"):
        other = _config(corpus, out, save_every=4, keep_last=5)
        other.attention = "bahdanau"
        train_translation(other, resume=True)
