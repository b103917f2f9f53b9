"""The code a chapter shows is the package's code: saved cells (`# @save module: names`) are checked
against the package, and `python -m fer_book sync` / `--export` bring either side back in line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_book.sync import (
    SyncError,
    chapter_notebooks,
    differences,
    export_cells,
    parse_mark,
    saved_cells,
    sync_notebooks,
)
from fer_utils.errors import FerError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = chapter_notebooks(REPO)
DEFINITION = re.compile(r"^\s*(def|class|async def)\s+\w+", re.MULTILINE)


def saved_names(notebook: Path) -> set[str]:
    """Every `module.name` a chapter shows in its saved cells."""
    return {f"{cell.module}.{name}" for cell in saved_cells(notebook) for name in cell.names}


def test_every_saved_cell_is_the_package_code() -> None:
    assert sum(len(list(saved_cells(nb))) for nb in NOTEBOOKS) > 0
    assert differences(NOTEBOOKS, REPO) == []


def test_code_is_defined_in_chapters_only_in_saved_cells_and_exercises() -> None:
    for notebook in NOTEBOOKS:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        saved = {cell.index for cell in saved_cells(notebook)}
        for index, cell in enumerate(nb["cells"]):
            source = "".join(cell["source"])
            exercise = "exercises.check_" in source or "NotImplementedError" in source
            if cell["cell_type"] == "code" and index not in saved and not exercise:
                assert not DEFINITION.search(source), (
                    f"{notebook.name} cell {index} defines code that is neither the package's (a `# @save` cell) "
                    f"nor an exercise:\n{source}"
                )


def make_repo(tmp_path: Path, body: str) -> tuple[Path, Path, Path]:
    """A tiny repository: one module `pkg/mod.py` and one chapter with a saved cell holding `body`."""
    (tmp_path / "pkg").mkdir()
    module = tmp_path / "pkg" / "mod.py"
    module.write_text(
        '"""A module."""\n\nLIMIT = 3\n\n\n@staticmethod\ndef twice(x: int) -> int:\n'
        '    """Twice x."""\n    return 2 * x\n\n\ndef other() -> None:\n    pass\n',
        encoding="utf-8",
    )
    (tmp_path / "notebooks").mkdir()
    notebook = tmp_path / "notebooks" / "01_a.ipynb"
    cells = [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# A"]},
        {
            "cell_type": "code",
            "id": "b",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "# @save pkg.mod: LIMIT, twice\n" + body,
        },
    ]
    notebook.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8"
    )
    return tmp_path, module, notebook


PACKAGE_BODY = 'LIMIT = 3\n\n\n@staticmethod\ndef twice(x: int) -> int:\n    """Twice x."""\n    return 2 * x'


def test_a_cell_that_matches_passes(tmp_path: Path) -> None:
    root, _, notebook = make_repo(tmp_path, PACKAGE_BODY)
    assert differences([notebook], root) == []


def test_an_edited_cell_is_caught_and_sync_restores_it(tmp_path: Path) -> None:
    root, _, notebook = make_repo(tmp_path, PACKAGE_BODY.replace("2 * x", "3 * x"))
    assert differences([notebook], root) == ["01_a.ipynb cell 1 (pkg.mod: LIMIT, twice) differs from pkg/mod.py"]
    assert sync_notebooks([notebook], root) == [notebook]
    assert differences([notebook], root) == []
    assert "2 * x" in "".join(json.loads(notebook.read_text())["cells"][1]["source"])
    assert sync_notebooks([notebook], root) == [], "a second sync changes nothing"


def test_an_edited_package_is_caught_and_export_writes_the_cell_back(tmp_path: Path) -> None:
    root, module, notebook = make_repo(tmp_path, PACKAGE_BODY.replace("2 * x", "x + x"))
    assert differences([notebook], root)
    assert export_cells([notebook], root) == [module]
    text = module.read_text()
    assert "return x + x" in text and "def other() -> None" in text and text.startswith('"""A module."""')
    assert differences([notebook], root) == []


def test_a_cell_naming_a_missing_definition_is_reported(tmp_path: Path) -> None:
    root, _, notebook = make_repo(tmp_path, PACKAGE_BODY)
    text = notebook.read_text().replace("LIMIT, twice", "LIMIT, thrice")
    notebook.write_text(text)
    assert differences([notebook], root) == [
        f"01_a.ipynb cell 1 (pkg.mod: LIMIT, thrice): {root / 'pkg' / 'mod.py'}: no top-level definition of thrice; "
        "if the cell's definition is the new one, `python -m fer_book sync --export` adds it to the package"
    ]


def test_a_malformed_mark_is_an_error() -> None:
    assert parse_mark("import numpy") is None
    assert parse_mark("#@save fer_utils.data.video: frame_indices, sample_frames") == (
        "fer_utils.data.video",
        ("frame_indices", "sample_frames"),
    )
    with pytest.raises(SyncError, match="is not `# @save package.module: name") as refused:
        parse_mark("#@save frame_indices")
    assert isinstance(refused.value, FerError)  # the project's error family: `python -m fer_book` reports it


def test_the_check_command_fails_on_a_changed_chapter(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copytree(REPO / "fer_utils", root / "fer_utils", ignore=shutil.ignore_patterns("assets", "__pycache__"))
    command = [sys.executable, "-m", "fer_book.sync", "--root", str(root)]
    ok = subprocess.run([*command, "--check"], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    first = next(cell for nb in chapter_notebooks(root) for cell in saved_cells(nb))
    nb = json.loads(first.notebook.read_text())
    nb["cells"][first.index]["source"].append("\n# an edit made in the chapter only")
    first.notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    failed = subprocess.run([*command, "--check"], cwd=REPO, capture_output=True, text=True)
    assert failed.returncode == 1 and first.where.split(" (")[0] in failed.stderr
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    assert subprocess.run([*command, "--check"], cwd=REPO).returncode == 0


# What each chapter must show as running code (issue "Teach with the code"): the package's definitions.
REQUIRED = {
    "02": {
        "fer_utils.data.video.frame_indices",
        "fer_utils.faces.crops.crop_face",
        "fer_utils.faces.crops.square_region",
    },
    "03": {"fer_utils.models.networks.build_paper_cnn"},
    "04": {
        "fer_utils.train.pipeline.make_dataset",
        "fer_utils.train.fit.compile_model",
        "fer_utils.train.fit.fit_model",
        "fer_utils.train.fit.run_callbacks",
        "fer_utils.evaluate.metrics.clip_vote",
    },
    "05": {"fer_utils.models.networks.build_paper_cnn", "fer_utils.book.chapters.train_variants"},
    "06": {
        "fer_utils.data.splits.split_frames",
        "fer_utils.data.splits.random_holdout",
        "fer_utils.data.splits.group_holdout",
        "fer_utils.data.splits.check_leakage",
    },
    "07": {
        "fer_utils.models.networks.separable_residual_block",
        "fer_utils.models.networks.build_mini_xception",
        "fer_utils.models.networks.layer_macs",
        "fer_utils.models.networks.count_flops",
    },
    "08": {
        "fer_utils.deploy.tflite.to_tflite",
        "fer_utils.deploy.tflite.quantize_int8",
        "fer_utils.deploy.tflite.representative_dataset",
        "fer_utils.evaluate.explain.grad_cam",
    },
}


@pytest.mark.parametrize("chapter", sorted(REQUIRED))
def test_each_chapter_shows_the_code_it_teaches(chapter: str) -> None:
    notebook = next(nb for nb in NOTEBOOKS if nb.name.startswith(chapter))
    missing = REQUIRED[chapter] - saved_names(notebook)
    assert not missing, f"{notebook.name} does not show {sorted(missing)} in a # @save cell"


@pytest.mark.parametrize("chapter", sorted(REQUIRED))
def test_each_chapter_uses_the_code_it_shows(chapter: str) -> None:
    """A saved cell is not decoration: another cell of the chapter (maybe another saved cell) calls at
    least one name it defines."""
    notebook = next(nb for nb in NOTEBOOKS if nb.name.startswith(chapter))
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for cell in saved_cells(notebook):
        others = "".join(
            "".join(c["source"]) for i, c in enumerate(cells) if c["cell_type"] == "code" and i != cell.index
        )
        assert any(re.search(rf"\b{name}\(", others) for name in cell.names), (
            f"{cell.where}: no other cell of the chapter calls what this cell defines"
        )


# --- a saved cell holds only the definitions of the names on its @save line --------------------------

HELPER = "def helper(x: int) -> int:\n    return x + 1\n\n\n"


def test_export_refuses_a_helper_the_mark_does_not_name_and_writes_nothing(tmp_path: Path) -> None:
    root, module, notebook = make_repo(tmp_path, HELPER + PACKAGE_BODY.replace("2 * x", "helper(x) * 2"))
    before = module.read_text()
    with pytest.raises(SyncError, match=r"cell 1 .* holds code that is not on its # @save line \(defines helper\)"):
        export_cells([notebook], root)
    assert module.read_text() == before, "nothing exported: the package would call a helper it lacks"
    (problem,) = differences([notebook], root)
    assert "defines helper" in problem and "add each name it defines to the # @save line" in problem


def test_export_of_a_cell_that_names_its_helper_keeps_the_package_importable(tmp_path: Path) -> None:
    root, module, notebook = make_repo(tmp_path, PACKAGE_BODY)
    module.write_text(module.read_text() + "\n\ndef helper(x: int) -> int:\n    return 0\n")
    text = json.loads(notebook.read_text())
    text["cells"][1]["source"] = "# @save pkg.mod: LIMIT, helper, twice\n" + PACKAGE_BODY.replace(
        "LIMIT = 3\n\n\n", "LIMIT = 3\n\n\n" + HELPER
    ).replace("2 * x", "helper(x) * 2")
    notebook.write_text(json.dumps(text))
    assert export_cells([notebook], root) == [module]
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    assert namespace["twice"].__func__(3) == 8
    assert differences([notebook], root) == []


def test_check_does_not_ask_for_an_export_that_changes_nothing(tmp_path: Path) -> None:
    root, module, notebook = make_repo(tmp_path, PACKAGE_BODY.replace("\n\n\n@static", "\n\n# a note\n@static"))
    (problem,) = differences([notebook], root)
    assert "only between its definitions" in problem and "`python -m fer_book sync`" in problem
    assert export_cells([notebook], root) == [], "indeed, export changes nothing"
    assert sync_notebooks([notebook], root) == [notebook]
    assert differences([notebook], root) == []


def test_check_with_a_root_that_is_not_the_repository_fails(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fer_book.sync", "--check", "--root", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert f"{tmp_path} is not the book's repository: it has no notebooks/*.ipynb" in done.stderr


# --- issue 30, item 14: no half export, no lost edit, advice that works ----------------------------------------


def second_chapter(root: Path, source: str) -> Path:
    """A second chapter `02_b.ipynb` whose one code cell holds `source`; a second module `pkg/other.py`."""
    (root / "pkg" / "other.py").write_text('"""Other."""\n\n\ndef helper2() -> int:\n    return 1\n')
    cells = [{"cell_type": "code", "id": "c", "metadata": {}, "execution_count": None, "outputs": [], "source": source}]
    notebook = root / "notebooks" / "02_b.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return notebook


def test_an_export_that_fails_on_one_chapter_writes_no_module(tmp_path: Path) -> None:
    root, module, notebook = make_repo(tmp_path, PACKAGE_BODY.replace("2 * x", "x + x"))  # a valid edit
    other = second_chapter(root, "# @save pkg.other: helper2, helper3\ndef helper2() -> int:\n    return 2\n")
    before = {path: path.read_text() for path in (module, root / "pkg" / "other.py")}
    with pytest.raises(SyncError, match=r"02_b.ipynb cell 0 .*: no top-level definition of helper3"):
        export_cells([notebook, other], root)
    assert {path: path.read_text() for path in before} == before, "no module written: not even the valid edit"
    done = subprocess.run(
        [sys.executable, "-m", "fer_book.sync", "--export", "--root", str(root)], capture_output=True, text=True
    )
    assert done.returncode == 2 and "helper3" in done.stderr and "updated" not in done.stdout
    assert {path: path.read_text() for path in before} == before


def test_a_helper_added_to_the_save_line_as_advised_is_exported_into_the_package(tmp_path: Path) -> None:
    """The advice of `--check` for a helper in a saved cell: add its name to the # @save line. The export then
    adds its definition to the package (it failed with 'has no top-level helper to replace', after writing
    the other chapters' modules)."""
    body = PACKAGE_BODY.replace("LIMIT = 3\n\n\n", "LIMIT = 3\n\n\n" + HELPER).replace("2 * x", "helper(x) * 2")
    root, module, notebook = make_repo(tmp_path, HELPER + PACKAGE_BODY.replace("2 * x", "helper(x) * 2"))
    (problem,) = differences([notebook], root)
    assert "add each name it defines to the # @save line (`python -m fer_book sync --export` then adds" in problem
    nb = json.loads(notebook.read_text())
    nb["cells"][1]["source"] = "# @save pkg.mod: LIMIT, helper, twice\n" + body  # the advice, followed
    notebook.write_text(json.dumps(nb))
    other = second_chapter(root, "# @save pkg.other: helper2\ndef helper2() -> int:\n    return 2\n")
    (missing,) = differences([notebook], root)
    assert "no top-level definition of helper" in missing and "sync --export` adds it to the package" in missing
    assert export_cells([notebook, other], root) == [module, root / "pkg" / "other.py"]
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    assert namespace["twice"].__func__(3) == 8 and "def other() -> None" in module.read_text()
    assert differences([notebook, other], root) == []


def test_sync_keeps_a_copy_of_the_cells_it_replaces(tmp_path: Path) -> None:
    root, _, notebook = make_repo(tmp_path, PACKAGE_BODY.replace("2 * x", "7 * x  # my experiment"))
    done = subprocess.run([sys.executable, "-m", "fer_book.sync", "--root", str(root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "7 * x" not in notebook.read_text(), "the chapter shows the package's code again"
    (backup,) = (root / "_build" / "sync_backup").glob("01_a.*.ipynb")
    assert "7 * x  # my experiment" in "".join(json.loads(backup.read_text())["cells"][1]["source"])
    assert f"01_a.ipynb: cell(s) 1 as they were are kept in {backup}" in done.stdout
    assert sync_notebooks([notebook], root) == [] and len(list(backup.parent.iterdir())) == 1, "nothing to keep"
