"""Grading a class: each submitted chapter notebook run in a fresh kernel, each exercise read from its checker.

A submission is a student edition of a chapter (`python -m fer_book student`) that a student completed.
Its chapter is recognised by its title (the first line of its first cell); the student is the file's
stem (or, for `<student>/<chapter>.ipynb`, the folder's name). Grading:

1. reads the chapter's exercises from the book's own notebook: the code cell after each `### Exercise N`
   heading, whose last statement is the call of its checker from `fer_utils.exercises`;
2. looks for tampering before running anything: a checker call that differs from the chapter's, or a
   cell that defines, assigns or imports over a checker's name or `exercises` (`tampered` rows);
3. drops every cell tagged `solution` (the student may have added them back) and executes the rest in a
   fresh kernel under one time limit for the whole notebook; a notebook past it is stopped (its kernel
   killed) and its exercises not yet run are `timeout` rows;
4. reads each exercise cell's output: the checker's verdict (`Feedback`, displayed as text with its
   ✅/❌ mark, `Feedback.from_text`) gives `passed`, `failed` or `unanswered`; an exception in the
   cell gives `error` with the exception.

One row per (student, chapter, exercise) goes to the grades table, `passed/total` per student to the summary.
"""

from __future__ import annotations

import ast
import copy
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fer_book.student import SOLUTION_TAG
from fer_book.toc import repo_root, toc_notebooks
from fer_utils.errors import FerError

DEFAULT_TIMEOUT_S = 300
STATUSES = ("passed", "failed", "unanswered", "error", "timeout", "tampered")
GRADE_COLUMNS = ["student", "chapter", "exercise", "passed", "status", "message"]
SUMMARY_COLUMNS = ["student", "chapter", "passed", "total"]
EXERCISE_HEADING = re.compile(r"^###\s+Exercise\s+(\d+)")
CHECKERS_MODULE = "exercises"  # how the chapters import fer_utils.exercises: `from fer_utils import exercises`


class GradeError(FerError):
    """A submissions folder or notebook that cannot be graded (not a chapter of the book, no notebooks)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter: its number, and the checker call that ends its cell (as an AST dump)."""

    number: int
    checker_call: str


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book as grading needs it: its notebook name, title and exercises."""

    name: str
    title: str
    exercises: tuple[Exercise, ...]


@dataclass(frozen=True)
class Grade:
    """One row of the grades table."""

    student: str
    chapter: str
    exercise: int
    passed: bool
    status: str
    message: str


def cell_source(cell: dict) -> str:
    """A cell's source as one string (notebooks store it as a list of lines or as a string)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_solution(cell: dict) -> bool:
    """Whether a cell is tagged `solution` (never executed by grading)."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def title_of(notebook: dict) -> str:
    """A notebook's title: the first line of its first cell (`# 1. A tour of the datasets`)."""
    cells = notebook.get("cells", [])
    return cell_source(cells[0]).strip().splitlines()[0].strip() if cells and cell_source(cells[0]).strip() else ""


