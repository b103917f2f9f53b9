"""`python -m fer_book grade SUBMISSIONS --chapter NN --out grades.csv`: a class graded with otter-grader.

Each submitted notebook is graded by `otter run` with the chapter's autograder in a sandbox of its own
(`fer_book.grade_sandbox`); the grades go to `fer_book.grade_sheet`'s sheet after each submission.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import pandas as pd

from fer_book.assign import assign_chapter, chapters_with_exercises
from fer_book.execute import GRADE_TIMEOUT_S
from fer_book.grade_sandbox import (
    STDOUT_BYTES,
    Bind,
    Isolation,
    Limits,
    check_isolation,
    make_layout,
    run_sandboxed,
)
from fer_book.grade_sheet import GradeSheet, check_grade_outputs, grade_sheet_lock
from fer_book.toc import repo_root
from fer_utils.errors import BookError, InputError, MissingFileError
from fer_utils.storage.locking import process_alive

# What a chapter's grading depends on besides its notebook and autograder: a change regrades its submissions.
GRADING_CODE = ("fer_utils/book/exercises", "fer_book/grade.py", "fer_book/assign.py")
WORK_PREFIX = "fer-grade-"  # the grader's working folder: fer-grade-<pid>-<random> in the temporary folder
CHECKPOINTS = ".ipynb_checkpoints"  # Jupyter's autosave folder: its notebooks are no submissions
MAX_NOTEBOOK_BYTES = 64_000_000  # a submission larger than this is an error row, never read into memory
MESSAGE_CHARS = 2000  # of a message in the grade sheet: what a notebook prints reaches it only so far
QUESTION = re.compile(r"^exercise_(\d+)$")
# otter in the sandbox, its output (and the notebook's) on stderr, then its results.json on stdout: nothing on disk
RUN_OTTER = '"$@" >&2; code=$?; cat results.json 2>/dev/null; exit $code'
SYMLINK = (
    "the file is a symbolic link: grading reads only regular files inside the submissions folder; hand in the notebook"
)
RAISED = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)): ?(.*)$")


class Grade(NamedTuple):
    """One row of the grades table."""

    student: str
    submission: str
    chapter: str
    exercise: int
    passed: bool
    status: str
    message: str
    fingerprint: str = ""


class Submission(NamedTuple):
    """One submitted notebook: where it is, its key and student, its bytes (or why it cannot be read)."""

    path: Path
    key: str
    student: str
    data: bytes | None
    problem: str | None = None


def submission_paths(folder: Path) -> list[Path]:
    """Every notebook under `folder` (checkpoints left out), sorted; BookError when there is none."""
    if not Path(folder).is_dir():
        raise BookError(f"the submissions folder {folder} is not a folder")
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() == ".ipynb" and CHECKPOINTS not in p.parts)
    if not paths:
        raise BookError(f"no notebooks (*.ipynb) under {folder}")
    return paths


def submission_key(relative: PurePosixPath) -> str:
    """A submission's unique name: its relative path when plain, else escaped (then it holds a backslash)."""
    text = relative.as_posix()
    try:
        text.encode("utf-8")
        plain = "\\" not in text and unicodedata.is_normalized("NFC", text) and text.isprintable()
    except UnicodeEncodeError:
        plain = False
    return text if plain else text.encode("unicode_escape", "surrogatepass").decode("ascii")


