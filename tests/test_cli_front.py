"""The command line's front door: `python -m hanformer`, bare commands and groups, and the one
settings resolver every command can use (defaults < TOML file given with --config < flags)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from hanformer import __version__
from hanformer.cli._common import add_settings, settings
from hanformer.cli.main import build_parser, main
from hanformer.errors import ConfigError
from hanformer.utils.config import setting
from hanformer.utils.settings_cli import add_settings_arguments, resolve_settings

# ---- python -m hanformer, bare commands ------------------------------------------------------


def _module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hanformer", *args], capture_output=True, text=True,
                          timeout=120)


def test_python_dash_m_hanformer_is_the_command_line():
    version = _module("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"hanformer {__version__}"
    train_help = _module("tokenizer", "train", "--help")
    assert train_help.returncode == 0, train_help.stderr
    assert train_help.stdout.startswith("usage: hanformer tokenizer train")
    assert "--vocab-size" in train_help.stdout


def test_the_quick_start_recipe_plans_through_python_dash_m(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    plan = subprocess.run([sys.executable, "-m", "hanformer", "run", "recipes/demo-ko.toml", "--dry-run",
                           "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=repo)
    assert plan.returncode == 0, plan.stderr
    assert "plan for recipes/demo-ko.toml" in plan.stderr  # the plan is a log, on stderr
    assert "pretrain" in plan.stderr and not any(tmp_path.iterdir())  # a plan writes nothing


def test_bare_python_dash_m_hanformer_prints_help_and_exits_2():
    bare = _module()
    assert bare.returncode == 2
    assert bare.stderr.startswith("usage: hanformer") and "commands:" in bare.stderr
    assert bare.stdout == ""


def _command_groups(parser: argparse.ArgumentParser) -> list[str]:
    """Names of the commands that have subcommands of their own (`tokenizer`, `data`, ...)."""
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [name for name, sub in top.choices.items()
            if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)]


def test_bare_hanformer_and_every_bare_group_print_their_help_and_exit_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: hanformer [-h] [--version] COMMAND")
    assert captured.out == ""
    groups = _command_groups(build_parser())
    assert {"tokenizer", "data"} <= set(groups)
    for group in groups:
        assert main([group]) == 2, group
        captured = capsys.readouterr()
        assert captured.err.startswith(f"usage: hanformer {group} "), group
        assert "subcommands:" in captured.err and captured.out == ""


def test_every_command_formats_its_help():
    # argparse %-formats help strings, so one setting whose text says "N%" broke `pretrain --help`
    commands = _all_commands(build_parser())
    assert {"pretrain", "finetune", "tokenizer train"} <= set(commands)
    for name, parser in commands.items():
        assert parser.format_help().startswith(f"usage: hanformer {name}"), name


def test_a_complete_command_still_runs(tmp_path, capsys):
    from hanformer.tokenization.tokenizer import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "가", "##나"]
    Tokenizer.build({t: i for i, t in enumerate(tokens)}).save_pretrained(tmp_path)
    assert main(["tokenizer", "encode", "--tokenizer", str(tmp_path), "가나", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == ["[CLS]", "가", "##나", "[SEP]"]


# ---- the settings resolver -------------------------------------------------------------------


@dataclasses.dataclass
class InnerConfig:
    lr: float = setting(1e-3, "learning rate")
    steps: int = setting(10, "inner steps")
    out: str = setting("runs/inner", "output directory")


@dataclasses.dataclass
class OuterConfig:
    name: str = setting("demo", "a name")
    mode: Literal["fast", "slow"] = setting("fast", "how")
    sizes: list[int] = setting([], "sizes")
    extra: dict = setting({}, "extra settings")
    verbose: bool = setting(False, "say more")
    steps: int = setting(0, "outer steps")  # same flag as InnerConfig.steps: one must be skipped
    # The outer class's own default for its table differs from InnerConfig's (as fine-tuning's
    # trainer defaults differ from pretraining's).
    inner: InnerConfig = dataclasses.field(default_factory=lambda: InnerConfig(lr=5e-5))


def _parser(**options) -> tuple[argparse.ArgumentParser, object]:
    parser = argparse.ArgumentParser(prog="demo")
    spec = add_settings_arguments(parser, OuterConfig, skip=("inner.steps",), **options)
    return parser, spec


def _resolve(argv: list[str], **options) -> OuterConfig:
    parser, spec = _parser(**options)
    return resolve_settings(spec, parser.parse_args(argv))


def _toml(tmp_path, text: str):
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_then_the_toml_file_then_the_flags(tmp_path):
    assert _resolve([]) == OuterConfig()
    assert _resolve([]).inner.lr == 5e-5  # the outer class's table default, not InnerConfig's
    path = _toml(tmp_path, 'name = "from-file"\nmode = "slow"\nsteps = 3\n'
                           '[inner]\nsteps = 7\nlr = 0.5\n')
    cfg = _resolve(["--config", path, "--lr", "0.25", "--sizes", "1,2", "--verbose"])
    assert cfg == OuterConfig(name="from-file", mode="slow", sizes=[1, 2], verbose=True, steps=3,
                              inner=InnerConfig(lr=0.25, steps=7, out="runs/inner"))
    # A [inner] table merges key by key: what the file leaves out keeps the command's default.
    cfg = _resolve(["--config", _toml(tmp_path, "[inner]\nsteps = 2\n")], defaults={"inner": {"out": "runs/cmd"}})
    assert cfg.inner == InnerConfig(lr=5e-5, steps=2, out="runs/cmd")
    cfg = _resolve(["--config", _toml(tmp_path, '[inner]\nout = "runs/file"\n'), "--out", "runs/flag"],
                   defaults={"inner": {"out": "runs/cmd"}})
    assert cfg.inner.out == "runs/flag"


def test_dict_settings_take_key_value_flags(tmp_path):
    assert _resolve(["--extra", "hidden_size=64,name=x,deep=true"]).extra == {"hidden_size": 64, "name": "x",
                                                                            "deep": True}
    assert _resolve(["--extra", '{"a": [1, 2]}']).extra == {"a": [1, 2]}
    parser, _ = _parser()
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["--extra", "no-equals-sign"])
    assert e.value.code == 2


@pytest.mark.parametrize(("toml", "argv", "message"), [
    ("nmae = 'x'\n", [], r"settings.toml: unknown key 'nmae' \(did you mean 'name'\?\); valid keys: name, "),
    ("[inner]\nlrr = 1\n", [], r"settings.toml \[inner\]: unknown key 'lrr' \(did you mean 'lr'\?\)"),
    ("steps = 'many'\n", [], r"settings.toml: steps must be an integer, got 'many'"),
    ("mode = 'medium'\n", [], r"settings.toml: mode = 'medium' is not one of 'fast', 'slow'"),
    ("[inner]\nlr = 'high'\n", [], r"settings.toml \[inner\]: lr must be a number, got 'high'"),
    ("inner = 3\n", [], r"settings.toml: \[inner\] must be a table"),
    ("", ["--steps", "many"], r"^command line: --steps must be an integer, got 'many'"),
    ("", ["--lr", "high"], r"^command line: --lr must be a number, got 'high'"),
    ("name = \n", [], r"settings.toml: invalid TOML"),
])
def test_errors_name_the_file_and_key_or_the_flag(tmp_path, toml, argv, message):
    with pytest.raises(ConfigError, match=message):
        _resolve(["--config", _toml(tmp_path, toml), *argv])


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*nowhere.toml"):
        _resolve(["--config", str(tmp_path / "nowhere.toml")])


def test_a_skipped_field_has_no_flag_but_stays_settable_in_the_file(tmp_path):
    parser, spec = _parser()
    # --steps is OuterConfig.steps; InnerConfig.steps is reached through the file only.
    cfg = resolve_settings(spec, parser.parse_args(["--config", _toml(tmp_path, "[inner]\nsteps = 4\n"),
                                                    "--steps", "9"]))
    assert (cfg.steps, cfg.inner.steps) == (9, 4)
    with pytest.raises(ValueError, match=r"InnerConfig.steps: --steps is taken already; pass skip=\('inner.steps',\)"):
        add_settings_arguments(argparse.ArgumentParser(), OuterConfig)


def test_help_shows_the_defaults_that_apply():
    parser, _ = _parser(defaults={"inner": {"out": "runs/cmd"}})
    text = " ".join(parser.format_help().split())
    assert "--config FILE.toml" in text
    assert "learning rate [default: 5e-05]" in text
    assert "output directory [default: 'runs/cmd']" in text
    assert "InnerConfig settings (TOML file given with --config: [inner] table)" in text


def test_command_defaults_are_checked_like_a_file():
    with pytest.raises(ConfigError, match=r"defaults of OuterConfig \[inner\]: unknown key 'output'"):
        _parser(defaults={"inner": {"output": "x"}})


@dataclasses.dataclass
class NeedsDataConfig:
    data: str = setting(help="input folder")
    seed: int = setting(0, "seed")


def test_a_required_setting_missing_everywhere_says_how_to_give_it(tmp_path):
    parser = argparse.ArgumentParser()
    spec = add_settings_arguments(parser, NeedsDataConfig)
    with pytest.raises(ConfigError, match=r"^command line: missing setting 'data': give --data or set it "
                                          r"in the TOML file \(--config\)"):
        resolve_settings(spec, parser.parse_args([]))
    from_file = parser.parse_args(["--config", _toml(tmp_path, "data = 'corpus'\n")])
    assert resolve_settings(spec, from_file) == NeedsDataConfig(data="corpus")


def test_one_call_to_register_and_one_to_read_in_a_command():
    parser = argparse.ArgumentParser(prog="hanformer")
    sub = parser.add_subparsers(dest="command")
    command = sub.add_parser("demo")
    add_settings(command, OuterConfig, skip=("inner.steps",))
    args = parser.parse_args(["demo", "--name", "x", "--lr", "0.1"])
    cfg = settings(args, OuterConfig)
    assert (cfg.name, cfg.inner.lr) == ("x", 0.1)
    with pytest.raises(ValueError, match="InnerConfig was not registered"):
        settings(args, InnerConfig)
    with pytest.raises(ValueError, match="add_settings was called twice"):
        add_settings(command, InnerConfig)


def test_the_real_training_configs_register_and_keep_their_table_defaults(tmp_path):
    from hanformer.pretraining.config import PretrainConfig
    from hanformer.tasks.finetune_config import FINETUNE_TRAINER_DEFAULTS, FinetuneConfig

    parser = argparse.ArgumentParser()
    spec = add_settings_arguments(parser, FinetuneConfig, skip=("trainer.output_dir", "trainer.max_steps"))
    path = _toml(tmp_path, "model = 'm'\ntrain = 't'\n[data]\ntext_column = 'review'\n[trainer]\nwarmup_ratio = 0.2\n")
    cfg = resolve_settings(spec, parser.parse_args(["--config", path, "--batch-size", "8"]))
    assert (cfg.model, cfg.batch_size, cfg.data.text_column) == ("m", 8, "review")
    assert cfg.trainer.lr == FINETUNE_TRAINER_DEFAULTS["lr"] and cfg.trainer.warmup_ratio == 0.2

    parser = argparse.ArgumentParser()
    spec = add_settings_arguments(parser, PretrainConfig, defaults={"trainer": {"output_dir": "runs/pretrain"}})
    cfg = resolve_settings(spec, parser.parse_args(["--data", "shards", "--model-config", "hidden_size=64",
                                                    "--lr", "1e-3"]))
    assert cfg.model_config == {"hidden_size": 64}
    assert (cfg.trainer.lr, cfg.trainer.output_dir) == (1e-3, "runs/pretrain")


# ---- every command reads its settings through the one resolver --------------------------------

# The commands that take a config class, and that class.
SETTINGS_COMMANDS = {
    "pretrain": "PretrainConfig", "finetune": "FinetuneConfig", "evaluate": "EvaluateConfig",
    "predict": "PredictConfig", "baseline": "BaselineConfig", "generate": "GenerationConfig",
    "embed": "EmbedConfig", "attention": "AttentionViewConfig", "serve": "ServeConfig",
    "data prepare": "PrepareConfig", "rnn train": "RNNTrainConfig", "translate": "TranslateConfig",
    "translation train": "TranslationTrainConfig",
}


def _all_commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every runnable command by its full name ('finetune', 'data prepare')."""
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if action is None:
        return {prefix.strip(): parser}
    out: dict[str, argparse.ArgumentParser] = {}
    for name, sub in action.choices.items():
        out.update(_all_commands(sub, f"{prefix}{name} "))
    return out


