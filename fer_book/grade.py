"""Grading a class: each submitted chapter notebook run on a private copy in a fresh kernel, each exercise
graded by the package's own checker.

A submission is a student edition of a chapter (`python -m fer_book student`) that a student completed.
Its chapter is recognised by its title (the first line of its first cell). It is keyed by its path
relative to the submissions folder (`sec1/bob.ipynb` and `sec2/bob.ipynb` are two submissions); the
student is that path without `.ipynb` (or, for `<student>/<chapter>.ipynb`, the folder's path), its text
NFC-normalised so that one name typed on two systems reads the same. Grading:

1. checks `--out` and its summary before any work: no notebook, no input (a submission, a chapter, the
   table of contents), no folder, a place that can be written (`fer_book.grade_sheet`);
2. reads every submission once, before any kernel starts: a corrupt, empty or nbformat-3 file is an
   `error` row with the reason, a valid notebook that is no chapter stops the run (nothing executed);
3. runs each submission, its `solution` cells dropped, in a fresh kernel whose working folder is a
   private temporary copy (the originals are never written, and a notebook graded earlier cannot change
   what a later one is graded on), under one time limit for the whole notebook and a cap on its output;
4. after each exercise cell, calls the chapter's checker on the chapter's arguments through
   `fer_utils.book.exercises.integrity.Guard`, made before the student's first cell: the verdict is that of
   the package's own checker, and `tampered` when anything the checkers depend on was rebound. How the
   student's cell itself spells (or follows) its checker call does not matter;
5. writes the grades and their summary atomically, both or neither, formula prefixes neutralised
   (`fer_book.grade_sheet`).

One row per (submission, exercise) goes to the grades table, `passed/total` per submission to the summary.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import secrets
import tempfile
import time
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd
from nbclient import NotebookClient

from fer_book.execute import GRADE_TIMEOUT_S
from fer_book.grade_sheet import GRADE_COLUMNS, check_grade_outputs, summarize, summary_path, write_tables
from fer_book.student import SOLUTION_TAG
from fer_book.toc import repo_root, toc_notebooks
from fer_utils.book.exercises.integrity import VERDICT_MARK
from fer_utils.errors import FerError

OUTPUT_LIMIT = 32_000_000  # characters of output past which a notebook's run is stopped (a flooding kernel)
STATUSES = ("passed", "failed", "unanswered", "error", "timeout", "tampered")
EXERCISE_HEADING = re.compile(r"^###\s+Exercise\s+(\d+)")
CHECKERS_MODULE = (
    "exercises"  # how the chapters import fer_utils.book.exercises: `from fer_utils.book import exercises`
)
GUARD_NAME = "__fer_grade__"  # the kernel's `Guard`, made before the student's first cell


class GradeError(FerError):
    """A submissions folder or notebook that cannot be graded (not a chapter of the book, no notebooks)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter: its number, its checker call (AST dump), the checker's name in
    `fer_utils.book.exercises` and the source of the call's arguments."""

    number: int
    checker_call: str
    checker: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book as grading needs it: its notebook name, title and exercises."""

    name: str
    title: str
    exercises: tuple[Exercise, ...]


@dataclass(frozen=True)
class Submission:
    """One submitted notebook as read before grading: where it is, whose it is, and its content or why
    it cannot be graded."""

    path: Path
    key: str
    student: str
    notebook: dict | None
    chapter: Chapter | None
    problem: str | None = None


@dataclass(frozen=True)
class Grade:
    """One row of the grades table."""

    student: str
    submission: str
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


def checker_call(source: str) -> tuple[str, str]:
    """(checker name, source of its arguments) of a cell ending with `exercises.check_…(…)`; ("", "")
    when it does not."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return "", ""
    last = body[-1] if body else None
    call = last.value if isinstance(last, ast.Expr) else None
    func = call.func if isinstance(call, ast.Call) else None
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == CHECKERS_MODULE):
        return "", ""
    parts = [ast.unparse(arg) for arg in call.args] + [ast.unparse(keyword) for keyword in call.keywords]
    return func.attr, ", ".join(parts)


