"""`hanformer translation train`: token-budget batches, the paper's schedule, exact resume, and a
tiny model that learns a word-mapping corpus well enough to score high BLEU through `hanformer translate`."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from _parallel_toy import toy_pairs as _corpus
from _parallel_toy import write_lines as _write
from hanformer.cli.main import main
from hanformer.errors import CheckpointError
from hanformer.evaluation.translation import translation_scores
from hanformer.models.encoder_decoder.data import EncodedPairs, SpecialIds, TokenBatches
from hanformer.models.encoder_decoder.settings import TranslationTrainConfig
from hanformer.models.encoder_decoder.train import train_translation
from hanformer.training.config import TrainerConfig
from hanformer.training.schedule import lr_factor, paper_peak_lr


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("parallel")
    train, valid = _corpus(1500, 0), _corpus(60, 1)
    return {"train.en": _write(d / "train.en", [s for s, _ in train]),
            "train.de": _write(d / "train.de", [t for _, t in train]),
            "valid.en": _write(d / "valid.en", [s for s, _ in valid]),
            "valid.de": _write(d / "valid.de", [t for _, t in valid])}


IDS = SpecialIds(pad=0, start=2, eos=3)

def _config(files: dict[str, Path], out: Path, **trainer: Any) -> TranslationTrainConfig:
    return TranslationTrainConfig(
        train_source=str(files["train.en"]), train_target=str(files["train.de"]), out=str(out), model="tiny",
        model_overrides={"d_model": 32, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "encoder_layers": 1,
                         "decoder_layers": 1},
        vocab_size=60, max_length=16, max_tokens=128, eval_sentences=4,
        trainer=TrainerConfig(**{"optimizer": "adamw", "weight_decay": 0.0, "beta2": 0.98, "eps": 1e-9,
                                 "schedule": "inverse_sqrt", "warmup_steps": 4, "lr": 3e-3, "max_steps": 8,
                                 "log_every": 4, "progress": False, "tensorboard": False, "device": "cpu",
                                 "metric_for_best": "bleu", **trainer}))


# ------------------------------------------------------------------------------------ batches
def _pairs(n: int, seed: int) -> EncodedPairs:
    """Random ids; a target is about as long as its source, as translations are."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 40, n)
    sources = [rng.integers(5, 50, int(k)) for k in lengths]
    targets = [rng.integers(5, 50, max(2, int(k + rng.integers(-3, 4)))) for k in lengths]
    return EncodedPairs(sources, targets, 0)


def test_batches_fit_the_token_budget_bucket_by_length_and_cover_each_epoch_once() -> None:
    pairs = _pairs(1000, 0)
    source = TokenBatches(pairs, IDS, max_tokens=400, pool_size=200, seed=3)
    epoch = [source.next_batch() for _ in range(source.batches_in(0))]
    real = padded = 0
    seen: list[tuple[int, ...]] = []
    for b in epoch:
        n, width = b["labels"].shape
        assert n * max(width, b["input_ids"].shape[1]) <= 400
        # Teacher forcing: the decoder reads START + the labels shifted right.
        assert torch.equal(b["decoder_input_ids"][:, 0], torch.full((n,), IDS.start))
        assert torch.equal(b["decoder_input_ids"][:, 1:][b["labels"][:, 1:] != IDS.pad],
                           b["labels"][:, :-1][b["labels"][:, 1:] != IDS.pad])
        real += int(b["attention_mask"].sum())
        padded += b["input_ids"].numel()
        seen += [tuple(row[row != IDS.pad].tolist()) for row in b["input_ids"]]
    assert sorted(seen) == sorted(tuple(s.tolist()) for s in pairs.sources)  # each pair once per epoch
    assert real / padded > 0.75  # bucketing; random batches of these lengths pad about half
    # The next epoch is shuffled anew (same seed, another epoch).
    assert not torch.equal(source.next_batch()["input_ids"], epoch[0]["input_ids"])