def test_every_command_with_a_config_class_takes_config_and_a_flag_per_field():
    from hanformer.cli._common import SETTINGS_DEST

    commands = _all_commands(build_parser())
    registered = {name: p.get_default(SETTINGS_DEST) for name, p in commands.items()
                  if p.get_default(SETTINGS_DEST) is not None}
    assert {name: spec.cls.__name__ for name, spec in registered.items()} == SETTINGS_COMMANDS
    for name, spec in registered.items():
        options = commands[name]._option_string_actions
        assert "--config" in options, name
        assert all(binding.flag in options for binding in spec.flags), name
    # The flags the README and the recipes use are still there.
    assert {"--model-config", "--max-time", "--output-dir", "--resume", "--print-config"} <= set(
        commands["pretrain"]._option_string_actions)
    assert {"--out", "--max-steps", "--lr", "--text-column", "--list-tasks", "--seeds"} <= set(
        commands["finetune"]._option_string_actions)
    assert "--output-dir" not in commands["finetune"]._option_string_actions  # --out places the run


class Captured(Exception):
    """Raised by the stand-in for a command's library function, with the config it was given."""

    def __init__(self, config: object) -> None:
        super().__init__("captured")
        self.config = config


def _capture(*args, **kwargs):
    raise Captured(next(a for a in (*args, *kwargs.values()) if dataclasses.is_dataclass(a)))