def student_of(relative: PurePosixPath, chapter: str) -> str:
    """The student: the path without `.ipynb`, or the folder for `<student>/<chapter>.ipynb`; NFC, one line."""
    name = relative.parent if relative.stem == chapter and relative.parent.parts else relative.with_suffix("")
    text = unicodedata.normalize("NFC", os.fsencode(name.as_posix()).decode("utf-8", "backslashreplace"))
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def read_file(path: Path) -> tuple[bytes | None, str | None]:
    """(bytes, None), or (None, why) for a symbolic link (never followed), what is no regular file (a FIFO is never
    read), is too large or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        why = SYMLINK if exc.errno == errno.ELOOP else f"the file cannot be read ({exc.strerror or exc})"
        return None, why
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "it is not a notebook file (a folder, a FIFO or a device); hand in the saved .ipynb"
        if info.st_size > MAX_NOTEBOOK_BYTES:
            return None, f"the file is {info.st_size / 1e6:.0f} MB, over the {MAX_NOTEBOOK_BYTES / 1e6:g} MB allowed"
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(MAX_NOTEBOOK_BYTES + 1), None
    except OSError as exc:
        return None, f"the file cannot be read ({exc.strerror or exc})"
    finally:
        os.close(fd)


def notebook_problem(data: bytes) -> str | None:
    """Why `data` is no notebook in nbformat 4, the one otter grades (else it says "assignment 'None'"); None if it is."""
    try:
        notebook = json.loads(data)
    except (ValueError, RecursionError):
        return "the file is not a notebook (not JSON text); hand in the saved .ipynb"
    version = notebook.get("nbformat") if isinstance(notebook, dict) else None
    if type(version) is int and version != 4:
        return (
            f"the notebook is in nbformat {version}, the grader reads nbformat 4: open it in Jupyter and save it "
            "(Jupyter saves nbformat 4), then hand it in again"
        )
    if version != 4 or not isinstance(notebook.get("cells"), list):
        return "the file is JSON but no Jupyter notebook (no nbformat 4 and list of cells); hand in the saved .ipynb"
    return None


def read_submissions(folder: Path, chapter: str) -> list[Submission]:
    """Every submission under `folder`, read once before anything runs."""
    found = []
    for path in submission_paths(folder):
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        data, problem = read_file(path)
        problem = problem or notebook_problem(data or b"")
        data = None if problem else data
        found.append(Submission(path, submission_key(relative), student_of(relative, chapter), data, problem))
    return found


def copies(found: list[Submission]) -> dict[str, str]:
    """A note on each submission whose bytes another student's submission has too."""
    notes = {}
    for s in found:
        same = [o.key for o in found if o.key != s.key and o.student != s.student and s.data and o.data == s.data]
        if same:
            notes[s.key] = f"byte for byte the same notebook as {', '.join(same)}: check with both students"
    return notes


def questions(autograder: Path) -> list[int]:
    """The exercise numbers of an autograder zip's questions (`tests/exercise_N.py`); an error when it has none."""
    if not Path(autograder).is_file():
        what = "is a folder" if Path(autograder).is_dir() else "does not exist"
        raise MissingFileError(f"--autograder {autograder} {what}: give the autograder zip `fer_book assign` wrote")
    try:
        with zipfile.ZipFile(autograder) as archive:
            names = [PurePosixPath(n) for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"--autograder {autograder} cannot be read as a zip archive ({exc})") from None
    found = [QUESTION.match(n.stem) for n in names if n.parent == PurePosixPath("tests") and n.suffix == ".py"]
    if not any(found):
        raise InputError(
            f"--autograder {autograder} holds no tests/exercise_N.py, so it grades nothing: give the "
            "autograder/NN_name-autograder.zip that `python -m fer_book assign` wrote for this chapter"
        )
    return sorted(int(m.group(1)) for m in found if m)


