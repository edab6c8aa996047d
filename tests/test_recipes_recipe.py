"""Recipe errors are reported before any work starts, naming the file, the table and the key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hanformer.cli.main import main
from hanformer.errors import ConfigError
from hanformer.recipes import load_recipe, run_recipe

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "nsmc-sample"


def write_recipe(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "recipe.toml"
    header = f'[run]\nname = "t"\nout_dir = "{(tmp_path / "runs").as_posix()}"\n\n'
    path.write_text(header + body, encoding="utf-8")
    return path


TOKENIZER = f'[tokenizer]\ninput = ["{(SAMPLE / "pretrain.txt").as_posix()}"]\nvocab_size = 2000\n\n'
FINETUNE = (f'[finetune.nsmc]\ntrain = "{(SAMPLE / "train.tsv").as_posix()}"\n'
            f'test = "{(SAMPLE / "test.tsv").as_posix()}"\n\n')


def check_fails_before_work(tmp_path: Path, body: str, pattern: str) -> str:
    path = write_recipe(tmp_path, body)
    with pytest.raises(ConfigError, match=pattern) as e:
        run_recipe(path, log=lambda s: None)
    assert not (tmp_path / "runs").exists(), "a stage started before the recipe was checked"
    assert str(path) in str(e.value)
    return str(e.value)


def test_unknown_stage_is_named_with_a_suggestion(tmp_path):
    check_fails_before_work(tmp_path, TOKENIZER + "[pretrian]\nmax_steps = 3\n",
                            r"unknown stage \[pretrian\] \(did you mean \[pretrain\]\?\)")


def test_unknown_pipeline_key_is_named(tmp_path):
    check_fails_before_work(tmp_path, TOKENIZER + "[report]\nattention_txt = 'x'\n",
                            r"\[report\]: unknown key 'attention_txt' \(did you mean 'attention_text'\?\)")
    check_fails_before_work(tmp_path, TOKENIZER + "[evaluate]\nexample = 3\n",
                            r"\[evaluate\]: unknown key 'example'")


def test_unknown_component_key_is_named(tmp_path):
    pytest.importorskip("hanformer.tokenization.trainer")
    check_fails_before_work(tmp_path, f'[tokenizer]\ninput = ["{(SAMPLE / "pretrain.txt").as_posix()}"]\n'
                                      "vocab_sise = 2000\n",
                            r"\[tokenizer\]: unknown key 'vocab_sise' \(did you mean 'vocab_size'\?\)")


def test_missing_data_file_is_named(tmp_path):
    msg = check_fails_before_work(tmp_path, '[tokenizer]\ninput = ["no/such/corpus.txt"]\n',
                                  r"\[tokenizer\]: input = 'no/such/corpus.txt': file not found")
    assert "relative paths are read from" in msg
    body = TOKENIZER + "[data]\n[pretrain]\n" + FINETUNE.replace("test.tsv", "missing-test.tsv")
    check_fails_before_work(tmp_path, body, r"\[finetune.nsmc\]: test = '.*missing-test.tsv': file not found")


def test_stage_without_its_input_is_refused(tmp_path):
    check_fails_before_work(tmp_path, "[data]\ninput = [\"" + (SAMPLE / "pretrain.txt").as_posix() + "\"]\n",
                            r"\[data\]: needs a tokenizer: add a \[tokenizer\] stage or set \[data\] tokenizer")
    check_fails_before_work(tmp_path, TOKENIZER + FINETUNE,
                            r"\[finetune.nsmc\]: needs a model to fine-tune: add a \[pretrain\] stage")
    check_fails_before_work(tmp_path, TOKENIZER + "[pretrain]\n",
                            r"\[pretrain\]: needs token shards: add a \[data\] stage")
    check_fails_before_work(tmp_path, TOKENIZER + "[evaluate]\n",
                            r"\[evaluate\]: nothing to evaluate")


VARIANT_MISTAKES = [  # (what follows [data] and [pretrain], the error it gets)
    ("[variant.scratch]\npretrain = { objective = 'mlm' }\n",
     r"\[variant.scratch\]: a variant is named .* and not pretrained, scratch, tfidf"),
    ("[variant.v]\ndescription = 'nothing'\n", r"\[variant.v\]: changes nothing; give data = "),
    ("[variant.v]\npretrian = { objective = 'mlm' }\n",
     r"\[variant.v\]: unknown key 'pretrian' \(did you mean 'pretrain'\?\)"),
    ("[variant.v]\npretrain = { objectiv = 'mlm' }\n",
     r"\[variant.v\] pretrain: unknown key 'objectiv' \(did you mean 'objective'\?\)"),
    ("[variant.v]\ndata = { entity = { entities = 'kiwi', tags = 3 } }\n", r"\[variant.v\] data: unknown key 'entity.tags'"),
]


@pytest.mark.parametrize(("body", "pattern"), VARIANT_MISTAKES)
def test_variant_tables_are_checked_before_any_work(tmp_path, body, pattern):
    check_fails_before_work(tmp_path, TOKENIZER + "[data]\n[pretrain]\n" + body, pattern)


def test_a_variant_needs_the_pretraining_it_changes(tmp_path):
    check_fails_before_work(tmp_path, TOKENIZER + "[variant.v]\npretrain = { objective = 'mlm' }\n",
                            r"\[variant.v\]: a variant changes the recipe's pretraining: add \[data\] and \[pretrain\]")


def test_finetune_table_shape_and_budget(tmp_path):
    check_fails_before_work(tmp_path, "[finetune]\nnsmc = 3\n", r"\[finetune.nsmc\]: expected a table per task")
    check_fails_before_work(tmp_path, "[finetune.nsmc]\nepochs = 1\n", r"\[finetune.nsmc\]: missing key 'train'")
    check_fails_before_work(tmp_path, TOKENIZER.replace("vocab_size", "budget = 'soon'\nvocab_size"),
                            r"\[tokenizer\]: budget: cannot read duration 'soon'")


def test_recipe_defaults_and_cli_error_line(tmp_path, capsys):
    path = write_recipe(tmp_path, TOKENIZER + FINETUNE)
    recipe = load_recipe(path)
    assert recipe.name == "t" and recipe.run.seed == 42
    assert recipe.finetune["nsmc"].task == "nsmc" and recipe.finetune["nsmc"].scratch is True
    assert recipe.tokenizer.settings == {"vocab_size": 2000}
    bad = write_recipe(tmp_path, "[pretrian]\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hanformer: error: ") and "[pretrian]" in err and "Traceback" not in err


def test_shipped_recipes_parse():
    # pretrain-*.toml are configs of `hanformer pretrain --config`, not run recipes
    paths = [p for p in sorted((REPO / "recipes").glob("*.toml")) if not p.name.startswith("pretrain-")]
    assert {p.stem for p in paths} >= {"demo-ko", "ko-bert-tiny", "ko-bert-mini", "ko-bert-small", "tiny"}
    for path in paths:
        recipe = load_recipe(path)
        if recipe.translation or recipe.language_models:  # encoder-decoders from parallel files; side-by-side LMs
            continue
        assert recipe.tokenizer is not None and recipe.pretrain is not None and recipe.finetune, path


def test_sample_data_is_what_the_readme_says():
    from hanformer.utils.hashing import hash_file

    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    for name in ("pretrain.txt", "train.tsv", "test.tsv"):
        assert hash_file(SAMPLE / name) in readme, name
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "make_nsmc_sample.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "deterministic" in out


PIPELINE = TOKENIZER + "[data]\n\n[pretrain]\nmax_steps = 2\n\n"


@pytest.mark.parametrize("body, pattern", [
    # Values the stages used to parse only once they ran, after the stages before them.
    (PIPELINE.replace("max_steps = 2", 'max_steps = 2\nmodel_config = "big"') + FINETUNE,
     r"\[pretrain\]: model_config = 'big': must be a table of model settings"),
    (PIPELINE.replace("max_steps = 2", 'max_steps = 2\nmodel = "big"') + FINETUNE,
     r"\[pretrain\]: model = 'big': not a model size; choose one of tiny, mini"),
    (PIPELINE.replace("max_steps = 2", "max_steps = 2\nmodel_config = { hiden_size = 64 }") + FINETUNE,
     r"\[pretrain\]: model_config: .*unknown key 'hiden_size' \(did you mean 'hidden_size'\?\)"),
    (PIPELINE.replace("max_steps = 2", "max_steps = 2\nmodel_config = { num_attention_heads = 7 }") + FINETUNE,
     r"\[pretrain\]: model_config: .*num_attention_heads"),
    (PIPELINE + FINETUNE + "seeds = [-1]\n", r"\[finetune.nsmc\]: seeds .*must be a whole number from 0"),
    (PIPELINE + FINETUNE + "seed = -3\n", r"\[finetune.nsmc\]: seed .*must be a whole number from 0"),
    # A component's own check, which used to come without the recipe file and table.
    (PIPELINE.replace("max_steps = 2", "max_steps = 2\nseq_len = 4") + FINETUNE,
     r"\[pretrain\]: seq_len must be >= 8"),
    (PIPELINE + FINETUNE + "[evaluate]\nbatch_size = 0\n", r"\[evaluate\]: batch_size = 0: must be at least 1"),
    (PIPELINE + FINETUNE + "answer_types = true\n",
     r"\[finetune.nsmc\]: answer_types = true needs an extractive-QA task; 'nsmc' is a classification task"),
    (PIPELINE + FINETUNE, None),  # the same recipe without a bad value plans fine
])
def test_values_the_stages_parse_are_checked_by_the_dry_run(tmp_path, capsys, body, pattern):
    pytest.importorskip("hanformer.pretraining.run")
    path = write_recipe(tmp_path, body)
    rc = main(["run", str(path), "--dry-run"])
    err = capsys.readouterr().err
    if pattern is None:
        assert rc == 0, err
        return
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"hanformer: error: {path} [")
    assert re.search(pattern, err), err
    assert not (tmp_path / "runs").exists()


def test_run_table_values_name_the_recipe_file(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text("[run]\nseed = -1\n\n" + TOKENIZER, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))} \[run\]: seed .*from 0 to") as e:
        load_recipe(path)
    assert "\n" not in str(e.value)