# command, the library function it calls, the TOML file, the flags, what the config must hold
FILE_THEN_FLAGS = [
    ("evaluate", "hanformer.tasks.evaluate.evaluate",
     'model = "m"\ndata = "d.tsv"\nseed = 3\nbatch_size = 8\n[data_options]\ntext_column = "review"\n',
     ["--batch-size", "16"],
     lambda c: (c.model, c.data, c.seed, c.batch_size, c.data_options.text_column) == ("m", "d.tsv", 3, 16, "review")),
    ("predict", "hanformer.tasks.predict.predict", 'model = "m"\nbatch_size = 4\ntop_k = 2\n', ["--top-k", "7"],
     lambda c: (c.model, c.batch_size, c.top_k) == ("m", 4, 7)),
    ("embed", "hanformer.embedding.encode.embed", 'pooling = "cls"\nbatch_size = 4\n',
     ["--model", "m", "--batch-size", "2", "a", "b"],
     lambda c: (c.pooling, c.batch_size, c.normalize) == ("cls", 2, True)),
    ("pretrain", "hanformer.pretraining.run.pretrain",
     'data = "shards"\nseq_len = 64\n[model_config]\nhidden_size = 64\n[trainer]\nlr = 0.01\nmax_steps = 5\n',
     ["--lr", "0.002", "--batch-size", "4"],
     lambda c: (c.data, c.seq_len, c.batch_size, c.model_config, c.trainer.lr, c.trainer.max_steps,
                c.trainer.output_dir) == ("shards", 64, 4, {"hidden_size": 64}, 0.002, 5, "runs/pretrain")),
    ("finetune", "hanformer.tasks.finetune.finetune",
     'task = "nsmc"\nmodel = "m"\ntrain = "t.tsv"\nbatch_size = 8\n[data]\non_error = "fail"\n'
     '[trainer]\nlr = 1e-4\nwarmup_ratio = 0.2\n',
     ["--lr", "3e-5", "--batch-size", "4"],
     lambda c: (c.task, c.batch_size, c.data.on_error, c.trainer.lr, c.trainer.warmup_ratio,
                c.trainer.weight_decay) == ("nsmc", 4, "fail", 3e-5, 0.2, 0.01)),  # 0.01: fine-tuning's default
    ("generate", "hanformer.generation.api.generate", "max_new_tokens = 7\ntop_k = 3\nstop_strings = ['.']\n",
     ["--model", "m", "--prompt", "x", "--top-k", "9"],
     lambda c: (c.max_new_tokens, c.top_k, c.stop_strings) == (7, 9, ["."])),
]


