"""What `pip install hanformer` gets: every third-party import declared, the license shipped,
the package's assets (attention views, the web page) in the wheel."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hanformer.utils.config import load_toml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "hanformer"
PYPROJECT = load_toml(REPO / "pyproject.toml")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot read the requirement {requirement!r}"
    return _normalize(match.group(1))


def _declared_distributions() -> set[str]:
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {_requirement_name(r) for r in requirements}


def _top_level_imports(path: Path) -> set[str]:
    """Absolute imports anywhere in a module (inside functions and try blocks too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def test_every_third_party_import_is_a_declared_dependency():
    declared = _declared_distributions()
    providers = importlib.metadata.packages_distributions()
    undeclared = []
    for module in sorted(PACKAGE.rglob("*.py")):
        for name in sorted(_top_level_imports(module)):
            if name == "hanformer" or name in sys.stdlib_module_names:
                continue
            # Not installed here (tomli on Python >= 3.11): its distribution has its name.
            distributions = providers.get(name) or [name]
            if not any(_normalize(d) in declared for d in distributions):
                undeclared.append(f"{module.relative_to(REPO)}: import {name} ({', '.join(distributions)})")
    assert not undeclared, "imports that pyproject.toml does not declare:\n" + "\n".join(undeclared)


def test_tomli_is_declared_for_the_pythons_without_tomllib():
    requirements = PYPROJECT["project"]["dependencies"]
    tomli = [r for r in requirements if _requirement_name(r) == "tomli"]
    assert tomli and re.search(r"""python_version\s*<\s*["']3\.11["']""", tomli[0])


def test_the_license_file_is_the_apache_2_text_and_is_declared():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:5] == ["Apache", "License", "Version", "2.0,", "January"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def _package_data_patterns() -> list[str]:
    return PYPROJECT["tool"]["setuptools"]["package-data"]["hanformer"]


def test_every_package_data_pattern_matches_files():
    for pattern in _package_data_patterns():
        assert [p for p in PACKAGE.glob(pattern) if p.is_file()], f"package-data {pattern!r} matches nothing"


def test_every_asset_of_the_package_is_shipped():
    shipped = {p for pattern in _package_data_patterns() for p in PACKAGE.glob(pattern)}
    assets = {p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    missing = sorted(str(p.relative_to(PACKAGE)) for p in assets - shipped)
    assert not missing, f"files of the package that no package-data pattern ships: {missing}"


@pytest.mark.slow
def test_the_wheel_holds_the_assets_the_license_and_the_dependencies(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("hanformer-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = next(n.rpartition("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(f"{info}/METADATA").decode()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    for asset in ("visualization/assets/attention.js", "visualization/assets/attention.css",
                  "visualization/assets/view.html", "serving/static/index.html", "serving/static/page.js",
                  "recipes/assets/report.css",
                  "py.typed", "__main__.py"):
        assert f"hanformer/{asset}" in names, asset
    assert f"{info}/licenses/LICENSE" in names
    assert "License-Expression: Apache-2.0" in metadata
    assert """Requires-Dist: tomli>=1.1; python_version < "3.11\"""" in metadata
    assert "hanformer = hanformer.cli.main:main" in entry_points
