"""The skeleton: CLI entry point, typed configs, atomic files, friendly errors."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

import hanformer
from hanformer.cli.main import main
from hanformer.errors import ConfigError, InputError
from hanformer.utils.config import (
    add_config_arguments,
    config_from_sources,
    load_config,
    parse_duration,
    setting,
)
from hanformer.utils.files import atomic_write, iter_lines


@dataclasses.dataclass
class ExampleConfig:
    steps: int = setting(10, "number of steps")
    lr: float = setting(1e-3, "learning rate")
    optimizer: Literal["adamw", "sgd"] = setting("adamw", "which optimizer")
    bf16: bool = setting(False, "use bfloat16")
    files: list[str] = setting([], "input files")
    max_time: str | None = setting(None, "wall-clock budget")


def test_cli_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "hanformer" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "hanformer.cli.main", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "usage: hanformer" in out


def test_config_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown key 'step' \(did you mean 'steps'\?\)"):
        load_config(ExampleConfig, {"step": 3}, "train.toml")


def test_config_types_are_checked():
    with pytest.raises(ConfigError, match="train.toml: steps must be an integer"):
        load_config(ExampleConfig, {"steps": "many"}, "train.toml")
    with pytest.raises(ConfigError, match="not one of 'adamw', 'sgd'"):
        load_config(ExampleConfig, {"optimizer": "adam"}, "train.toml")
    cfg = load_config(ExampleConfig, {"steps": 5, "lr": 1, "files": "a,b", "bf16": "yes"})
    assert cfg == ExampleConfig(steps=5, lr=1.0, files=["a", "b"], bf16=True)


def test_cli_flags_override_toml():
    import argparse

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ExampleConfig)
    args = parser.parse_args(["--lr", "0.5", "--bf16", "--max-time", "1h"])
    cfg = config_from_sources(ExampleConfig, {"steps": 7, "lr": 0.1}, args)
    assert (cfg.steps, cfg.lr, cfg.bf16, cfg.max_time) == (7, 0.5, True, "1h")
    assert "learning rate [default: 0.001]" in parser.format_help()


def test_parse_duration():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("45") == 45
    with pytest.raises(ConfigError):
        parse_duration("soon")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("new, half written")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_iter_lines_reports_bad_utf8_position(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes("첫 줄\n".encode() + b"ab\xffcd\n")
    with pytest.raises(InputError, match=r"bad.txt:2: not valid UTF-8 at byte 10"):
        list(iter_lines(p))


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        target = tmp_path / "report.html"
        with atomic_write(target) as f:
            f.write("<html></html>")
        assert (target.stat().st_mode & 0o777) == 0o644
    finally:
        os.umask(mask)


def test_cli_help_does_not_import_torch():
    # `hanformer --help` must stay instant: command modules import torch inside handlers only.
    code = ("import sys; from hanformer.cli.main import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("module, must_not_load", [
    # the page renderer takes any object with the data's fields: the data module (and torch) stay out
    ("hanformer.visualization.html", ("hanformer.visualization.attention", "torch")),
])
def test_lower_modules_do_not_import_the_ones_above_them(module, must_not_load):
    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in {must_not_load!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fine_tuning_does_not_import_evaluation_even_inside_a_function():
    # evaluate imports finetune; model-folder resolution lives in tasks/model_dir.py so that
    # finetune needs nothing from evaluate (no import cycle, not even a deferred one).
    tree = ast.parse(Path(hanformer.__file__).with_name("tasks").joinpath("finetune.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "hanformer.tasks.model_dir" in imported
    assert "hanformer.tasks.evaluate" not in imported