def last_statement(source: str) -> str | None:
    """The AST dump of a cell's last top-level statement (None: no statement, or not valid Python)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    return ast.dump(body[-1]) if body else None


def exercise_cells(notebook: dict) -> dict[int, int]:
    """Exercise number -> index of its cell: the first code cell, not a solution, after `### Exercise N`."""
    found: dict[int, int] = {}
    cells = notebook.get("cells", [])
    for i, cell in enumerate(cells):
        heading = EXERCISE_HEADING.match(cell_source(cell).strip()) if cell.get("cell_type") == "markdown" else None
        if heading is None or int(heading.group(1)) in found:
            continue
        following = (j for j in range(i + 1, len(cells)) if cells[j].get("cell_type") == "code")
        j = next((j for j in following if not is_solution(cells[j])), None)
        if j is not None:
            found[int(heading.group(1))] = j
    return found


def read_chapter(path: Path) -> Chapter:
    """A chapter's title and its exercises with their checker calls, from the book's own notebook."""
    import json

    notebook = json.loads(Path(path).read_text())
    cells = notebook["cells"]
    exercises = tuple(
        Exercise(number, last_statement(cell_source(cells[index])) or "")
        for number, index in sorted(exercise_cells(notebook).items())
    )
    return Chapter(Path(path).stem, title_of(notebook), exercises)


def book_chapters(root: Path | None = None) -> dict[str, Chapter]:
    """Every chapter of the book that has exercises, by title."""
    root = root or repo_root()
    chapters = [read_chapter(root / path) for path in toc_notebooks(root)]
    return {chapter.title: chapter for chapter in chapters if chapter.exercises}


def checker_names() -> frozenset[str]:
    """`exercises` and the functions and classes the `fer_utils.exercises` package defines in its chapter
    modules (`ch01` … `ch09`) and `feedback` (checkers, `Feedback`, helpers)."""
    import importlib
    import inspect
    import pkgutil

    from fer_utils import exercises

    modules = [exercises] + [
        importlib.import_module(f"{exercises.__name__}.{info.name}")
        for info in pkgutil.iter_modules(exercises.__path__)
    ]
    defined = {
        name
        for module in modules
        for name, value in vars(module).items()
        if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__.startswith(exercises.__name__)
    }
    return frozenset(defined | {CHECKERS_MODULE})


def _bound_names(node: ast.AST) -> Iterable[tuple[str, str]]:
    """(name, how) for each name a statement binds or changes: definitions, assignments (also of an
    attribute or item of a name), imports under a name, `setattr(name, …)`, `global`/`del`."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name, "defines"
    elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete, ast.For, ast.With, ast.NamedExpr)):
        targets = getattr(node, "targets", None) or [
            getattr(node, "target", None),
            *(item.optional_vars for item in getattr(node, "items", []) or []),
        ]
        for target in targets:
            for sub in ast.walk(target) if target is not None else ():
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                    yield sub.id, "assigns"
                elif isinstance(sub, (ast.Attribute, ast.Subscript)) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                    base = sub.value
                    while isinstance(base, (ast.Attribute, ast.Subscript)):
                        base = base.value
                    if isinstance(base, ast.Name):
                        yield base.id, "changes"
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            legitimate = isinstance(node, ast.ImportFrom) and node.module == "fer_utils" and alias.asname is None
            if not legitimate:
                yield bound, "imports over"
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"setattr", "delattr"}
        and node.args
        and isinstance(node.args[0], ast.Name)
    ):
        yield node.args[0].id, "changes"


def tampering(notebook: dict, protected: frozenset[str] | None = None) -> list[str]:
    """What the notebook's code does to the checkers: each cell (solutions excluded) that defines,
    assigns, changes or imports over a name of `fer_utils.exercises` or `exercises` itself."""
    protected = checker_names() if protected is None else protected
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code" or is_solution(cell):
            continue
        try:
            tree = ast.parse(cell_source(cell))
        except SyntaxError:
            continue  # IPython magics or broken code: the run reports it as an error
        for node in ast.walk(tree):
            for name, how in _bound_names(node):
                if name in protected:
                    found.append(f"cell {index + 1} {how} `{name}`")
    return found


