"""The bad-input catalogue: every mistake a user is known to make, walked through the CLI.

Each row is one bad input (files written into a fresh folder) and the command that meets it.
For every row the command must exit with status 2, print exactly one `hanformer: error:` line on
stderr (the last line; a command may have logged progress before it), no traceback, and a
message that names the file or option at fault.

To add a case, append a `BadInput` to `CATALOGUE`: a name, a function that writes the files it
needs under `env.tmp` and returns the argv, and a substring the error line must contain. Most
rows fail before any model is loaded; the few that need a model use the tiny ones of `Env`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from _tiny_checkpoints import make_checkpoint, make_tokenizer
from hanformer.cli.main import main
from hanformer.errors import ConfigError
from hanformer.utils.files import atomic_save, atomic_write, check_output_file

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "nsmc-sample"
NSMC_HEADER = "id\tdocument\tlabel\n"
NSMC_ROWS = "".join(f"{i}\t{'정말 좋아요' if i % 2 else '너무 싫어요'} {i}\t{i % 2}\n" for i in range(40))
NSMC_TASK_JSON = {"task": "nsmc", "kind": "classification", "settings": {"max_length": 32},
                  "labels": ["0", "1"], "label_names": ["negative", "positive"]}


@dataclass
class Env:
    """What rows build their inputs from: a fresh folder and tiny models shared by all rows."""

    tmp: Path
    classifier: Path  # a fine-tuned NSMC classifier folder (weights, tokenizer, task.json)
    bert: Path  # a bare tiny BERT to fine-tune

    def write(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    def folder(self, name: str) -> str:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def classifier_with(self, task_json: str | None = None, nan_weights: bool = False) -> str:
        """A copy of the classifier with another task.json, or with NaN weights."""
        target = self.tmp / "model"
        shutil.copytree(self.classifier, target)
        if task_json is not None:
            (target / "task.json").write_text(task_json, encoding="utf-8")
        if nan_weights:
            from safetensors.torch import load_file, save_file

            weights = load_file(target / "model.safetensors")
            name = next(k for k in weights if k.endswith("dense.weight"))
            weights[name][0, 0] = float("nan")
            save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
        return str(target)

    def recipe(self, extra_pretrain: str = "", extra_finetune: str = "") -> str:
        return self.write("recipe.toml", (
            f'[run]\nname = "t"\nout_dir = "{(self.tmp / "runs").as_posix()}"\n\n'
            f'[tokenizer]\ninput = ["{(SAMPLE / "pretrain.txt").as_posix()}"]\nvocab_size = 2000\n\n'
            f"[data]\n\n[pretrain]\nmax_steps = 2\n{extra_pretrain}\n\n"
            f'[finetune.nsmc]\ntrain = "{(SAMPLE / "train.tsv").as_posix()}"\n{extra_finetune}\n'))


@dataclass(frozen=True)
class BadInput:
    name: str
    argv: Callable[[Env], list[str]]
    expect: str  # a substring of the error line: the file or option, and what is wrong
    stdin: bytes | None = None


def finetune(env: Env, task: str, train: str, *extra: str) -> list[str]:
    return ["finetune", "--task", task, "--model", str(env.bert), "--train", train,
            "--out", str(env.tmp / "out"), "--no-progress", "--no-tensorboard", *extra]


def predict(env: Env, model: str, *extra: str) -> list[str]:
    return ["predict", "--model", model, "--input", env.write("in.txt", "정말 좋아요\n"), "--device", "cpu", *extra]


def evaluate(env: Env, model: str, *extra: str) -> list[str]:
    return ["evaluate", "--model", model, "--data", env.write("test.tsv", NSMC_HEADER + NSMC_ROWS),
            "--device", "cpu", *extra]


def generate(*extra: str) -> list[str]:
    return ["generate", "--model", "no-such-gpt", "--prompt", "서울은", *extra]


KLUE_NER_LOST_LINE = "## id1\t<서울:LC>에 간다\n서\tB-LC\n에\tO\n \tO\n간\tO\n다\tO\n\n"
KORSTS = ("genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
          "g\tf\t2017\t1\t3.2\t가\t나\ng\tf\t2017\t2\t7\t가\t나\n")


CATALOGUE: list[BadInput] = [
    # ---- training data
    BadInput("train file missing", lambda e: finetune(e, "nsmc", str(e.tmp / "missing.tsv")),
             "data file not found: "),
    BadInput("train file is a folder", lambda e: finetune(e, "nsmc", e.folder("train.tsv")),
             "is a directory, expected a file"),
    BadInput("unknown task", lambda e: finetune(e, "nope", e.write("t.tsv", NSMC_HEADER + NSMC_ROWS)),
             "unknown task 'nope'"),
    BadInput("TSV row with a missing column", lambda e: finetune(
        e, "nsmc", e.write("train.tsv", NSMC_HEADER + "1\t좋아요\t1\n2\t싫어요\n"), "--on-error", "fail"),
        "train.tsv:3: 2 columns, expected 3"),
    BadInput("TSV header without the text column", lambda e: finetune(
        e, "nsmc", e.write("train.tsv", "id\ttext\tlabel\n1\t좋아요\t1\n")), "train.tsv:1: header has no column 'document'"),
    BadInput("label outside the task's labels", lambda e: finetune(
        e, "nsmc", e.write("train.tsv", NSMC_HEADER + "1\t좋아요\t5\n"), "--on-error", "fail"),
        "train.tsv:2: unknown label '5'"),
    BadInput("non-UTF-8 training file", lambda e: finetune(
        e, "nsmc", e.write("cp949.tsv", NSMC_HEADER.encode() + "1\t좋아요\t1\n".encode("cp949"))),
        "cp949.tsv:2: not valid UTF-8"),
    BadInput("JSON list that is not JSON", lambda e: finetune(
        e, "klue-nli", e.write("nli.json", '[{"premise": "a", "hypothesis": "b", "gold_label": "neutral"},\n')),
        "nli.json:2: invalid JSON"),
    BadInput("JSON-lines record that is not JSON", lambda e: finetune(
        e, "classification", e.write("t.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", \n'),
        "--on-error", "fail"), "t.jsonl:2: invalid JSON"),
    BadInput("KLUE-NER sentence with a character line removed", lambda e: finetune(
        e, "klue-ner", e.write("ner.tsv", KLUE_NER_LOST_LINE), "--on-error", "fail"),
        "ner.tsv:2: the character lines spell 5 characters but the sentence on line 1 has 6"),
    BadInput("KorSTS score outside 0-5", lambda e: finetune(
        e, "korsts", e.write("sts.tsv", KORSTS), "--on-error", "fail"),
        "sts.tsv:3: score '7' in field 'score' is outside 0-5"),
    BadInput("--label-names with the wrong count", lambda e: finetune(
        e, "classification", e.write("t.csv", "text,label\n" + "좋아요,1\n싫어요,0\n" * 10),
        "--label-names", "bad,ok,good", "--max-steps", "1"),
        "label_names (--label-names): 3 names (bad, ok, good) for 2 labels (0, 1)"),
    BadInput("--label-names for a regression task", lambda e: finetune(
        e, "korsts", e.write("sts.tsv", KORSTS.replace("\t7\t", "\t4\t")), "--label-names", "low"),
        "label_names (--label-names): 'korsts' is a regression task"),
    BadInput("missing --config file", lambda e: ["finetune", "--config", str(e.tmp / "none.toml")],
             "config file not found: "),
    BadInput("baseline on a one-class training set", lambda e: [
        "baseline", "--task", "classification",
        "--train", e.write("one.csv", "text,label\n" + "좋아요 정말,good\n" * 30)],
        "one.csv: every training example has the label 'good'; a classifier needs at least two classes"),
    # ---- fine-tuned model folders
    BadInput("model folder missing", lambda e: predict(e, str(e.tmp / "nothing")),
             "checkpoint directory not found: {tmp}/nothing"),
    BadInput("model folder without config.json", lambda e: predict(e, e.folder("empty")), "{tmp}/empty: no model here"),
    BadInput("task.json that is not JSON", lambda e: predict(e, e.classifier_with('{"task": "nsmc",')),
             "task.json: not valid JSON"),
    BadInput("task.json without its task", lambda e: predict(e, e.classifier_with('{"kind": "classification"}')),
             "task.json (field 'task'): missing"),
    BadInput("task.json naming an unknown task", lambda e: predict(
        e, e.classifier_with(json.dumps({**NSMC_TASK_JSON, "task": "sentiment"}))),
        "task.json (field 'task'): unknown task 'sentiment'"),
    BadInput("task.json whose kind does not fit its task", lambda e: evaluate(
        e, e.classifier_with(json.dumps({**NSMC_TASK_JSON, "kind": "qa"}))),
        "task.json (field 'kind'): 'qa', but task 'nsmc' is a classification task"),
    BadInput("task.json with settings of the wrong type", lambda e: predict(
        e, e.classifier_with(json.dumps({**NSMC_TASK_JSON, "settings": {"max_length": "long"}}))),
        "task.json [settings]: max_length must be an integer"),
    BadInput("weights holding NaN (predict)", lambda e: predict(e, e.classifier_with(nan_weights=True)),
             "are NaN or inf, so its weights hold NaN/inf values"),
    BadInput("weights holding NaN (evaluate)", lambda e: evaluate(e, e.classifier_with(nan_weights=True)),
             "are NaN or inf, so its weights hold NaN/inf values"),
    # ---- prediction input
    BadInput("predict input file missing", lambda e: ["predict", "--model", str(e.classifier),
                                                      "--input", str(e.tmp / "none.txt")], "input file not found: "),
    BadInput("non-UTF-8 standard input", lambda e: ["predict", "--model", str(e.classifier), "--device", "cpu"],
             "<stdin>:2: not valid UTF-8 at byte 17", stdin="좋아요 정말\n".encode() + "싫어요\n".encode("cp949")),
    BadInput("pair task given single texts", lambda e: predict(
        e, e.classifier_with(json.dumps({**NSMC_TASK_JSON, "task": "klue-nli",
                                         "labels": ["entailment", "neutral", "contradiction"], "label_names": None}))),
        "in.txt:1: task 'klue-nli' takes sentence pairs"),
    BadInput("predict --batch-size 0", lambda e: predict(e, str(e.classifier), "--batch-size", "0"),
             "--batch-size 0: must be at least 1"),
    BadInput("evaluate data file missing", lambda e: [
        "evaluate", "--model", str(e.classifier), "--data", str(e.tmp / "none.tsv")], "data file not found: "),
    # ---- output paths
    BadInput("predict --output is a folder", lambda e: predict(e, str(e.classifier), "--output", e.folder("preds")),
             "--output " + "{tmp}/preds: is a directory"),
    BadInput("predict --output under a file", lambda e: predict(
        e, str(e.classifier), "--output", e.write("file", "x") + "/preds.jsonl"), "file is a file, not a folder"),
    BadInput("predict --output is its --input", lambda e: [
        "predict", "--model", str(e.classifier), "--input", e.write("in.txt", "좋아요\n"),
        "--output", str(e.tmp / "in.txt")], "is also the input file"),
    BadInput("evaluate --out is a folder", lambda e: evaluate(e, str(e.classifier), "--out", e.folder("eval")),
             "--out {tmp}/eval: is a directory"),
    BadInput("baseline --out is a folder", lambda e: [
        "baseline", "--task", "nsmc", "--train", e.write("t.tsv", NSMC_HEADER + NSMC_ROWS), "--out", e.folder("b")],
        "--out {tmp}/b: is a directory"),
    BadInput("embed --output is a folder", lambda e: [
        "embed", "--model", str(e.classifier), "a", "b", "--output", e.folder("emb")], "--output {tmp}/emb: is a directory"),
    BadInput("attention --out is a folder", lambda e: [
        "attention", "--model", str(e.classifier), "--text", "좋아요", "--out", e.folder("att")],
        "--out {tmp}/att: is a directory"),
    BadInput("generate --output is a folder", lambda e: generate("--output", e.folder("gen")),
             "--output {tmp}/gen: is a directory"),
    # ---- settings
    BadInput("embed an empty text", lambda e: ["embed", "--model", str(e.classifier), ""],
             "embed: text 1 of 1 is empty"),
    BadInput("generate --temperature inf", lambda e: generate("--do-sample", "--temperature", "inf"),
             "temperature = inf: must be a finite number"),
    BadInput("generate --temperature nan", lambda e: generate("--temperature", "nan"),
             "temperature = nan: must be a finite number"),
    BadInput("generate --temperature -1", lambda e: generate("--temperature", "-1"), "temperature = -1.0: must be > 0"),
    BadInput("generate --top-p 1.5", lambda e: generate("--top-p", "1.5"), "top_p = 1.5: must be in (0, 1]"),
    BadInput("generate --top-k -1", lambda e: generate("--top-k", "-1"), "top_k = -1: must be >= 0"),
    BadInput("generate --top-k abc", lambda e: generate("--top-k", "abc"), "command line: --top-k must be an integer"),
    BadInput("generate --max-new-tokens 0", lambda e: generate("--max-new-tokens", "0"),
             "max_new_tokens = 0: must be at least 1"),
    BadInput("generate --num-beams 0", lambda e: generate("--num-beams", "0"), "num_beams = 0: must be at least 1"),
    BadInput("generate --repetition-penalty inf", lambda e: generate("--repetition-penalty", "inf"),
             "repetition_penalty = inf: must be a finite number"),
    # ---- recipes (the dry run must catch what the stages parse later)
    BadInput("recipe model_config that is not a table", lambda e: [
        "run", e.recipe(extra_pretrain='model_config = "big"'), "--dry-run"],
        "recipe.toml [pretrain]: model_config = 'big': must be a table"),
    BadInput("recipe model preset that does not exist", lambda e: [
        "run", e.recipe(extra_pretrain='model = "big"'), "--dry-run"], "recipe.toml [pretrain]: model = 'big'"),
    BadInput("recipe seeds = [-1]", lambda e: ["run", e.recipe(extra_finetune="seeds = [-1]"), "--dry-run"],
             "recipe.toml [finetune.nsmc]: seeds"),
    BadInput("recipe unknown stage table", lambda e: [
        "run", e.write("r.toml", "[pretrian]\nmax_steps = 1\n"), "--dry-run"], "r.toml: unknown stage [pretrian]"),
    # ---- checkpoints
    BadInput("inspect a folder that does not exist", lambda e: ["inspect", str(e.tmp / "none")],
             "checkpoint directory not found"),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(classifier, bert): tiny checkpoints made once for the rows that need a model."""
    tokenizer = make_tokenizer(tmp_path_factory.mktemp("tok"))
    classifier = make_checkpoint(tmp_path_factory.mktemp("cls"), tokenizer, "BertForSequenceClassification",
                                 ["negative", "positive"])
    (classifier / "task.json").write_text(json.dumps(NSMC_TASK_JSON), encoding="utf-8")
    bert = make_checkpoint(tmp_path_factory.mktemp("bert"), tokenizer, "BertForPreTraining")
    return classifier, bert