def autograder_digest(autograder: Path, root: Path) -> str:
    """sha256 of what grading a submission depends on: the zip's files (not its time stamps) and GRADING_CODE."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(autograder) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode() + b"\0" + archive.read(name))
    for name in GRADING_CODE:
        paths = sorted((root / name).rglob("*.py")) if (root / name).is_dir() else [root / name]
        for path in paths:
            if path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def failure_message(output: str) -> tuple[str, str]:
    """(status, message) of a failed otter test, by the first exception in its output."""
    raised = [m for m in map(RAISED.match, output.splitlines()) if m]
    if not raised:
        return "failed", output.strip()[-2000:] or "the test failed without a message"
    name, message = raised[0].group(1), raised[0].group(2).strip()  # the first: doctest goes on after a failure
    if name != "AssertionError":
        return "error", f"{name}: {message}"
    if message.startswith("Not answered yet"):
        return "unanswered", message
    if message.startswith("tampered"):
        return "tampered", message
    return "failed", message


def read_results(results: bytes, numbers: list[int]) -> dict[int, tuple[str, str]]:
    """(status, message) per exercise from otter's results.json (Gradescope's format)."""
    parsed = json.loads(results)
    listed = parsed.get("tests", []) if isinstance(parsed, dict) else []
    tests = {t.get("name"): t for t in listed if isinstance(t, dict)}
    grades = {}
    for number in numbers:
        test = tests.get(f"exercise_{number}")
        if test is None:
            grades[number] = ("error", "otter gave no result for this exercise")
        elif test.get("score") is not None and test.get("score") == test.get("max_score"):
            grades[number] = ("passed", "all tests passed")
        else:
            grades[number] = failure_message(str(test.get("output", "")))
    return grades


class Grader:
    """Grades one submission at a time with `otter run` in a sandbox of its own."""

    def __init__(
        self, root: Path, work: Path, autograder: Path, chapter: str, isolation: Isolation, timeout_s: float
    ) -> None:
        self.work, self.chapter, self.isolation, self.timeout_s = work, chapter, isolation, timeout_s
        self.layout = make_layout(root, work, isolation)
        self.inbox = work / "inbox"
        self.inbox.mkdir()
        self.autograder = self.inbox / "autograder.zip"
        shutil.copyfile(autograder, self.autograder)
        self.numbers = questions(self.autograder)
        self.count = 0

    def inbox_copy(self, submission: Submission, name: str) -> Path:
        """The submission's copy that its sandbox reads; BookError when this machine cannot write it (its own fault,
        never the notebook's: nothing is recorded for it, and the next run grades it)."""
        # under the chapter's own name: otter's init cell opens the notebook by it, else no `grader.check` counts
        folder = self.inbox / name
        notebook = folder / f"{self.chapter}.ipynb"
        try:
            folder.mkdir()
            notebook.write_bytes(submission.data or b"")
            for path in (self.inbox, folder, notebook, self.autograder):
                path.chmod(0o755 if path.is_dir() else 0o644)
        except OSError as exc:
            raise BookError(
                f"grading stopped at {submission.key}: the grader could not write its copy in {folder} "
                f"({exc.strerror or exc}), a failure of this machine, not of the notebook; the grades written so "
                "far are kept: free space in the temporary folder (TMPDIR) and run again to grade the rest"
            ) from exc
        return notebook

    def grade(self, submission: Submission) -> dict[int, tuple[str, str]]:
        """(status, message) per exercise of one submission."""
        if submission.data is None:
            return dict.fromkeys(self.numbers, ("error", submission.problem or "unreadable"))
        self.count += 1
        name = f"submission-{self.count}"
        notebook = self.inbox_copy(submission, name)
        otter = ("/bin/sh", "-c", RUN_OTTER, "sh", self.layout.python, "-m", "otter", "run", "-a", self.autograder)
        argv = [str(part) for part in (*otter, "-o", ".", notebook)]
        start = time.monotonic()
        binds = [Bind(self.inbox, self.inbox)]  # read-only: the sandbox writes nothing on the host
        done = run_sandboxed(argv, self.layout, self.isolation, Limits(), binds, self.timeout_s, self.work / name)
        shutil.rmtree(notebook.parent, ignore_errors=True)
        if done.code is None:
            return dict.fromkeys(self.numbers, ("timeout", f"the notebook did not finish within {self.timeout_s:g} s"))
        if done.code == 0 and done.stdout is None:
            return dict.fromkeys(self.numbers, ("error", f"otter's results are over {STDOUT_BYTES >> 20} MB"))
        if done.code != 0 or not done.stdout:
            raised = [line.strip() for line in done.stderr.splitlines() if RAISED.match(line)]
            signal = -done.code if done.code < 0 else done.code - 128 if done.code > 128 else 0  # sh: 128 + n
            how = f"killed by signal {signal}, by the notebook?" if signal else f"exit {done.code}"
            last = f": {raised[-1]}" if raised else ""
            why = f"otter run stopped ({how}) after {time.monotonic() - start:.0f} s{last}"
            return dict.fromkeys(self.numbers, ("error", why))
        try:
            return read_results(done.stdout, self.numbers)
        except (ValueError, RecursionError) as exc:
            return dict.fromkeys(self.numbers, ("error", f"otter's results cannot be read ({exc})"))


