"""Translation recipes: `hanformer run` of a tiny `[translation.<name>]` recipe end to end (data,
training, greedy and beam scoring, the report's section), served from cache the second time; the
shipped translation and chatbot recipes load and check; the corpus readers' one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from _parallel_toy import LEXICON
from _parallel_toy import toy_pairs as _corpus
from _parallel_toy import write_lines as _write
from hanformer.cli.main import main
from hanformer.data.parallel import read_table_pairs
from hanformer.errors import ConfigError, InputError
from hanformer.recipes import load_recipe, run_recipe
from hanformer.recipes.report.translation_section import transformer_leads
from hanformer.recipes.stages import build_stages
from hanformer.recipes.stages.translation import translation_stages

sacrebleu = pytest.importorskip("sacrebleu")

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("translate-multi30k", "translate-ko-en", "chatbot-ko")
TINY_MODEL = """model = "tiny"
model_overrides = { d_model = 64, encoder_ffn_dim = 128, decoder_ffn_dim = 128, encoder_layers = 1, decoder_layers = 1, dropout = 0.0 }
subword = "wordpiece"
vocab_size = 300
max_length = 24
max_tokens = 256
max_steps = 300
warmup_steps = 20
lr = 3e-3
log_every = 10
eval_every = 100
eval_sentences = 8
progress = false
tensorboard = false
device = "cpu"
"""

TINY_RECIPE = f"""# The tiny variant the tests run: two tables, line-aligned files with a validation file, and
# a TSV file whose validation pairs are carved (seeded).
[run]
name = "tiny-translation"
out_dir = "runs"
seed = 7
threads = 1