def test_catalogue_names_are_unique():
    names = [row.name for row in CATALOGUE]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("row", CATALOGUE, ids=[row.name for row in CATALOGUE])
def test_bad_input_is_one_line_naming_its_source(row, models, tmp_path, capsys, monkeypatch):
    env = Env(tmp_path, *models)
    argv = row.argv(env)
    if row.stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(row.stdin), encoding="utf-8"))
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc == 2, err
    lines = err.rstrip("\n").split("\n")
    error_lines = [line for line in lines if line.startswith("hanformer: error:")]
    assert len(error_lines) == 1 and lines[-1] == error_lines[0], err
    assert row.expect.format(tmp=tmp_path) in error_lines[0], err


# ---- the one output-path check, directly

def test_output_check_refuses_existing_files_only_when_asked(tmp_path):
    existing = tmp_path / "a.json"
    existing.write_text("{}", encoding="utf-8")
    assert check_output_file(existing) == existing
    assert check_output_file(tmp_path / "new" / "deeper" / "b.json") == tmp_path / "new" / "deeper" / "b.json"
    with pytest.raises(ConfigError, match=r"--out .*a.json: already exists; remove it or choose another name"):
        check_output_file(existing, "--out", overwrite=False)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_output_check_refuses_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match=r"the folder .*locked is not writable \(permissions\)"):
            check_output_file(locked / "sub" / "out.json", "--output")
    finally:
        locked.chmod(0o700)


