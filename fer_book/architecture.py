"""ARCHITECTURE.md's module tables, written from the modules' own docstrings: a document that cannot go stale.

`python -m fer_book architecture` writes a table per folder of FOLDERS between two markers; `--check`: 1 if stale.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

from fer_book.markers import between, marker_command, write_changed
from fer_utils.errors import BookError

DOCUMENT = "ARCHITECTURE.md"
START = "<!-- module tables: written by `python -m fer_book architecture` from the docstrings; do not edit -->"
END = "<!-- end of the module tables -->"
# The folders tabled, in the order a face travels through them; each must be a package (an __init__.py).
FOLDERS = (
    "fer_utils",
    "fer_utils/data",
    "fer_utils/faces",
    "fer_utils/models",
    "fer_utils/train",
    "fer_utils/evaluate",
    "fer_utils/deploy",
    "fer_utils/storage",
    "fer_utils/book",
    "fer_utils/book/exercises",
    "fer_utils/cli",
    "fer_book",
)


def summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line (a table cell: `|` escaped)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        raise BookError(f"{path}: no docstring; every module says what it is for in its first paragraph")
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def folder_table(root: Path, folder: str) -> str:
    """One folder's heading (its `__init__` docstring) and the table of its modules, `__init__.py` excepted."""
    base = root / folder
    modules = sorted(p for p in base.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    rows = [f"| `{p.name}` | {summary(p)} |" for p in modules]
    heading = [f"### `{folder}/`", "", summary(base / "__init__.py"), "", "| module | job |", "| --- | --- |"]
    return "\n".join([*heading, *rows])


def write_tables(root: Path, check: bool = False) -> bool:
    """Write the tables into ARCHITECTURE.md (or only compare, `check`); whether the document was up to date."""
    path = root / DOCUMENT
    text = path.read_text(encoding="utf-8")
    tables = "\n\n".join(folder_table(root, folder) for folder in FOLDERS)
    return write_changed(path, text, between(text, (START, END), tables, path), check)


def main(argv: Sequence[str] | None = None) -> int:
    """`architecture` writes the module tables; `architecture --check` exits 1 when they are stale."""
    stale = f"{DOCUMENT}'s module tables differ from the docstrings"
    prog, what = "python -m fer_book architecture", f"{DOCUMENT}: module tables"
    return marker_command(argv, prog, __doc__.splitlines()[0], write_tables, what, stale)


if __name__ == "__main__":
    raise SystemExit(main())