def without_call(source: str, call: str) -> str:
    """`source` without its last statement when that is `call` (an AST dump): the grader calls the checker
    itself right after the cell, so the student's identical call need not run (and cost) twice."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return source
    if not body or ast.dump(body[-1]) != call:
        return source
    lines = source.splitlines(keepends=True)
    line = lines[body[-1].lineno - 1].encode()[: body[-1].col_offset].decode()
    return "".join(lines[: body[-1].lineno - 1]) + line


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
    notebook = json.loads(Path(path).read_text())
    cells = notebook["cells"]
    exercises = tuple(
        Exercise(number, last_statement(cell_source(cells[index])) or "", *checker_call(cell_source(cells[index])))
        for number, index in sorted(exercise_cells(notebook).items())
    )
    return Chapter(Path(path).stem, title_of(notebook), exercises)


def book_chapters(root: Path | None = None) -> dict[str, Chapter]:
    """Every chapter of the book that has exercises, by title."""
    root = root or repo_root()
    chapters = [read_chapter(root / path) for path in toc_notebooks(root)]
    return {chapter.title: chapter for chapter in chapters if chapter.exercises}


def graded_notebook(notebook: dict, chapter: Chapter, nonce: str) -> tuple[dict, dict[int, tuple[int, int]]]:
    """The notebook to execute and, per exercise, the index of its cell and of its verdict cell.

    Solution cells are removed and outputs cleared; a first cell makes the kernel's `Guard` before any
    of the student's code runs; after each exercise cell a verdict cell calls the chapter's checker."""

    def code(source: str, name: str) -> dict:
        cell = {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
        return cell | {"id": f"fer-grade-{name}"}

    setup = (
        "from fer_utils.book.exercises.integrity import Guard as _FerGradeGuard\n"
        f"{GUARD_NAME} = _FerGradeGuard({nonce!r})\ndel _FerGradeGuard"
    )
    student = copy.deepcopy(notebook)
    student["cells"] = [cell for cell in student["cells"] if not is_solution(cell)]
    student.get("metadata", {}).pop("widgets", None)
    at = {index: number for number, index in exercise_cells(student).items()}
    calls = {exercise.number: exercise for exercise in chapter.exercises}
    cells, where = [code(setup, "guard")], {}
    for index, cell in enumerate(student["cells"]):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
        number = at.get(index)
        if number in calls:
            exercise = calls[number]
            cell["source"] = without_call(cell_source(cell), exercise.checker_call)
            arguments = f", {exercise.arguments}" if exercise.arguments else ""
            cells.append(code(f"{GUARD_NAME}.call({number}, {exercise.checker!r}{arguments})", f"verdict-{number}"))
            where[number] = (len(cells) - 2, len(cells) - 1)
    return student | {"cells": cells}, where


@dataclass(frozen=True)
class Stop:
    """Where and why a run stopped before its end: the cell index and the grade status of what was left."""

    index: int
    status: str
    message: str


def output_size(content: dict) -> int:
    """About how many characters an output message carries (its text, data and traceback)."""
    data = content.get("data") or {}
    parts = [content.get("text", ""), *data.values(), *(content.get("traceback") or [])]
    return sum(len(part) if isinstance(part, str) else len(json.dumps(part)) for part in parts)


class CappedClient(NotebookClient):
    """A NotebookClient that kills the kernel once the outputs pass `output_limit` characters (and keeps
    none after), so a kernel printing without end cannot fill the grader's memory; the run then ends as
    with a dead kernel, `flooded` set."""

    output_limit = OUTPUT_LIMIT
    output_seen = 0
    flooded = False

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> object:
        if self.flooded:
            return None
        self.output_seen += output_size(msg.get("content", {}))
        if self.output_seen > self.output_limit:
            self.flooded = True
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            if process is not None:
                process.kill()
            return None
        return super().output(outs, msg, display_id, cell_index)


def execute_submission(
    notebook: dict, timeout_s: float, workdir: Path, output_limit: int = OUTPUT_LIMIT
) -> tuple[dict, Stop | None]:
    """Execute `notebook` (already prepared) in a fresh kernel in `workdir`, all cells within `timeout_s`.

    Returns the executed notebook and where it stopped (None: it finished): past the time limit
    (`timeout`), with a dead kernel or past the output cap (`error`). Errors in cells are kept as outputs
    and the run goes on; the kernel is shut down at the end. The kernel's IPython profile is private to
    `workdir`, so no startup file one notebook writes runs in another's kernel.
    """
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.reads(json.dumps(notebook), as_version=4)  # each cell's source as one string
    client = CappedClient(
        nb,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.output_limit = output_limit
    deadline = time.monotonic() + timeout_s
    late = f"the notebook did not finish within {timeout_s:g} s"
    env = {**os.environ, "IPYTHONDIR": str(workdir / ".ipython"), "PYTHONDONTWRITEBYTECODE": "1"}
    with client.setup_kernel(env=env):
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
                if client.flooded:
                    mb = output_limit / 1e6
                    return nb, Stop(index, "error", f"the notebook printed more than {mb:g} MB; it was stopped there")
                return nb, Stop(index, "error", f"the kernel died in cell {index + 1} ({exc}); out of memory?")
    return nb, None


def cell_error(cell: dict) -> str | None:
    """The exception an executed cell raised, as `Name: value` (None: it raised none)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return None


