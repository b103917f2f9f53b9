"""Keep the code a chapter shows identical to the package's: one codebase, two views.

A chapter shows the code it teaches in a *saved cell* (after d2l's `#@save`). Its first line names
where that code lives in the package, and the rest of the cell is exactly that code:

    # @save fer_utils.data.video: frame_indices
    def frame_indices(count: int, n: int | None = 6, every: int | None = None) -> list[int]:
        ...

The reader runs and edits the cell; the chapter then uses the definition the cell just made. The
package stays what every chapter and the CLI import. `python -m fer_book sync` writes the package's
definitions into every saved cell (a copy of each notebook whose cells it replaces goes to
`_build/sync_backup/` first, so a reader's edit is never lost), `--export` writes edited cells back
into the package (every cell is checked and every module rebuilt in memory before any is written), and
`--check` (run by the tests) fails when a cell and the package differ.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fer_utils.errors import FerError
from fer_utils.storage.atomic import write_atomic

SAVE_MARK = "# @save"  # d2l writes `#@save`; this is the form the formatter (ruff) keeps
SAVE_LINE = re.compile(r"^#\s*@save\s+(?P<module>[\w.]+)\s*:\s*(?P<names>[\w\s,]+?)\s*$")
SEPARATOR = "\n\n\n"  # two blank lines between definitions, as in the modules
BACKUP_DIR = Path("_build") / "sync_backup"  # under the repository: where `sync` keeps the cells it replaces


class SyncError(FerError, ValueError):
    """A saved cell that cannot be matched with the package (bad mark, unknown name, syntax error)."""


@dataclass(frozen=True)
class SavedCell:
    """One saved cell: its notebook, its index in the notebook, the module and the names it shows."""

    notebook: Path
    index: int
    module: str
    names: tuple[str, ...]
    body: str

    @property
    def where(self) -> str:
        """Notebook and cell, for messages."""
        return f"{self.notebook.name} cell {self.index} ({self.module}: {', '.join(self.names)})"


def parse_mark(line: str) -> tuple[str, tuple[str, ...]] | None:
    """(module, names) of a `# @save module: name, name` line (`#@save` too); None for any other line."""
    if not re.match(r"#\s*@save\b", line):
        return None
    match = SAVE_LINE.match(line.strip())
    if match is None:
        raise SyncError(f"{line!r} is not `{SAVE_MARK} package.module: name[, name...]`")
    names = tuple(n.strip() for n in match["names"].split(",") if n.strip())
    return match["module"], names


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def saved_cells(notebook: Path, nb: dict | None = None) -> Iterator[SavedCell]:
    """The saved cells of a notebook, in order (`nb`: its JSON when the caller has already read it)."""
    nb = nb if nb is not None else json.loads(notebook.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        first, _, body = _cell_source(cell).partition("\n")
        mark = parse_mark(first)
        if mark is not None:
            yield SavedCell(notebook, index, mark[0], mark[1], body)


def module_path(module: str, root: Path) -> Path:
    """The file of a dotted module name under the repository `root`."""
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        raise SyncError(f"module {module} has no file {path}")
    return path


def _top_level(source: str, where: str) -> dict[str, tuple[int, int]]:
    """Line span (0-based start, with decorators; exclusive end) of each top-level function, class and
    assigned name in `source`."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise SyncError(f"{where}: {exc}") from exc
    spans = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        else:
            continue
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        for name in names:
            spans[name] = (start, node.end_lineno)
    return spans


def undeclared_code(cell: SavedCell) -> list[str]:
    """What a saved cell holds besides the definitions of the names on its `# @save` line: other top-level
    definitions (a helper the reader added) and other statements. `--export` writes back only the named
    definitions, so anything listed here would be lost (and a helper the exported code calls would break
    the package): such a cell is an error in `--check` and `--export`."""
    try:
        tree = ast.parse(cell.body)
    except SyntaxError as exc:
        raise SyncError(f"{cell.where}: {exc}") from exc
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined = [node.name]
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            defined = [t.id for t in node.targets]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined = [node.target.id]
        else:
            found.append(f"line {node.lineno + 1}: {ast.get_source_segment(cell.body, node).splitlines()[0]}")
            continue
        found += [f"defines {name}" for name in defined if name not in cell.names]
    return found


def check_saved_cell(cell: SavedCell) -> None:
    """SyncError if the cell holds more than the definitions of its names (see `undeclared_code`)."""
    extra = undeclared_code(cell)
    if extra:
        raise SyncError(
            f"{cell.where} holds code that is not on its {SAVE_MARK} line ({'; '.join(extra)}): a saved cell "
            f"holds only the definitions of the names it lists; add each name it defines to the {SAVE_MARK} "
            "line (`python -m fer_book sync --export` then adds its definition to the package) or move the code "
            "to another cell"
        )


def definitions(source: str, names: Sequence[str], where: str) -> str:
    """The source of the top-level `names` in `source`, in that order, two blank lines apart."""
    spans, lines = _top_level(source, where), source.splitlines()
    missing = [n for n in names if n not in spans]
    if missing:
        raise SyncError(f"{where}: no top-level definition of {', '.join(missing)}")
    return SEPARATOR.join("\n".join(lines[slice(*spans[n])]) for n in names)


def package_body(cell: SavedCell, root: Path) -> str:
    """What the saved cell must hold: the package's definitions of its names. A name the package does not
    define yet (added to the `# @save` line) is a SyncError that says `--export` adds it."""
    path = module_path(cell.module, root)
    source = path.read_text(encoding="utf-8")
    missing = [name for name in cell.names if name not in _top_level(source, str(path))]
    if missing:
        raise SyncError(
            f"{path}: no top-level definition of {', '.join(missing)}; if the cell's definition is the new one, "
            "`python -m fer_book sync --export` adds it to the package"
        )
    return definitions(source, cell.names, str(path))


