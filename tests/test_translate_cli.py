"""`hanformer translate` and `hanformer.translate` on a tiny random model saved with its tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import hanformer
from hanformer.cli.main import main
from hanformer.errors import ConfigError
from hanformer.models.encoder_decoder.config import TransformerConfig
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM

PAD, EOS = 0, 1
SENTENCES = ["the cat sat on the mat", "", "a dog ran to the cat", "고양이가 매트에 앉았다", "the mat"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2+2-layer model and a BPE tokenizer (pad, EOS, unk, bos first) in one folder."""
    d = tmp_path_factory.mktemp("tiny-translator")
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=80, special_tokens=["<pad>", "</s>", "<unk>", "<s>"])
    tokenizer.train_from_iterator([s for s in SENTENCES if s] + ["der Hund lief zur Katze", "개가 달렸다"], trainer)
    tokenizer.save(str(d / "tokenizer.json"))
    torch.manual_seed(0)
    config = TransformerConfig.preset("tiny", vocab_size=tokenizer.get_vocab_size(), d_model=32,
                                      encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                      decoder_ffn_dim=64, max_position_embeddings=24, pad_token_id=PAD,
                                      eos_token_id=EOS, tie_word_embeddings=False,
                                      share_encoder_decoder_embeddings=False)
    TransformerForSeq2SeqLM(config).save_pretrained(d)
    return d


def test_cli_writes_one_translation_per_line_like_the_python_api(model_dir: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    assert main(["translate", "--model", str(model_dir), "--input", str(source), "--output", str(out),
                 "--num-beams", "3", "--batch-size", "2", "--max-length", "6"]) == 0
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(SENTENCES) + 1
    assert lines[1] == ""  # an empty source stays an empty line
    results = hanformer.translate(model_dir, SENTENCES, num_beams=3, max_length=6)
    assert [r.text for r in results] == lines[:-1]
    assert results[1].finish_reason == "empty"
    assert all(len(r.token_ids) <= 6 and r.score is not None for r in results if r.source)
    # Batching and batch order do not change a translation.
    alone = hanformer.translate(model_dir, SENTENCES[2], num_beams=3, max_length=6, batch_size=1)
    assert alone[0].token_ids == results[2].token_ids
    assert "translated 5 line(s)" in capsys.readouterr().err


def test_n_best_lists_and_long_sources(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "in.txt"
    source.write_text(" ".join(["the cat sat on the mat"] * 6) + "\nthe mat\n", encoding="utf-8")
    assert main(["translate", "--model", str(model_dir), "--input", str(source), "--num-beams", "3",
                 "--num-return-sequences", "2", "--max-length", "4"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split("\t")[0] for r in rows] == ["1", "1", "2", "2"]
    first, second = (float(r.split("\t")[1]) for r in rows[:2])
    assert first >= second  # best first
    assert "keeping its first 23" in caplog.text  # the 24 positions of the model


def test_bad_input_and_missing_model_are_one_line_errors(model_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "latin1.txt"
    source.write_bytes("fine\ncaf\xe9\n".encode("latin-1"))
    assert main(["translate", "--model", str(model_dir), "--input", str(source)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{source}:2: not valid UTF-8" in err and "iconv" in err and "\n" not in err

    good = tmp_path / "in.txt"
    good.write_text("the cat\n", encoding="utf-8")
    missing = tmp_path / "no-such-model"
    assert main(["translate", "--model", str(missing), "--input", str(good)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and "folder of a translation model" in err and "\n" not in err

    assert main(["translate", "--model", str(model_dir), "--input", str(tmp_path / "absent.txt")]) == 2
    assert "absent.txt" in capsys.readouterr().err


def test_impossible_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="num_return_sequences = 3 > num_beams = 2"):
        hanformer.TranslateConfig(num_beams=2, num_return_sequences=3)
    with pytest.raises(ConfigError, match="batch_size = 0"):
        hanformer.TranslateConfig(batch_size=0)