def verdict(exercise_cell: dict, verdict_cell: dict, nonce: str) -> tuple[str, str]:
    """(status, message) of an exercise: the error of its cell, or the verdict its verdict cell printed."""
    error = cell_error(exercise_cell)
    if error is not None:
        return "error", error
    text = "".join(
        cell_source({"source": output.get("text", "")})
        for output in verdict_cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )
    mark = f"{VERDICT_MARK} {nonce} "
    lines = [line.removeprefix(mark) for line in text.splitlines() if line.startswith(mark)]
    if len(lines) > 1:
        return "tampered", f"the verdict was printed {len(lines)} times: something else prints in its place"
    if lines:
        found = json.loads(lines[0])
        return found["status"], found["message"]
    error = cell_error(verdict_cell)
    if error is not None:
        return "error", f"the checker could not run on your variables: {error}"
    return "error", "the checker printed no verdict (was `sys.stdout` replaced?)"


def chapter_of(notebook: dict, chapters: dict[str, Chapter]) -> Chapter | None:
    """The chapter a submitted notebook is a copy of (by its title), or None."""
    return chapters.get(title_of(notebook))


def grade_submission(submission: Submission, timeout_s: float = GRADE_TIMEOUT_S) -> list[Grade]:
    """The grades of one submission, one per exercise of its chapter (one `error` row when it could not
    be read and its chapter is unknown)."""
    chapter = submission.chapter

    def rows(grades: dict[int, tuple[str, str]]) -> list[Grade]:
        name = chapter.name if chapter else ""
        return [
            Grade(submission.student, submission.key, name, number, status == "passed", status, message)
            for number, (status, message) in sorted(grades.items())
        ]

    if submission.problem is not None or submission.notebook is None or chapter is None:
        numbers = [e.number for e in chapter.exercises] if chapter else [0]
        return rows({number: ("error", submission.problem or "unreadable") for number in numbers})
    nonce = secrets.token_hex(8)
    prepared, cells = graded_notebook(submission.notebook, chapter, nonce)
    grades = {
        e.number: ("tampered", f"the cell of exercise {e.number} is missing")
        for e in chapter.exercises
        if e.number not in cells
    }
    if len(grades) < len(chapter.exercises):
        with tempfile.TemporaryDirectory(prefix="fer-grade-") as workdir:
            (Path(workdir) / "submission.ipynb").write_text(json.dumps(submission.notebook))  # its private copy
            executed, stop = execute_submission(prepared, timeout_s, Path(workdir))
        for number, (index, verdict_index) in cells.items():
            if stop is not None and verdict_index >= stop.index:
                grades[number] = (stop.status, stop.message)
            else:
                grades[number] = verdict(executed.cells[index], executed.cells[verdict_index], nonce)
    return rows(grades)


