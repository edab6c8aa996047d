"""Language models side by side: `hanformer run` of a tiny `[language_models]` recipe end to end
(the shared carve, two n-gram orders, an LSTM, a GRU and a GPT on one tokenizer, their held-out
perplexities per word piece, samples, the report's table), served from cache the second time;
the n-gram figure is the n-gram package's own; bad tables are one-line errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from _pretrain_corpus import write_corpus
from hanformer.cli.main import main
from hanformer.errors import ConfigError
from hanformer.models.ngram.api import perplexity, train_ngram
from hanformer.models.ngram.config import NgramConfig
from hanformer.recipes import load_recipe, run_recipe

REPO = Path(__file__).resolve().parents[1]
NEURAL = """max_steps = 16
log_every = 4
eval_every = 8
lr = 3e-3
device = "cpu"
tensorboard = false
"""

TINY_RECIPE = f"""# The tiny variant the tests run: every kind of model on a few hundred generated documents.
[run]
name = "tiny-lm"
out_dir = "runs"
seed = 3
threads = 1

[tokenizer]
input = ["corpus.txt"]
vocab_size = 600
limit_alphabet = 400

[language_models]
train = ["corpus.txt"]
heldout_documents = 12
budget = "2m"
samples = 2
sample_tokens = 12

[language_models.ngram-2]
kind = "ngram"
order = 2

[language_models.ngram-3]
kind = "ngram"
order = 3