def differences(notebooks: Sequence[Path], root: Path) -> list[str]:
    """One message per saved cell whose code is not the package's (empty when all agree)."""
    problems = []
    for notebook in notebooks:
        for cell in saved_cells(notebook):
            try:
                expected = package_body(cell, root)
                check_saved_cell(cell)
            except SyncError as exc:
                problems.append(str(exc) if str(exc).startswith(cell.where) else f"{cell.where}: {exc}")
                continue
            if cell.body.rstrip() == expected.rstrip():
                continue
            module = module_path(cell.module, root).relative_to(root)
            if definitions(cell.body, cell.names, cell.where) == expected:
                problems.append(
                    f"{cell.where} differs from {module} only between its definitions (comments, blank lines), "
                    "which --export does not carry: run `python -m fer_book sync` to restore the cell"
                )
            else:
                problems.append(f"{cell.where} differs from {module}")
    return problems


def _as_lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    return lines[:-1] + [lines[-1].rstrip("\n")] if lines else []


def backup_notebook(notebook: Path, root: Path) -> Path:
    """Copy `notebook` (before its saved cells are replaced) to `<root>/_build/sync_backup/<name>.<time>.ipynb`."""
    folder = Path(root) / BACKUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = folder / f"{notebook.stem}.{stamp}.ipynb"
    count = 1
    while target.exists():
        count += 1
        target = folder / f"{notebook.stem}.{stamp}-{count}.ipynb"
    target.write_bytes(notebook.read_bytes())
    return target


def sync_notebooks(notebooks: Sequence[Path], root: Path) -> list[Path]:
    """Write the package's definitions into every saved cell; return the notebooks that changed. Each notebook
    whose saved cells differ from the package (a reader's edit, or an older package) is first copied to
    `_build/sync_backup/` (`backup_notebook`), and the copy is named on stdout."""
    changed = []
    for notebook in notebooks:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        replaced = []
        for cell in list(saved_cells(notebook, nb)):
            source = _cell_source(nb["cells"][cell.index]).partition("\n")[0] + "\n" + package_body(cell, root)
            if _cell_source(nb["cells"][cell.index]) != source:
                nb["cells"][cell.index]["source"] = _as_lines(source)
                replaced.append(cell.index)
        if replaced:
            backup = backup_notebook(notebook, root)
            print(f"{notebook.name}: cell(s) {', '.join(map(str, replaced))} as they were are kept in {backup}")
            write_atomic(notebook, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(notebook)
    return changed


def export_cell(cell: SavedCell, source: str, where: str) -> str:
    """`source` (a module's text) with the cell's definitions in place of the module's. A name the module does not
    define yet (added to the `# @save` line) is inserted after the cell's previous name, or before its next one,
    or at the end of the module, two blank lines apart."""
    lines = source.splitlines()
    for position, name in enumerate(cell.names):
        spans = _top_level("\n".join(lines) + "\n", where)
        new = definitions(cell.body, [name], cell.where).splitlines()
        if name in spans:
            start, end = spans[name]
            lines[start:end] = new
            continue
        before = [spans[n][1] for n in cell.names[:position] if n in spans]
        after = [spans[n][0] for n in cell.names[position + 1 :] if n in spans]
        if before:
            at = max(before)
            lines[at:at] = ["", "", *new]
        elif after:
            at = min(after)
            lines[at:at] = [*new, "", ""]
        else:
            while lines and not lines[-1].strip():
                lines.pop()
            lines += ["", "", *new]
    text = "\n".join(lines) + "\n"
    _top_level(text, where)  # still valid Python
    return text


def export_cells(notebooks: Sequence[Path], root: Path) -> list[Path]:
    """Write every saved cell's definitions back into its module (d2l's direction); return changed modules.

    Every cell is checked and every module's new text is made in memory before any module is written, so a
    cell that cannot be exported leaves the whole package as it was (no half export)."""
    cells = [cell for notebook in notebooks for cell in saved_cells(notebook)]
    for cell in cells:
        check_saved_cell(cell)
    before: dict[Path, str] = {}
    after: dict[Path, str] = {}
    for cell in cells:
        path = module_path(cell.module, root)
        if path not in before:
            before[path] = after[path] = path.read_text(encoding="utf-8")
        after[path] = export_cell(cell, after[path], str(path))
    changed = [path for path in after if after[path] != before[path]]
    for path in changed:
        write_atomic(path, after[path])
    return changed


def chapter_notebooks(root: Path) -> list[Path]:
    """The book's chapters, in order; SyncError when `root` holds none (it is not the book's repository)."""
    notebooks = sorted((Path(root) / "notebooks").glob("*.ipynb"))
    if not notebooks:
        raise SyncError(f"{root} is not the book's repository: it has no notebooks/*.ipynb (pass --root)")
    return notebooks


def main(argv: Sequence[str] | None = None) -> int:
    """`sync` (package → chapters), `sync --export` (chapters → package) or `sync --check`."""
    parser = argparse.ArgumentParser(prog="python -m fer_book sync", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 and list the saved cells that differ")
    group.add_argument("--export", action="store_true", help="write edited saved cells back into the package")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        notebooks = chapter_notebooks(args.root)
        if args.check:
            problems = differences(notebooks, args.root)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print(
                    "run `python -m fer_book sync` (package → chapters) or `--export` (chapters → package)",
                    file=sys.stderr,
                )
            return int(bool(problems))
        changed = export_cells(notebooks, args.root) if args.export else sync_notebooks(notebooks, args.root)
    except SyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"updated {path.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