def submission_paths(folder: Path) -> list[Path]:
    """Every notebook under `folder` (checkpoints excluded), sorted; GradeError when there is none."""
    if not Path(folder).is_dir():
        raise GradeError(f"the submissions folder {folder} is not a folder")
    paths = sorted(p for p in Path(folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise GradeError(f"no notebooks (*.ipynb) under {folder}")
    return paths


def submission_key(relative: PurePosixPath) -> str:
    """How a submission is named in the tables: its relative path, escaped (`Zoe\\u0308`) when its text is
    not NFC, so that two files whose names differ only in their Unicode form are two distinct rows."""
    text = relative.as_posix()
    return text if unicodedata.is_normalized("NFC", text) else text.encode("ascii", "backslashreplace").decode()


def student_of(relative: PurePosixPath, chapter_names: set[str]) -> str:
    """The student of a submission: its relative path without `.ipynb`, or the folder's path for
    `<student>/<chapter>.ipynb`; NFC-normalised (one name, however it was typed)."""
    name = relative.parent if relative.stem in chapter_names and relative.parent.parts else relative.with_suffix("")
    return unicodedata.normalize("NFC", name.as_posix())


def parse_notebook(data: bytes) -> tuple[dict | None, str | None]:
    """(notebook, None) for a readable nbformat-4 notebook, else (None, why it cannot be graded)."""
    import nbformat

    if not data.strip():
        return None, "the file is empty: hand in the saved notebook"
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"the file is not a notebook (not JSON: {exc}); hand in the saved .ipynb"
    if not isinstance(notebook, dict):
        return None, "the file is JSON but not a notebook"
    if notebook.get("nbformat") != 4:
        return None, (
            f"the notebook is nbformat {notebook.get('nbformat')}, not 4: open and save it in Jupyter or Colab"
        )
    try:
        with warnings.catch_warnings():  # cell ids added where an older Jupyter left none, without a warning
            warnings.simplefilter("ignore")
            _, notebook = nbformat.validator.normalize(notebook)
        nbformat.validate(nbformat.from_dict(notebook))
    except nbformat.ValidationError as exc:
        return None, f"the notebook is damaged ({exc.message}); hand in the saved .ipynb"
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return None, f"the notebook is damaged ({type(exc).__name__}: {exc}); hand in the saved .ipynb"
    return notebook, None


def read_submissions(paths: list[Path], folder: Path, chapters: dict[str, Chapter]) -> list[Submission]:
    """Read every submission once, before any kernel starts; GradeError naming each readable notebook
    that is no chapter with exercises (nothing is executed then)."""
    names = {chapter.name for chapter in chapters.values()}
    by_name = {chapter.name: chapter for chapter in chapters.values()}
    found, unknown = [], []
    for path in paths:
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        notebook, problem = parse_notebook(path.read_bytes())
        chapter = chapter_of(notebook, chapters) if notebook is not None else by_name.get(path.stem)
        if notebook is not None and chapter is None:
            unknown.append(str(path))
        found.append(
            Submission(path, submission_key(relative), student_of(relative, names), notebook, chapter, problem)
        )
    if unknown:
        titles = "; ".join(sorted(chapters))
        raise GradeError(
            f"{len(unknown)} notebook(s) are no chapter with exercises (their title, the first line of the first "
            f"cell, must be a chapter's: {titles}): " + ", ".join(unknown)
        )
    return found


def grade_folder(
    submissions: Path, out: Path, timeout_s: float = GRADE_TIMEOUT_S, root: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grade every notebook under `submissions`; write `out` (grades) and its summary; return both tables."""
    root = root or repo_root()
    paths = submission_paths(submissions)
    inputs = [*paths, *(root / path for path in toc_notebooks(root)), root / "_toc.yml"]
    check_grade_outputs(out, inputs)
    found = read_submissions(paths, submissions, book_chapters(root))  # all read before any kernel starts
    rows = [grade for submission in found for grade in grade_submission(submission, timeout_s)]
    grades = pd.DataFrame(rows, columns=GRADE_COLUMNS)
    summary = summarize(grades)
    write_tables({out: grades, summary_path(out): summary})
    return grades, summary
