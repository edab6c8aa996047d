"""src/ is type-clean: mypy, configured by pyproject.toml's [tool.mypy], reports no errors.

Both tests run mypy in-process with the repository's own configuration and its cache
(`.mypy_cache`, git-ignored), so a second run only re-checks what changed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pyproject.toml"


def _mypy(*args: str) -> tuple[str, int]:
    stdout, stderr, status = api.run(["--config-file", str(CONFIG), *args])
    return stdout + stderr, status


@pytest.mark.slow
def test_mypy_finds_no_errors_in_src(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the config's `files` and mypy's cache are relative to the repository
    output, status = _mypy()
    assert status == 0, output
    checked = re.search(r"Success: no issues found in (\d+) source files", output)
    assert checked, output
    # Every module under src/hanformer was checked, not a subset the config happened to pick.
    assert int(checked.group(1)) == len(list((REPO / "src" / "hanformer").rglob("*.py")))


def test_mypy_config_is_strict_where_it_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings are in force: an implicit Optional default and an error inside an
    unannotated function (check_untyped_defs) are both reported."""
    monkeypatch.chdir(REPO)
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def implicit(x: int = None) -> int:\n"
        "    return 0\n"
        "\n"
        "def untyped():\n"
        "    return 1 + 'a'\n",
        encoding="utf-8")
    output, status = _mypy(str(sample))
    assert status == 1, output
    assert "sample.py:1: error: Incompatible default for parameter" in output, output
    assert "sample.py:5: error: Unsupported operand types for +" in output, output
    assert "Found 2 errors in 1 file" in output, output