@pytest.mark.parametrize(("command", "function", "toml", "flags", "check"), FILE_THEN_FLAGS,
                         ids=[row[0] for row in FILE_THEN_FLAGS])
def test_a_toml_file_sets_a_commands_settings_and_a_flag_overrides_it(tmp_path, monkeypatch, command, function,
                                                                     toml, flags, check):
    module, _, name = function.rpartition(".")
    monkeypatch.setattr(f"{module}.{name}", _capture)
    if command == "generate":  # no checkpoint: the settings are what is looked at
        monkeypatch.setattr("hanformer.generation.api.load_generator", lambda model: (None, None))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Captured) as captured:
        main([command, "--config", _toml(tmp_path, toml), *flags])
    assert check(captured.value.config), captured.value.config


def test_a_bad_key_in_a_commands_toml_file_is_named_with_the_file(tmp_path, capsys):
    path = _toml(tmp_path, "model = 'm'\ntopk = 3\n")
    assert main(["predict", "--config", path]) == 2
    assert capsys.readouterr().err == (f"hanformer: error: {path}: unknown key 'topk' (did you mean 'top_k'?); "
                                       "valid keys: model, input, output, task, batch_size, top_k, threads, device, entities\n")


# ---- fine-tuning checks --model before it reads any data ---------------------------------------