[language_models.lstm]
kind = "lstm"
embedding_size = 32
hidden_size = 32
num_layers = 1
batch_size = 4
bptt = 16
{NEURAL}
[language_models.gru]
kind = "gru"
embedding_size = 32
hidden_size = 32
num_layers = 1
batch_size = 4
bptt = 16
{NEURAL}
[language_models.gpt]
kind = "gpt"
model = "tiny"
model_config = {{ n_embd = 32, n_layer = 1, n_head = 2 }}
seq_len = 32
batch_size = 4
eval_batches = 2
{NEURAL}
[report]
"""
MODELS = ("ngram-2", "ngram-3", "lstm", "gru", "gpt")


@pytest.fixture
def tiny_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the recipe's paths are relative, as the shipped ones are
    write_corpus(tmp_path / "corpus.txt", n_docs=150, seed=5)
    (tmp_path / "tiny.toml").write_text(TINY_RECIPE, encoding="utf-8")
    return tmp_path


def test_tiny_lm_recipe_scores_every_model_in_one_unit_and_is_cached(tiny_run: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "tiny.toml"]) == 0
    run_dir = tiny_run / "runs" / "tiny-lm"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    keys = [s["key"] for s in metrics["stages"]]
    assert keys == ["tokenizer", "lm/data", *(f"lm/{m}/{p}" for m in MODELS for p in ("train", "score")), "report"]
    lms = metrics["language_models"]
    assert lms["corpus"]["heldout_documents"] == 12 and lms["corpus"]["train_documents"] == 138
    models = lms["models"]
    assert list(models) == list(MODELS)
    for name, entry in models.items():
        score, train = entry["score"], entry["train"]
        assert math.isfinite(score["perplexity"]) and score["perplexity"] > 1, name
        assert train["train_seconds"] > 0 and train["parameters"] > 0 and train["tokens_per_s"] > 0, name
        assert len(score["samples"]) == 2, name
    # One unit for all: the n-gram model predicts every piece and one </s> per document; the neural
    # models the same stream of pieces and [SEP]s, less its first token (nothing precedes it).
    tokens = {name: entry["score"]["tokens"] for name, entry in models.items()}
    assert tokens["ngram-2"] == tokens["ngram-3"] == tokens["lstm"] + 1 == tokens["gru"] + 1 == tokens["gpt"] + 1
    assert models["lstm"]["train"]["step"] == models["gpt"]["train"]["step"] == 16

    # The recipe's n-gram perplexity is the n-gram package's: counted again on the same text.
    heldout, train_text = run_dir / "lm/data/heldout.txt", run_dir / "lm/data/train.txt"
    assert len([line for line in heldout.read_text(encoding="utf-8").splitlines() if line]) == 12
    for order in (2, 3):
        again = train_ngram(train_text, NgramConfig(order=order, tokenizer=str(run_dir / "tokenizer")))
        expected = perplexity(again, heldout)
        assert models[f"ngram-{order}"]["score"]["perplexity"] == pytest.approx(expected["perplexity"], rel=1e-9)
        assert models[f"ngram-{order}"]["score"]["tokens"] == expected["tokens"]
        saved = perplexity(run_dir / f"lm/ngram-{order}/train", heldout)
        assert saved["perplexity"] == pytest.approx(expected["perplexity"], rel=1e-6)

    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html) and "<script" not in html  # offline
    assert "Language models side by side" in html and "per <b>word piece</b>" in html
    table = html.split('<table class="lm-baselines">', 1)[1].split("</table>", 1)[0]
    for name, entry in models.items():
        assert f"<b>{name}</b>" in table and f"{entry['score']['perplexity']:,.2f}" in table
    assert "<h3>Samples</h3>" in html and "held-out perplexity per word piece" in html  # the figure's axis
    for entry in models.values():
        for sample in entry["score"]["samples"]:
            assert sample.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html

    # Second run: every stage is served from cache; nothing is trained again.
    manifest = (run_dir / "lm/gpt/train/stage.json").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["run", "tiny.toml"]) == 0
    again_metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert all(s["action"] == "skip" for s in again_metrics["stages"])
    assert (run_dir / "lm/gpt/train/stage.json").read_text(encoding="utf-8") == manifest
    assert "skip   lm/lstm/train" in capsys.readouterr().err


def test_bad_language_model_tables_are_one_line_errors(tiny_run: Path) -> None:
    def fails(body: str, pattern: str) -> None:
        path = tiny_run / "bad.toml"
        path.write_text('[tokenizer]\ninput = ["corpus.txt"]\n\n' + body, encoding="utf-8")
        with pytest.raises(ConfigError, match=pattern):
            run_recipe(path, log=lambda s: None)
        assert not (tiny_run / "runs").exists()

    fails('[language_models]\ntrain = ["corpus.txt"]\n', r"\[language_models\]: no models")
    fails('[language_models]\n[language_models.x]\nkind = "lstm"\n', r"\[language_models\]: missing key 'train'")
    fails('[language_models]\ntrain = ["nope.txt"]\n[language_models.x]\nkind = "lstm"\n',
          r"\[language_models\]: train = 'nope.txt': file not found")
    fails('[language_models]\ntrain = ["corpus.txt"]\n[language_models.x]\nkind = "rnn"\n',
          r"\[language_models.x\]: kind = 'rnn': use one of ngram, lstm, gru, gpt")
    fails('[language_models]\ntrain = ["corpus.txt"]\n[language_models.x]\nkind = "gru"\nhiden_size = 8\n',
          r"\[language_models.x\]: unknown key 'hiden_size' \(did you mean 'hidden_size'\?\)")
    fails('[language_models]\ntrain = ["corpus.txt"]\n[language_models.x]\nkind = "ngram"\norder = 7\n',
          r"\[language_models.x\]: --order 7: orders 1 to 5")
    fails('[language_models]\ntrain = ["corpus.txt"]\n[language_models.x]\nkind = "gru"\ncell = "lstm"\n',
          r"'cell' is set by the recipe runner")


def test_shipped_lm_baselines_recipe_loads_and_checks() -> None:
    recipe = load_recipe(REPO / "recipes" / "lm-baselines.toml")
    assert recipe.language_models is not None and recipe.tokenizer is not None and recipe.report is not None
    kinds = [m.kind for m in recipe.language_models.models.values()]
    assert kinds.count("ngram") == 4 and {"lstm", "gru", "gpt"} <= set(kinds)


def test_translation_runs_are_compared_in_one_table() -> None:
    from hanformer.recipes.report.translation_section import translation_comparison

    def entry(architecture: dict, bleu: float, steps: int) -> dict:
        decodings = {"greedy": {"bleu": bleu, "chrf": 40.0, "num_beams": 1},
                     "beam": {"bleu": bleu + 2, "chrf": 42.5, "num_beams": 4}}
        return {"architecture": architecture, "scores": {"decodings": decodings},
                "train": {"seconds": 1200.0, "step": steps, "parameters": 3_450_000}}

    runs = {"en-de": entry({"model": "mini"}, 17.1, 2400),
            "en-de-gru-bahdanau": entry({"architecture": "gru", "attention": "bahdanau", "model": "mini"}, 21.95, 900)}
    assert translation_comparison({"en-de": runs["en-de"]}) == ""  # one run: its own section says it all
    table = translation_comparison(runs).split('<table class="translation-comparison">', 1)[1]
    rows = re.findall(r"<tr><td><b>([^<]+)</b></td><td>([^<]+)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", table)
    assert [(name, model) for name, model, _ in rows] == [("en-de", "Transformer (mini)"),
                                                           ("en-de-gru-bahdanau", "GRU, Bahdanau attention (mini)")]
    cells = re.findall(r">([^<]*)<", rows[1][2])
    assert [c for c in cells if c] == ["21.95", "23.95", "40.00", "42.50", "20 min 00.0 s", "900", "3,450,000"]
