"""The book-building tooling (fer_book) stays out of the package a learner installs (fer_utils).

fer_book runs from the repository root and is never installed: fer_utils and the chapters must not
import it, the wheel must not contain it, and Sphinx must still find its extension during a build.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

from fer_book.build import sphinx_environment

REPO = Path(__file__).resolve().parents[1]
TOOLING = "fer_book"
STEPS = ("execute", "build", "links", "release", "assign", "grade", "prose")


def imported_modules(source: str) -> set[str]:
    """The top-level names of every module that Python `source` imports (at any depth in the code)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def notebook_code(path: Path) -> str:
    """The code cells of a notebook as one Python source (IPython magics and shell lines as IPython runs them)."""
    from IPython.core.inputtransformer2 import TransformerManager

    cells = json.loads(path.read_text())["cells"]
    return "\n".join(
        TransformerManager().transform_cell("".join(c["source"])) for c in cells if c["cell_type"] == "code"
    )


def test_imported_modules_sees_every_form_of_import() -> None:
    source = "import fer_book\nfrom fer_book.build import x\ndef f():\n    import fer_book.toc as t\nfrom . import y\n"
    assert imported_modules(source) == {TOOLING}


def test_the_learner_package_never_imports_the_book_tooling() -> None:
    offenders = [
        p.relative_to(REPO).as_posix()
        for p in sorted((REPO / "fer_utils").rglob("*.py"))
        if TOOLING in imported_modules(p.read_text())
    ]
    assert offenders == [], f"fer_utils must not import {TOOLING} (it is not installed on Colab)"


def test_the_chapters_never_import_the_book_tooling() -> None:
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks
    offenders = [p.name for p in notebooks if TOOLING in imported_modules(notebook_code(p))]
    assert offenders == [], f"a chapter runs on Colab, where {TOOLING} is not installed"


def test_the_wheel_packages_the_learner_package_only() -> None:
    from setuptools import find_packages

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(str(REPO), include=include)
    assert "fer_utils" in packages
    assert not [p for p in packages if p.split(".")[0] == TOOLING], packages


def test_the_book_command_line_lists_its_steps() -> None:
    out = subprocess.run(
        [sys.executable, "-m", TOOLING, "--help"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert all(step in out for step in STEPS), out


def test_a_module_step_takes_its_own_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", TOOLING, "prose", "--help"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.startswith("usage: python -m fer_book prose") and "--stage" in out, out


def test_the_learner_command_line_has_no_book_command() -> None:
    from fer_utils.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert "book" not in commands and "train" in commands


def test_a_failing_step_exits_2_with_a_one_line_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", TOOLING, "build", "--stage", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "not an executed stage" in result.stderr


def test_sphinx_imports_the_extensions_of_config_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`book build` runs jupyter-book in another process and folder: the extensions must import there."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    extensions = yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]["extra_extensions"]
    assert f"{TOOLING}.sphinx_ext" in extensions
    for name in extensions:
        probe = f"import importlib; assert callable(importlib.import_module({name!r}).setup)"
        bare = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
        assert bare.returncode != 0 or not name.startswith(TOOLING), "fer_book must not be installed"
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, env=sphinx_environment()
        )
        assert result.returncode == 0, result.stderr[-2000:]
