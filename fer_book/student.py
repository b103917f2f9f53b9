"""The student edition: every notebook of the book without its solution cells and outputs."""

from __future__ import annotations

from pathlib import Path

from fer_book.toc import repo_root, toc_notebooks

SOLUTION_TAG = "solution"


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


def write_student_edition(out: Path, root: Path | None = None) -> list[Path]:
    """Write every notebook of the book to `<out>/notebooks` without solutions; return the paths."""
    import nbformat

    root = root or repo_root()
    written = []
    for notebook in toc_notebooks(root):
        nb = nbformat.read(root / notebook, as_version=4)
        student = nbformat.from_dict(strip_solutions(nb))
        target = out / notebook
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        written.append(target)
    return written