def test_batch_source_state_resumes_exactly_and_refuses_other_data() -> None:
    a = TokenBatches(_pairs(300, 1), IDS, max_tokens=300, pool_size=64, seed=5)
    for _ in range(a.batches_in(0) + 3):  # into the second epoch
        a.next_batch()
    state = a.state_dict()
    b = TokenBatches(_pairs(300, 1), IDS, max_tokens=300, pool_size=64, seed=5)
    b.load_state_dict(state)
    for _ in range(5):
        x, y = a.next_batch(), b.next_batch()
        assert all(torch.equal(x[k], y[k]) for k in x)
    with pytest.raises(CheckpointError, match="max_tokens 300 -> 200"):
        TokenBatches(_pairs(300, 1), IDS, max_tokens=200, pool_size=64, seed=5).load_state_dict(state)


def test_inverse_square_root_schedule_is_the_papers_formula() -> None:
    d_model, warmup = 512, 4000
    peak = paper_peak_lr(d_model, warmup)
    for step in (1, 100, 3999, 4000, 4001, 20000, 100000):  # the paper counts steps from 1
        paper = d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
        ours = peak * lr_factor(step - 1, 0.0, warmup, "inverse_sqrt", 0.0)
        assert math.isclose(ours, paper, rel_tol=1e-12)


# ------------------------------------------------------------------------------------ training
def test_resume_from_half_way_gives_identical_weights(files: dict[str, Path], tmp_path: Path) -> None:
    """8 steps straight = 4 steps, checkpoint, resume, 4 more (dropout on, so the batch position
    and the RNG streams must both come back)."""
    reference = train_translation(_config(files, tmp_path / "ref", save_every=4, keep_last=5))
    out = tmp_path / "resumed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "ref/checkpoints/step-00000004", out / "checkpoints/step-00000004")
    shutil.copytree(tmp_path / "ref/tokenizer", out / "tokenizer")
    resumed = train_translation(_config(files, out, save_every=4, keep_last=5), resume=True)
    assert resumed.step == 8 and reference.final_dir is not None and resumed.final_dir is not None
    a, b = load_file(reference.final_dir / "model.safetensors"), load_file(resumed.final_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert set(reference.eval_metrics) == {"loss", "ppl", "bleu", "chrf"}
    record = json.loads((tmp_path / "ref/valid_scores.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert record["step"] == 8 and record["bleu_signature"].startswith("nrefs:1|")


def test_cli_trains_a_model_that_hanformer_translate_uses_with_high_bleu(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["translation", "train", "--train-source", str(files["train.en"]),
                 "--train-target", str(files["train.de"]), "--valid-source", str(files["valid.en"]),
                 "--valid-target", str(files["valid.de"]), "--out", str(out), "--model", "tiny",
                 "--model-overrides", "d_model=64,encoder_ffn_dim=128,decoder_ffn_dim=128,dropout=0.0",
                 "--subword", "wordpiece", "--vocab-size", "300", "--max-length", "16", "--max-tokens", "512",
                 "--max-steps", "450",
                 "--warmup-steps", "50", "--lr", "3e-3", "--eval-every", "0", "--eval-sentences", "0",
                 "--no-progress", "--no-tensorboard", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 450 and summary["eval"]["bleu"] > 70, summary
    hyp = tmp_path / "valid.hyp.de"
    assert main(["translate", "--model", summary["final"], "--input", str(files["valid.en"]), "--output", str(hyp),
                 "--num-beams", "2"]) == 0
    hypotheses = hyp.read_text(encoding="utf-8").splitlines()
    references = files["valid.de"].read_text(encoding="utf-8").splitlines()
    assert translation_scores(hypotheses, references).bleu > 70
    assert (out / "best" / "tokenizer.json").is_file()


def test_mismatched_files_and_too_few_pairs_are_one_line_errors(files: dict[str, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    short = _write(tmp_path / "short.de", ["der Hund"] * 10)
    assert main(["translation", "train", "--train-source", str(files["train.en"]), "--train-target", str(short),
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{files['train.en']}:11" in err and "has only 10 lines" in err and "\n" not in err
    tiny = _write(tmp_path / "tiny.en", ["the dog"] * 5)
    tiny_de = _write(tmp_path / "tiny.de", ["Hund der"] * 5)
    assert main(["translation", "train", "--train-source", str(tiny), "--train-target", str(tiny_de),
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "too few to carve validation pairs" in err and "--valid-source" in err and "\n" not in err