[translation.en-de]
train = [{{ source = "train.en", target = "train.de" }}]
valid = [{{ source = "valid.en", target = "valid.de" }}]
beams = 3
examples = 6
alignments = 2
{TINY_MODEL}
[translation.de-en]
train = [{{ file = "pairs.tsv", source_column = 1, target_column = 0 }}]
valid_size = 12
beams = 2
{TINY_MODEL}
[report]
"""


@pytest.fixture
def tiny_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the recipe's paths are relative, as the shipped ones are
    train, valid = _corpus(400, 0), _corpus(20, 1)
    _write(tmp_path / "train.en", [s for s, _ in train])
    _write(tmp_path / "train.de", [t for _, t in train])
    _write(tmp_path / "valid.en", [s for s, _ in valid])
    _write(tmp_path / "valid.de", [t for _, t in valid])
    _write(tmp_path / "pairs.tsv", [f"{s}\t{t}\tattribution #{i}" for i, (s, t) in enumerate(_corpus(150, 2))])
    (tmp_path / "tiny.toml").write_text(TINY_RECIPE, encoding="utf-8")
    return tmp_path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_tiny_translation_recipe_scores_reports_and_is_cached(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "tiny.toml"]) == 0
    run_dir = tiny_run / "runs" / "tiny-translation"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    keys = [s["key"] for s in metrics["stages"]]
    assert keys == [f"translation/{t}/{p}" for t in ("en-de", "de-en") for p in ("data", "train", "score")] + ["report"]

    # The carve: 12 of the 150 TSV pairs held out (seeded), German -> English (columns 1 -> 0).
    de_en = metrics["translations"]["de-en"]
    assert de_en["data"]["valid_carved"] and (de_en["data"]["train_pairs"], de_en["data"]["valid_pairs"]) == (138, 12)
    carved = (run_dir / "translation/de-en/data/valid.src").read_text(encoding="utf-8").split()
    assert set(carved) <= set(LEXICON.values())
    assert "greedy" in de_en["scores"]["decodings"] and "beam" in de_en["scores"]["decodings"]

    en_de = metrics["translations"]["en-de"]
    score_dir = run_dir / "translation/en-de/score"
    references = (tiny_run / "valid.de").read_text(encoding="utf-8").splitlines()
    for decoding, beams in (("greedy", 1), ("beam", 3)):
        rows = _jsonl(score_dir / f"{decoding}.jsonl")
        assert [r["reference"] for r in rows] == references
        assert {"line", "source", "reference", "hypothesis", "chrf", "bleu"} <= set(rows[0])
        hyps = [r["hypothesis"] for r in rows]
        result = en_de["scores"]["decodings"][decoding]
        assert result["num_beams"] == beams
        # The recorded corpus scores are sacreBLEU's on the written outputs.
        assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [references]).score, abs=1e-9)
        assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [references]).score, abs=1e-9)
        assert result["bleu_signature"].startswith("nrefs:1|") and "tok:13a" in result["bleu_signature"]
        for r in rows:
            assert r["chrf"] == pytest.approx(sacrebleu.sentence_chrf(r["hypothesis"], [r["reference"]]).score,
                                              abs=1e-3)
    assert json.loads((score_dir / "scores.json").read_text(encoding="utf-8")) == en_de["scores"]

    # Worst first: the lowest sentence chrF of the beam translations, in order.
    beam_rows = _jsonl(score_dir / "beam.jsonl")
    shown = [e["chrf"] for e in en_de["examples"]]
    assert len(shown) == 6 and shown == sorted(shown) and shown[0] == min(r["chrf"] for r in beam_rows)

    # Cross-attention: rows are output tokens, each a distribution over the source tokens.
    assert len(en_de["alignments"]) == 2
    for picture in en_de["alignments"]:
        assert picture["source_tokens"][-1] == "[SEP]" and picture["layer"] == 0 and picture["heads"] >= 1
        assert len(picture["weights"]) == len(picture["output_tokens"])
        assert all(len(row) == len(picture["source_tokens"]) and abs(sum(row) - 1) < 0.01
                   for row in picture["weights"])
    curves = en_de["curves"]
    assert curves["train"] and all("loss" in r for r in curves["train"])
    assert [r["step"] for r in curves["eval"]] == [100, 200, 300] and all("bleu" in r for r in curves["eval"])

    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html) and "<script" not in html  # offline
    assert "Translation: en-de" in html and "Translation: de-en" in html
    assert "validation BLEU" in html and "training (label-smoothed)" in html  # the curves' titles, as SVG text
    assert en_de["scores"]["decodings"]["beam"]["bleu_signature"] in html
    table = html.split('<table class="worst-first">', 1)[1].split("</table>", 1)[0]
    cells = [float(c) for c in re.findall(r'<tr><td class="num">\d+</td><td class="num">([\d.]+)</td>', table)]
    assert cells == [float(f"{c:.2f}") for c in shown]
    assert html.count('class="fig alignment"><svg') == 2 + len(de_en["alignments"])

    # Second run: every stage is served from cache; the model is not trained again.
    train_manifest = (run_dir / "translation/en-de/train/stage.json").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["run", "tiny.toml"]) == 0
    again = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert all(s["action"] == "skip" for s in again["stages"])
    assert (run_dir / "translation/en-de/train/stage.json").read_text(encoding="utf-8") == train_manifest
    assert "skip   translation/en-de/train" in capsys.readouterr().err


def test_changing_a_scoring_key_rescores_without_retraining(tiny_run: Path) -> None:
    recipe = tiny_run / "tiny.toml"
    assert main(["run", str(recipe)]) == 0
    recipe.write_text(TINY_RECIPE.replace("beams = 3", "beams = 4"), encoding="utf-8")
    result = run_recipe(recipe, dry_run=True, log=lambda s: None)
    planned = {d.stage.key: d.action for d in result.decisions}
    assert planned["translation/en-de/train"] == "skip" and planned["translation/en-de/score"] == "run"
    assert planned["translation/de-en/score"] == "skip"


def test_bad_translation_tables_are_one_line_errors(tiny_run: Path) -> None:
    def fails(text: str, pattern: str) -> None:
        path = tiny_run / "bad.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=pattern):
            run_recipe(path, log=lambda s: None)
        assert not (tiny_run / "runs").exists()

    fails("[translation.x]\nvocab_size = 10\n", r"\[translation.x\]: missing key 'train'")
    fails('[translation.x]\ntrain = [{ source = "train.en" }]\n', r"train\[0\]: give both source = FILE")
    fails('[translation.x]\ntrain = [{ file = "nope.tsv" }]\n', r"\[translation.x\] train\[0\]: file = 'nope.tsv': "
                                                                  "file not found")
    fails('[translation.x]\ntrain = [{ source = "train.en", target = "train.de" }]\nvocab_sise = 9\n',
          r"\[translation.x\]: unknown key 'vocab_sise' \(did you mean 'vocab_size'\?\)")
    fails('[translation.x]\ntrain = [{ source = "train.en", target = "train.de" }]\nmax_stpes = 9\n',
          r"unknown key 'max_stpes' \(did you mean 'max_steps'\?\)")


def test_table_reader_reads_columns_by_index_or_header_name(tmp_path: Path) -> None:
    csv = tmp_path / "chat.csv"
    csv.write_text('Q,A,label\n안녕,"반가워요, 정말",0\n잘 자,좋은 꿈 꾸세요,0\n', encoding="utf-8")
    pairs = read_table_pairs(csv, "Q", "A", delimiter=",", header=True)
    assert [(p.line, p.source, p.target) for p in pairs] == [(2, "안녕", "반가워요, 정말"), (3, "잘 자", "좋은 꿈 꾸세요")]
    tsv = tmp_path / "kor.txt"
    tsv.write_text('Go.\t가.\tCC\n"Hi."\t"안녕."\tCC\nshort\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"kor.txt:3: 1 column\(s\), but column 1 is read"):
        read_table_pairs(tsv, 1, 0)
    with pytest.raises(InputError, match=r"chat.csv:1: no column named 'B'"):
        read_table_pairs(csv, "Q", "B", delimiter=",", header=True)


def test_shipped_translation_recipes_load_and_check_without_the_data() -> None:
    """Every setting of the shipped recipes is checked (corpora, TranslationTrainConfig, trainer
    keys) without reading a file, so this runs where ../shared/data is absent; none reads a test file."""
    for stem in SHIPPED:
        recipe = load_recipe(REPO / "recipes" / f"{stem}.toml")
        assert recipe.translation and recipe.report is not None, stem
        for name, sec in recipe.translation.items():
            stages = translation_stages(recipe, name, sec)
            assert [s.key.rsplit("/", 1)[1] for s in stages] == ["data", "train", "score"]
            paths = [str(p) for s in stages for p in s.inputs]
            assert paths and all(p.startswith("../shared/data/") for p in paths), (stem, paths)
            assert not any("test" in Path(p).name for p in paths), (stem, paths)
            assert stages[1].budget, (stem, name)  # a stated budget bounds each training


def test_shipped_translation_recipes_find_their_data(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    for stem in SHIPPED:
        stages = build_stages(load_recipe(REPO / "recipes" / f"{stem}.toml"))  # checks every file exists
        assert stages[-1].key == "report"


def test_the_report_says_how_far_the_transformer_is_ahead_of_the_recurrent_models():
    def run(architecture, bleu, valid="val.en + val.de"):
        return {"architecture": {"architecture": architecture}, "valid_corpora": [valid],
                "scores": {"decodings": {"beam": {"bleu": bleu}}}, "train": {"seconds": 1200}}
    leads = transformer_leads({"en-de": run("transformer", 33.49), "gru": run("gru", 27.0),
                               "gru-att": run("gru", 30.12), "de-en": run("transformer", 35.0, "val.de + val.en")})
    assert len(leads) == 1  # de-en has no recurrent run on its validation set to compare with
    assert "<b>en-de</b> (33.49" in leads[0] and "<b>+3.37 BLEU</b>" in leads[0] and "<b>gru-att</b> (30.12" in leads[0]
    assert transformer_leads({"a": run("transformer", 30.0), "b": run("transformer", 31.0)}) == []