def graded_notebook(notebook: dict) -> tuple[dict, dict[int, int]]:
    """The notebook to execute (solution cells removed, outputs cleared) and where its exercise cells are."""
    clean = copy.deepcopy(notebook)
    clean["cells"] = [cell for cell in clean["cells"] if not is_solution(cell)]
    for cell in clean["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    clean.get("metadata", {}).pop("widgets", None)
    return clean, exercise_cells(clean)


def verdict(cell: dict) -> tuple[str, str]:
    """(status, message) of an executed exercise cell: its error, or the checker's displayed verdict."""
    from fer_utils.exercises import Feedback

    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return "error", f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    for output in cell.get("outputs", []):
        if output.get("output_type") == "execute_result":
            feedback = Feedback.from_text(cell_source({"source": output.get("data", {}).get("text/plain", "")}))
            if feedback is not None:
                status = "passed" if feedback.ok else "unanswered" if feedback.unanswered else "failed"
                return status, feedback.message
    return "error", "the cell displayed no verdict: end it with the checker call, as in the chapter (no `;`)"


@dataclass(frozen=True)
class Stop:
    """Where and why a run stopped before its end: the cell index and the grade status of what was left."""

    index: int
    status: str
    message: str


def execute_submission(notebook: dict, timeout_s: float, workdir: Path) -> tuple[dict, Stop | None]:
    """Execute `notebook` (already cleaned) in a fresh kernel, all cells within `timeout_s` seconds.

    Returns the executed notebook and where it stopped (None: it finished): past the time limit
    (`timeout`) or with a dead kernel (`error`, e.g. out of memory). Errors in cells are kept as outputs
    and the run goes on; the kernel is shut down (killed) at the end.
    """
    import json

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.reads(json.dumps(notebook), as_version=4)  # each cell's source as one string
    client = NotebookClient(
        nb,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    deadline = time.monotonic() + timeout_s
    late = f"the notebook did not finish within {timeout_s:g} s"
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return nb, Stop(index, "timeout", late)
            client.timeout = max(1, int(remaining))
            try:
                client.execute_cell(cell, index)
            except (CellTimeoutError, TimeoutError):
                return nb, Stop(index, "timeout", late)
            except DeadKernelError as exc:
                return nb, Stop(index, "error", f"the kernel died in cell {index + 1} ({exc}); out of memory?")
    return nb, None


def chapter_of(notebook: dict, chapters: dict[str, Chapter]) -> Chapter | None:
    """The chapter a submitted notebook is a copy of (by its title), or None."""
    return chapters.get(title_of(notebook))


def grade_notebook(path: Path, chapter: Chapter, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Grade]:
    """The grades of one submitted notebook of `chapter`, one per exercise."""
    import json

    notebook = json.loads(Path(path).read_text())
    student = path.parent.name if path.stem == chapter.name else path.stem
    clean, cells = graded_notebook(notebook)
    grades: dict[int, tuple[str, str]] = {}
    tampered = tampering(clean)
    for exercise in chapter.exercises:
        if exercise.number not in cells:
            grades[exercise.number] = ("tampered", f"the cell of exercise {exercise.number} is missing")
        elif tampered:
            grades[exercise.number] = ("tampered", "the checkers were changed: " + "; ".join(tampered))
        elif last_statement(cell_source(clean["cells"][cells[exercise.number]])) != exercise.checker_call:
            grades[exercise.number] = ("tampered", "the checker call of this exercise differs from the chapter's")
    if len(grades) < len(chapter.exercises):
        with tempfile.TemporaryDirectory(prefix="fer-grade-") as workdir:
            executed, stop = execute_submission(clean, timeout_s, Path(workdir))
        for exercise in chapter.exercises:
            if exercise.number in grades:
                continue
            index = cells[exercise.number]
            if stop is not None and index >= stop.index:
                grades[exercise.number] = (stop.status, stop.message)
            else:
                grades[exercise.number] = verdict(executed.cells[index])
    return [
        Grade(student, chapter.name, number, status == "passed", status, message)
        for number, (status, message) in sorted(grades.items())
    ]


def submissions_of(folder: Path, chapters: dict[str, Chapter]) -> list[tuple[Path, Chapter]]:
    """Every notebook under `folder` with its chapter; a GradeError naming each one that is no chapter."""
    import json

    paths = sorted(p for p in Path(folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise GradeError(f"no notebooks (*.ipynb) under {folder}")
    found, unknown = [], []
    for path in paths:
        try:
            chapter = chapter_of(json.loads(path.read_text()), chapters)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            chapter = None
        if chapter is None:
            unknown.append(str(path))
        found.append((path, chapter))
    if unknown:
        titles = "; ".join(sorted(chapters))
        raise GradeError(
            f"{len(unknown)} notebook(s) are no chapter with exercises (their title, the first line of the first "
            f"cell, must be a chapter's: {titles}): " + ", ".join(unknown)
        )
    return found


def summarize(grades: pd.DataFrame) -> pd.DataFrame:
    """passed / total exercises per student and chapter."""
    summary = grades.groupby(["student", "chapter"], sort=True)["passed"].agg(passed="sum", total="size")
    return summary.reset_index()[SUMMARY_COLUMNS]


def summary_path(out: Path) -> Path:
    """Where the summary of `grades.csv` goes: `grades_summary.csv` beside it."""
    return out.with_name(f"{out.stem}_summary{out.suffix or '.csv'}")


def grade_folder(
    submissions: Path, out: Path, timeout_s: float = DEFAULT_TIMEOUT_S, root: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grade every notebook under `submissions`; write `out` (grades) and its summary; return both tables."""
    found = submissions_of(submissions, book_chapters(root))  # every notebook recognised before any runs
    rows = [grade for path, chapter in found for grade in grade_notebook(path, chapter, timeout_s)]
    grades = pd.DataFrame(rows, columns=GRADE_COLUMNS)
    summary = summarize(grades)
    out.parent.mkdir(parents=True, exist_ok=True)
    grades.to_csv(out, index=False)
    summary.to_csv(summary_path(out), index=False)
    return grades, summary
