"""The submissions and the chapters as grading reads them: which chapter a notebook is, its exercises,
each exercise's checker call (its answer and its reference arguments), the notebook to run.

A submission's chapter is recognised by its title (the first line of its first cell). It is keyed by its
path relative to the submissions folder (`sec1/bob.ipynb` and `sec2/bob.ipynb` are two submissions); the
student is that path without `.ipynb` (or, for `<student>/<chapter>.ipynb`, the folder's path), its text
NFC-normalised so that one name typed on two systems reads the same.

Every submission is read once, before anything runs (`read_submissions`): a corrupt, empty or nbformat-3
file is kept with the reason it cannot be graded, a valid notebook that is no chapter of the book stops
grading (nothing executed). A chapter's exercises are found by their `### Exercise N` headings, each
ending with the book's checker call (`checker_call`): its first argument is the answer the student's
kernel hands over, the others are taken from the grader's own run of the chapter.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import os
import re
import stat
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fer_book.student import SOLUTION_TAG
from fer_book.toc import repo_root, toc_notebooks
from fer_utils.errors import FerError

EXERCISE_HEADING = re.compile(r"^###\s+Exercise\s+(\d+)")
CHECKPOINTS = ".ipynb_checkpoints"  # Jupyter's autosave folder: its notebooks are no submissions
MAX_NOTEBOOK_BYTES = 64_000_000  # a submission larger than this is an error row, never read into memory
MAX_JSON_DEPTH = 64  # a notebook nesting JSON deeper is an error row (a real notebook nests a dozen levels)
CHECKERS_MODULE = (
    "exercises"  # how the chapters name fer_utils.book.exercises: `from fer_utils.book.kit import exercises`
)


class GradeError(FerError):
    """A submissions folder or notebook that cannot be graded (not a chapter of the book, no notebooks)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter: its number, its checker call (AST dump), the checker's name in
    `fer_utils.book.exercises`, the source of the call's first argument (the answer) and of the others
    (what the answer is checked against, taken from the grader's own run of the chapter)."""

    number: int
    checker_call: str
    checker: str = ""
    answer: str = ""
    reference: str = ""


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book as grading needs it: its notebook name, title and exercises."""

    name: str
    title: str
    exercises: tuple[Exercise, ...]
    notebook: dict | None = None


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
    digest: str = ""


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


def checker_call(source: str) -> tuple[str, str, str]:
    """(checker name, source of its first argument, source of the others) of a cell ending with
    `exercises.check_…(…)`; ("", "", "") when it does not."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return "", "", ""
    last = body[-1] if body else None
    call = last.value if isinstance(last, ast.Expr) else None
    func = call.func if isinstance(call, ast.Call) else None
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == CHECKERS_MODULE):
        return "", "", ""
    if not call.args:
        return func.attr, "", ""
    rest = [ast.unparse(arg) for arg in call.args[1:]] + [ast.unparse(keyword) for keyword in call.keywords]
    return func.attr, ast.unparse(call.args[0]), ", ".join(rest)


