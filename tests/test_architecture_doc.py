"""ARCHITECTURE.md's module tables are the modules' own docstrings (`python -m fer_book architecture`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from fer_book.architecture import DOCUMENT, FOLDERS, main, write_tables

REPO = Path(__file__).resolve().parents[1]


def test_the_tables_are_up_to_date_with_the_code() -> None:
    assert main(["--check", "--root", str(REPO)]) == 0, "run `python -m fer_book architecture`"


def test_every_package_of_the_code_is_tabled() -> None:
    packages = {
        str(init.parent.relative_to(REPO))
        for tree in ("fer_utils", "fer_book")
        for init in (REPO / tree).rglob("__init__.py")
        if "assets" not in init.parts
    }
    assert packages == set(FOLDERS)


def _copy(tmp_path: Path) -> Path:
    for tree in ("fer_utils", "fer_book"):
        shutil.copytree(REPO / tree, tmp_path / tree, ignore=shutil.ignore_patterns("assets", "__pycache__"))
    shutil.copy(REPO / DOCUMENT, tmp_path / DOCUMENT)
    return tmp_path


def test_a_new_module_makes_the_check_fail_until_the_tables_are_written(tmp_path: Path, capsys) -> None:
    root = _copy(tmp_path)
    (root / "fer_utils" / "train" / "warmup.py").write_text('"""Warm-up | schedules: a module the tables lack."""\n')
    assert main(["--check", "--root", str(root)]) == 1
    assert "differ from the docstrings" in capsys.readouterr().err
    assert main(["--root", str(root)]) == 0
    text = (root / DOCUMENT).read_text()
    assert "| `warmup.py` | Warm-up \\| schedules: a module the tables lack. |" in text
    assert write_tables(root, check=True)


def test_a_module_without_a_docstring_is_refused_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    root = _copy(tmp_path)
    before = (root / DOCUMENT).read_text()
    (root / "fer_utils" / "deploy" / "bare.py").write_text("X = 1\n")
    assert main(["--root", str(root)]) == 2
    assert "bare.py: no docstring" in capsys.readouterr().err
    assert (root / DOCUMENT).read_text() == before
