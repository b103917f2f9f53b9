"""The student edition: every notebook of the book without its solution cells and outputs.

It never touches the book's own notebooks (an `--out` that holds or overlaps them is refused) and never
silently replaces a student's work: a notebook already in `--out` that differs from what would be written
is refused unless `force`, and even then kept beside it as `<name>.ipynb.bak-<timestamp>`.
"""

from __future__ import annotations

import time
from pathlib import Path

from fer_book.toc import repo_root, toc_notebooks
from fer_utils.errors import OutputError
from fer_utils.storage.outputs import write_atomic

SOLUTION_TAG = "solution"
BACKUP_MARK = ".bak-"


def strip_solutions(notebook: dict) -> dict:
    """A copy of the notebook JSON without cells tagged `solution` and without outputs."""
    import copy

    nb = copy.deepcopy(notebook)
    nb["cells"] = [c for c in nb["cells"] if SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def student_text(notebook: Path) -> str:
    """The student edition of one notebook file, as `nbformat.write` would write it."""
    import nbformat

    text = nbformat.writes(nbformat.from_dict(strip_solutions(nbformat.read(notebook, as_version=4))))
    return text if text.endswith("\n") else text + "\n"


def check_student_out(out: Path, root: Path, notebooks: list[Path]) -> None:
    """OutputError if `out` is, holds or lies inside the folders of the book's own notebooks."""
    out = Path(out).resolve()
    for folder in sorted({(root / nb).resolve().parent for nb in notebooks} | {root.resolve()}):
        if out == folder or out.is_relative_to(folder) or folder.is_relative_to(out):
            raise OutputError(
                f"student --out {out} overlaps the book's own notebooks in {folder}; "
                "the student edition must go to a folder outside the repository"
            )


def edited_notebooks(targets: dict[Path, str]) -> list[Path]:
    """The targets that already exist with other content than what would be written (a student's edits)."""
    return [target for target, text in targets.items() if target.is_file() and target.read_text() != text]


def write_student_edition(out: Path, root: Path | None = None, force: bool = False) -> list[Path]:
    """Write every notebook of the book to `<out>/notebooks` without solutions; return the paths.

    Refused (OutputError, nothing written) when `out` overlaps the book's notebooks, or when a notebook
    in `out` differs from what would be written, unless `force`: then each such notebook is first kept
    as `<name>.ipynb.bak-<timestamp>`.
    """
    root = Path(root or repo_root())
    notebooks = toc_notebooks(root)
    check_student_out(out, root, notebooks)
    targets = {Path(out) / nb: student_text(root / nb) for nb in notebooks}
    edited = edited_notebooks(targets)
    if edited and not force:
        raise OutputError(
            f"{len(edited)} notebook(s) in {out} differ from the student edition (edited by a student?): "
            + ", ".join(str(p) for p in edited)
            + "; pass --force to replace them (each is kept as <name>.ipynb.bak-<timestamp>)"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for target in edited:
        write_atomic(target.with_name(f"{target.name}{BACKUP_MARK}{stamp}"), target.read_bytes(), "backup")
    for target, text in targets.items():
        write_atomic(target, text, "student notebook")
    return list(targets)