def remove_dead_work_folders() -> None:
    """Remove the working folders that a killed grader left in the temporary folder (its process is gone)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*-*"):
        pid = folder.name.removeprefix(WORK_PREFIX).split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def names_chapter(chapter: str, stem: str) -> bool:
    """Whether `chapter` names the chapter `stem`: its whole name, or its number (`01` and `1` name `01_x`, not `10_y`)."""
    number = stem.split("_", 1)[0]
    return chapter == stem or (chapter.isdecimal() and number.isdecimal() and int(chapter) == int(number))


def chapter_path(root: Path, chapter: str) -> Path:
    """The chapter notebook with exercises that `chapter` names (`01`, `1` or `01_dataset_tour`)."""
    every = chapters_with_exercises(root)
    found = [path for path in every if names_chapter(chapter, path.stem)]
    if len(found) != 1:
        names = ", ".join(p.stem for p in every)
        raise BookError(f"--chapter {chapter} names {len(found)} chapters with exercises, not one (they are: {names})")
    return found[0]


def grade_folder(
    submissions: Path,
    chapter: str,
    out: Path,
    autograder: Path | None = None,
    timeout_s: float = GRADE_TIMEOUT_S,
    root: Path | None = None,
    isolation: Isolation = Isolation.BWRAP,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Grade every notebook not graded yet in `out`, writing it after each; both tables and how many were kept."""
    root = Path(root or repo_root()).absolute()
    book_chapter = chapter_path(root, chapter)
    if autograder is not None:
        questions(Path(autograder))
    paths = submission_paths(submissions)
    check_grade_outputs(out, [*paths, book_chapter, *([Path(autograder)] if autograder else [])])
    check_isolation(isolation)
    remove_dead_work_folders()
    found = read_submissions(Path(submissions), book_chapter.stem)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with grade_sheet_lock(out), tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-") as work:
        work_path = Path(work)
        work_path.chmod(0o755)
        if autograder is None:
            autograder = assign_chapter(book_chapter, work_path / "assign", root=root).autograder
        graded_with = autograder_digest(Path(autograder), root)[:24]
        prints = {s.key: f"{hashlib.sha256(s.data or b'').hexdigest()[:24]}-{graded_with}" for s in found}
        sheet = GradeSheet(out, {key: {value} for key, value in prints.items()}, copies(found))
        grader = Grader(root, work_path, Path(autograder), book_chapter.stem, isolation, timeout_s)
        for submission in found:
            if sheet.has(submission.key):
                continue
            start = time.monotonic()
            grades = {n: (s, m[:MESSAGE_CHARS]) for n, (s, m) in grader.grade(submission).items()}
            timed_out = any(status == "timeout" for status, _ in grades.values())
            fingerprint = f"{prints[submission.key]}-timeout" if timed_out else prints[submission.key]
            rows = [
                Grade(submission.student, submission.key, book_chapter.stem, n, s == "passed", s, m, fingerprint)
                for n, (s, m) in sorted(grades.items())
            ]
            sheet.add(rows)
            if progress is not None:
                passed = sum(row.passed for row in rows)
                progress(f"graded {submission.key}: {passed}/{len(rows)} in {time.monotonic() - start:.1f} s")
        sheet.write()
    return sheet.grades(), sheet.summary(), sheet.kept