@pytest.mark.parametrize(("model", "message"), [
    ("runs/x/no-model", "--model: checkpoint directory not found: runs/x/no-model"),
    ("empty", "--model: empty: no model here (no config.json in it, nor in best/ or final/)"),
    ("klue/bert-base", "--model: klue/bert-base: not a folder and not in the Hugging Face cache at "),
])
def test_finetune_names_a_bad_model_before_it_reads_any_data(tmp_path, monkeypatch, capsys, model, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "empty").mkdir()
    # The training file does not exist: an error about it would mean the data was read first.
    assert main(["finetune", "--task", "nsmc", "--model", model, "--train", "no-such-train.tsv",
                 "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hanformer: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


# ---- a model named by its Hugging Face cache name brings its tokenizer -------------------------


def _tiny_vocabulary():
    from hanformer.tokenization.tokenizer import Tokenizer

    chars = sorted(set("좋아요정말싫어너무재밌다"))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *("##" + c for c in chars)]
    return Tokenizer.build({t: i for i, t in enumerate(tokens)})


def _cached(tmp_path, monkeypatch, repo_id: str, checkpoint: Path) -> None:
    """`checkpoint` laid out in a fresh Hugging Face cache as `repo_id`; no folder of that name here."""
    from test_hf_cache import lay_out_cache

    lay_out_cache(tmp_path / "hub", repo_id, checkpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)


def test_finetune_reads_the_tokenizer_of_a_cached_hub_model(tmp_path, monkeypatch, capsys):
    from _tiny_checkpoints import make_checkpoint

    base = make_checkpoint(tmp_path / "base", _tiny_vocabulary(), "BertForPreTraining")
    _cached(tmp_path, monkeypatch, "owner/tiny-bert", base)
    rows = "".join(f"{i}\t{'정말 좋아요' if i % 2 else '너무 싫어요'}\t{i % 2}\n" for i in range(20))
    (tmp_path / "train.tsv").write_text("id\tdocument\tlabel\n" + rows, encoding="utf-8")
    assert main(["finetune", "--task", "nsmc", "--model", "owner/tiny-bert", "--train", "train.tsv",
                 "--out", "run", "--max-steps", "1", "--batch-size", "4", "--max-length", "16",
                 "--device", "cpu", "--no-progress", "--no-tensorboard", "--peak-tflops", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["best_model"] == str(Path("run") / "best")
    assert (tmp_path / "run" / "best" / "vocab.txt").read_text(encoding="utf-8") == (
        base / "vocab.txt").read_text(encoding="utf-8")


def test_generate_reads_the_tokenizer_of_a_cached_hub_model(tmp_path, monkeypatch, capsys):
    from _tiny_checkpoints import make_gpt_checkpoint

    _cached(tmp_path, monkeypatch, "owner/tiny-gpt", make_gpt_checkpoint(tmp_path / "gpt", _tiny_vocabulary()))
    assert main(["generate", "--model", "owner/tiny-gpt", "--prompt", "정말", "--max-new-tokens", "3",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prompt"] == "정말" and result["generated_tokens"] == 3