def without_call(source: str, call: str) -> str:
    """`source` without its last statement when that is `call` (an AST dump): the grader judges the answer
    itself right after the cell, so the student's identical call need not run (and cost) in the kernel."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return source
    if not body or ast.dump(body[-1]) != call:
        return source
    lines = source.splitlines(keepends=True)
    line = lines[body[-1].lineno - 1].encode()[: body[-1].col_offset].decode()
    return "".join(lines[: body[-1].lineno - 1]) + line


def exercise_heading(cell: dict) -> int | None:
    """The number N of a markdown cell `### Exercise N`, else None."""
    heading = EXERCISE_HEADING.match(cell_source(cell).strip()) if cell.get("cell_type") == "markdown" else None
    return int(heading.group(1)) if heading else None


def exercise_cells(notebook: dict, solutions: bool = False) -> dict[int, int]:
    """Exercise number -> index of its cell: the first code cell after `### Exercise N` and before the next
    exercise's heading, not a solution (with `solutions`, whatever its tags: where a student's tag hid it)."""
    found: dict[int, int] = {}
    cells = notebook.get("cells", [])
    for i, cell in enumerate(cells):
        number = exercise_heading(cell)
        if number is None or number in found:
            continue
        end = next((j for j in range(i + 1, len(cells)) if exercise_heading(cells[j]) is not None), len(cells))
        following = (j for j in range(i + 1, end) if cells[j].get("cell_type") == "code")
        j = next((j for j in following if solutions or not is_solution(cells[j])), None)
        if j is not None:
            found[number] = j
    return found


def hidden_exercises(notebook: dict) -> set[int]:
    """The exercises whose own cell the student tagged `solution` (grading never runs such a cell)."""
    cells = notebook.get("cells", [])
    return {number for number, index in exercise_cells(notebook, solutions=True).items() if is_solution(cells[index])}


def read_chapter(path: Path) -> Chapter:
    """A chapter's title and its exercises with their checker calls, from the book's own notebook."""
    notebook = json.loads(Path(path).read_text())
    cells = notebook["cells"]
    exercises = tuple(
        Exercise(number, last_statement(cell_source(cells[index])) or "", *checker_call(cell_source(cells[index])))
        for number, index in sorted(exercise_cells(notebook).items())
    )
    return Chapter(Path(path).stem, title_of(notebook), exercises, notebook)


def book_chapters(root: Path | None = None) -> dict[str, Chapter]:
    """Every chapter of the book that has exercises, by title."""
    root = root or repo_root()
    chapters = [read_chapter(root / path) for path in toc_notebooks(root)]
    return {chapter.title: chapter for chapter in chapters if chapter.exercises}


def runnable_notebook(notebook: dict, chapter: Chapter) -> tuple[dict, dict[int, int]]:
    """The notebook to execute and, per exercise, the index of its cell: solution cells and outputs
    removed, and each exercise cell without its trailing checker call when it is the book's (the grader
    judges the answer itself, elsewhere)."""
    runnable = copy.deepcopy(notebook)
    runnable["cells"] = [cell for cell in runnable["cells"] if not is_solution(cell)]
    runnable.get("metadata", {}).pop("widgets", None)
    for cell in runnable["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    cells = exercise_cells(runnable)
    calls = {exercise.number: exercise.checker_call for exercise in chapter.exercises}
    for number, index in cells.items():
        if number in calls:
            cell = runnable["cells"][index]
            cell["source"] = without_call(cell_source(cell), calls[number])
    return runnable, {number: index for number, index in cells.items() if number in calls}


def chapter_of(notebook: dict, chapters: dict[str, Chapter]) -> Chapter | None:
    """The chapter a submitted notebook is a copy of (by its title), or None."""
    return chapters.get(title_of(notebook))


def notebook_named(path: Path) -> bool:
    """Whether `path` is named as a notebook: `.ipynb`, in any case (`ADA.IPYNB` is a submission too)."""
    return path.suffix.lower() == ".ipynb"


def skipped_checkpoints(folder: Path) -> list[Path]:
    """The notebooks under `folder` that lie in `.ipynb_checkpoints` (Jupyter's autosaves): never graded,
    but counted, so that grading says it left them out."""
    return sorted(p for p in Path(folder).rglob("*") if notebook_named(p) and CHECKPOINTS in p.parts)


def submission_paths(folder: Path) -> list[Path]:
    """Every notebook under `folder` (any case of `.ipynb`, whatever kind of file: a FIFO or a folder so
    named becomes an error row; checkpoints excluded), sorted; GradeError when there is none."""
    if not Path(folder).is_dir():
        raise GradeError(f"the submissions folder {folder} is not a folder")
    paths = sorted(p for p in Path(folder).rglob("*") if notebook_named(p) and CHECKPOINTS not in p.parts)
    if not paths:
        raise GradeError(f"no notebooks (*.ipynb) under {folder}")
    return paths


def plain_name(text: str) -> bool:
    """Whether a file name can stand in the tables as it is: valid UTF-8 (no undecodable bytes), NFC, and
    without a backslash (the escape character of the names that cannot)."""
    return "\\" not in text and unicodedata.is_normalized("NFC", text) and text.isprintable() and decodable(text)


def decodable(text: str) -> bool:
    """Whether a name read from the file system was valid UTF-8 (no surrogate stands for a raw byte)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def submission_key(relative: PurePosixPath) -> str:
    """How a submission is named in the tables, unique by construction: its relative path as it is when
    that is plain (`plain_name`), else escaped with Python's `unicode_escape` (`Zoe\\u0308`, a Latin-1
    byte as `\\udce9`, a backslash as two). Escaped keys always hold a backslash and plain ones never do,
    and the escape is one-to-one, so two files never share a key (an NFD `Zoë` and a file literally named
    `Zoe\\u0308` are two rows)."""
    text = relative.as_posix()
    return text if plain_name(text) else text.encode("unicode_escape", "surrogatepass").decode("ascii")


def student_of(relative: PurePosixPath, chapter_names: set[str]) -> str:
    """The student of a submission: its relative path without `.ipynb`, or the folder's path for
    `<student>/<chapter>.ipynb`; NFC-normalised (one name, however it was typed), a byte that is not UTF-8
    written as `\\xe9`, a control character (a newline) as `\\n` (the sheet's row stays one line)."""
    name = relative.parent if relative.stem in chapter_names and relative.parent.parts else relative.with_suffix("")
    text = unicodedata.normalize("NFC", os.fsencode(name.as_posix()).decode("utf-8", "backslashreplace"))
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def json_depth(value: object) -> int:
    """How deeply lists and objects nest in `value` (a scalar: 0), counted without recursion, so that a
    hostile notebook cannot exhaust the stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def read_submission_file(path: Path) -> tuple[bytes | None, str | None]:
    """(the file's bytes, None), or (None, why it cannot be read) for what is no regular file (a FIFO, a
    socket, a device, a folder, a dangling link), is larger than MAX_NOTEBOOK_BYTES or cannot be read. A
    FIFO is opened without blocking and never read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"the file cannot be read ({exc.strerror or exc}: a dangling link?); hand in the saved .ipynb"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else None
            return None, f"it is {kind or 'a special file'}, not a notebook file; hand in the saved .ipynb"
        if info.st_size > MAX_NOTEBOOK_BYTES:
            mb = MAX_NOTEBOOK_BYTES / 1e6
            return None, f"the file is {info.st_size / 1e6:.0f} MB, over the {mb:g} MB a notebook may have"
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(MAX_NOTEBOOK_BYTES + 1), None
    except OSError as exc:
        return None, f"the file cannot be read ({exc.strerror or exc})"
    finally:
        os.close(fd)


def parse_notebook(data: bytes) -> tuple[dict | None, str | None]:
    """(notebook, None) for a readable nbformat-4 notebook, else (None, why it cannot be graded)."""
    import nbformat

    if not data.strip():
        return None, "the file is empty: hand in the saved notebook"
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"the file is not a notebook (not JSON: {exc}); hand in the saved .ipynb"
    except RecursionError:
        notebook = None
    if notebook is None or json_depth(notebook) > MAX_JSON_DEPTH:
        return None, f"the notebook's JSON nests more than {MAX_JSON_DEPTH} levels deep: it is no saved notebook"
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
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        return None, f"the notebook is damaged ({type(exc).__name__}: {exc}); hand in the saved .ipynb"
    return notebook, None


def read_submissions(paths: list[Path], folder: Path, chapters: dict[str, Chapter]) -> list[Submission]:
    """Read every submission once, before anything runs; GradeError naming each readable notebook that is
    no chapter with exercises (nothing is executed then)."""
    names = {chapter.name for chapter in chapters.values()}
    by_name = {chapter.name: chapter for chapter in chapters.values()}
    found, unknown, keys = [], [], {}
    for path in paths:
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        data, problem = read_submission_file(path)
        notebook, problem = parse_notebook(data) if data is not None else (None, problem)
        chapter = chapter_of(notebook, chapters) if notebook is not None else by_name.get(path.stem)
        if notebook is not None and chapter is None:
            unknown.append(str(path))
        key, student = submission_key(relative), student_of(relative, names)
        if key in keys:  # never, by construction (submission_key); refused rather than one grade given twice
            raise GradeError(f"two submissions would share the key {key!r}: {keys[key]!r} and {str(path)!r}")
        keys[key] = str(path)
        digest = hashlib.sha256(data if data is not None else (problem or "").encode()).hexdigest()
        found.append(Submission(path, key, student, notebook, chapter, problem, digest))
    if unknown:
        titles = "; ".join(sorted(chapters))
        raise GradeError(
            f"{len(unknown)} notebook(s) are no chapter with exercises (their title, the first line of the first "
            f"cell, must be a chapter's: {titles}): " + ", ".join(unknown)
        )
    return found


def gradable(submission: Submission) -> bool:
    """Whether a submission can be run: a readable notebook of a known chapter."""
    return submission.problem is None and submission.notebook is not None and submission.chapter is not None


def chapter_name(submission: Submission) -> str:
    """The name of a submission's chapter ("" when it is not known)."""
    return submission.chapter.name if submission.chapter else ""


def second_hand_ins(found: list[Submission]) -> dict[str, str]:
    """The submissions that are not graded, each with the one graded in its place: of the readable notebooks
    that one student handed in for one chapter (`ada.ipynb` and `ada/<chapter>.ipynb`), the first by key."""
    first: dict[tuple[str, str], str] = {}
    skipped = {}
    for submission in sorted(filter(gradable, found), key=lambda s: s.key):
        graded = first.setdefault((submission.student, chapter_name(submission)), submission.key)
        if graded != submission.key:
            skipped[submission.key] = graded
    return skipped


def submission_notes(found: list[Submission]) -> dict[str, str]:
    """What grading notices about a submission, by key: another one of its student for the same chapter
    (or one whose chapter is not known) and which of them is graded (`second_hand_ins`); another student's
    submission with the same bytes (a hard or symbolic link to one file, or a copy)."""
    notes: dict[str, list[str]] = {s.key: [] for s in found}
    skipped = second_hand_ins(found)
    for s in found:
        same = [o for o in found if o.key != s.key and o.student == s.student and clash(s, o)]
        if same:
            graded = [o.key for o in (s, *same) if gradable(o) and o.key not in skipped]
            which = (
                f"graded: {', '.join(graded)} (the first readable one by name)"
                if graded
                else "none of them is a readable notebook to grade"
            )
            also = ", ".join(o.key for o in same)
            notes[s.key].append(f"a double hand-in: {s.student} also handed in {also}; {which}")
    readable = [s for s in found if s.notebook is not None]
    for s in readable:
        for other in (o for o in readable if o.key != s.key and o.student != s.student and o.digest == s.digest):
            how = "the same file as" if same_file(s.path, other.path) else "byte for byte the same notebook as"
            notes[s.key].append(f"{how} {other.key} (student {other.student}): check with both students")
    return {key: "; ".join(texts) for key, texts in notes.items() if texts}


def clash(a: Submission, b: Submission) -> bool:
    """Whether two submissions of one student stand for the same chapter (or one's chapter is unknown)."""
    return chapter_name(a) == chapter_name(b) or not chapter_name(a) or not chapter_name(b)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths are one file on disk (a hard link, or a symbolic link to it)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