def test_output_check_names_a_folder_without_write_permission(tmp_path, monkeypatch):
    # What os.access answers for a read-only folder (root ignores chmod, so it is simulated).
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ConfigError, match=r"^--output .*out.json: the folder .* is not writable \(permissions\)"):
        check_output_file(tmp_path / "out.json", "--output")


def test_atomic_writes_refuse_a_folder_in_one_line(tmp_path):
    """Every command writes through these, so a folder in the way is a message, not a traceback."""
    folder = tmp_path / "out.json"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        with atomic_write(folder) as f:
            f.write("x")
    with pytest.raises(ConfigError, match="is a directory"):
        atomic_save(folder, lambda tmp: Path(tmp).write_text("x"))
    assert folder.is_dir() and not any(folder.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary files left behind


def test_serving_engine_refuses_a_model_with_nan_weights(models, tmp_path):
    """The web app answers through the same inference path: an error, not `probability: NaN`."""
    from hanformer.errors import CheckpointError
    from hanformer.serving.config import ServeConfig
    from hanformer.serving.engine import InferenceEngine

    engine = InferenceEngine(Env(tmp_path, *models).classifier_with(nan_weights=True), ServeConfig())
    with pytest.raises(CheckpointError, match="outputs \\(logits\\) are NaN or inf"):
        engine.predict(["정말 좋아요"])
    healthy = InferenceEngine(models[0], ServeConfig())
    assert healthy.predict(["정말 좋아요"])[0]["label"] in ("negative", "positive")
