"""ARCHITECTURE.md's module tables, written from the modules' own docstrings: a document that cannot go stale.

`python -m fer_book architecture` writes, between two markers in ARCHITECTURE.md, one table per folder of
`fer_utils/` and `fer_book/`: each module with the first paragraph of its docstring (the folder's own from its
`__init__.py`). A module added, moved or redescribed changes the tables; `--check` (run by the tests) exits 1
when they differ from the code.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from pathlib import Path

from fer_utils.errors import FerError
from fer_utils.storage.atomic import write_atomic

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


class ArchitectureError(FerError, ValueError):
    """ARCHITECTURE.md lacks its markers, or a tabled module has no docstring."""


def summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line (a table cell: `|` escaped)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        raise ArchitectureError(f"{path}: no docstring; every module says what it is for in its first paragraph")
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def folder_table(root: Path, folder: str) -> str:
    """One folder's heading (its `__init__` docstring) and the table of its modules, `__init__.py` excepted."""
    base = root / folder
    modules = sorted(p for p in base.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    rows = [f"| `{p.name}` | {summary(p)} |" for p in modules]
    return "\n".join(
        [f"### `{folder}/`", "", summary(base / "__init__.py"), "", "| module | job |", "| --- | --- |", *rows]
    )


def module_tables(root: Path) -> str:
    """Every folder's table, between the markers."""
    return "\n\n".join([START, *(folder_table(root, folder) for folder in FOLDERS), END])


def write_tables(root: Path, check: bool = False) -> bool:
    """Write the tables into ARCHITECTURE.md (or only compare, `check`); whether the document was up to date."""
    path = root / DOCUMENT
    text = path.read_text(encoding="utf-8")
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ArchitectureError(f"{path}: needs one {START!r} line followed by one {END!r} line")
    before, rest = text.split(START)
    new = before + module_tables(root) + rest.split(END, 1)[1]
    if new == text:
        return True
    if not check:
        write_atomic(path, new.encode("utf-8"))
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """`architecture` writes the module tables; `architecture --check` exits 1 when they are stale."""
    parser = argparse.ArgumentParser(prog="python -m fer_book architecture", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the tables are stale")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        current = write_tables(args.root, check=args.check)
    except ArchitectureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check and not current:
        print(
            f"{DOCUMENT}'s module tables differ from the docstrings: run `python -m fer_book architecture`",
            file=sys.stderr,
        )
        return 1
    print(f"{DOCUMENT}: module tables {'up to date' if current else 'written'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
