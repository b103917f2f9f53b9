"""The book-building tooling (fer_book) stays out of the package a learner installs (fer_utils).

fer_book runs from the repository root and is never installed: fer_utils must import without it (the wheel
holds fer_utils only: tests/test_fresh_install.py; the chapters run in the stage, where it cannot be imported),
and Sphinx must still find its extension during a build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fer_book.build import sphinx_environment

REPO = Path(__file__).resolve().parents[1]
TOOLING = "fer_book"
STEPS = ("execute", "build", "links", "release", "assign", "grade", "prose")


# Imports every module of the learner's package where the tooling cannot be imported, as on Colab.
WITHOUT_TOOLING = f"""
import importlib, pkgutil, sys
sys.modules[{TOOLING!r}] = None  # `import {TOOLING}` now raises ModuleNotFoundError
import fer_utils
names = [m.name for m in pkgutil.walk_packages(fer_utils.__path__, "fer_utils.") if m.name != "fer_utils.__main__"]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_the_learner_package_never_imports_the_book_tooling() -> None:
    """fer_book is never installed (on Colab it does not exist): every module of fer_utils imports without it."""
    result = subprocess.run([sys.executable, "-c", WITHOUT_TOOLING], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) > 50


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


def test_a_teachers_commands_read_and_write_utf8_whatever_the_machines_locale(tmp_path: Path) -> None:
    """Under an ASCII locale (as Windows' cp1252 would, for other characters) `links` and `assign` read the chapters'
    "×" and "≥" as UTF-8: both raised UnicodeDecodeError before every read and write named its encoding."""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    for step in (["links", "--check"], ["assign", "--out", str(tmp_path), "--only", "01"]):
        result = subprocess.run(
            [sys.executable, "-m", TOOLING, *step], capture_output=True, text=True, cwd=REPO, env=env, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
    chapter = json.loads((REPO / "notebooks" / "01_dataset_tour.ipynb").read_text(encoding="utf-8"))
    student = json.loads(next(tmp_path.glob("01_dataset_tour/student/*.ipynb")).read_text(encoding="utf-8"))
    title = "".join(chapter["cells"][0]["source"])
    assert any(ord(c) > 127 for c in "".join("".join(c["source"]) for c in chapter["cells"]))
    assert any("".join(cell["source"]) == title for cell in student["cells"])
