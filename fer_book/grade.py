"""Grading a class: each submitted chapter notebook run in a sandbox of its own, each exercise judged in
another process, apart from the student's code, by the pristine checkers on the grader's own reference.

A submission is a student edition of a chapter (`python -m fer_book student`) that a student completed,
read as `fer_book.grade_notebooks` says (its chapter, its key and student, its exercises). Grading:

1. checks `--out` and its summary before any work (`fer_book.grade_sheet`), and that it can isolate the
   submissions (`fer_book.grade_sandbox`: bubblewrap; without it, only with `--unsafe-no-sandbox`);
2. reads every submission once, before anything runs: a corrupt, empty or nbformat-3 file is an `error`
   row with the reason, a valid notebook that is no chapter stops the run (nothing executed); keeps the
   rows of the previous grade sheet whose fingerprint (the notebook's bytes, the checkers, the chapter)
   still matches, and grades only the others; of two notebooks of one student for one chapter it grades
   the first by name (the other `skipped`), and notes each double hand-in and each copy of another's;
3. copies the book (package, tooling, chapters) once: the pristine copy that every sandbox sees;
4. runs each chapter of the book once, from the pristine copy, in a sandbox (`fer_book.grade_runner`),
   pickling each checker's reference arguments (the chapter's own `clips`, models, tables) right after
   its exercise's cell: the *reference*, which no submission ever touches;
5. runs each submission, its `solution` cells dropped, in a fresh kernel in a sandbox of its own, under
   one time limit for the whole notebook and a cap on its output. After each exercise's cell the kernel
   hands over the answer as plain data (`fer_utils.book.exercises.exchange`), and a second sandbox
   (`fer_book.grade_referee`, a fresh process the student's code never touched) decodes it and runs the
   chapter's pristine checker on it and on the reference; a function of the student's is called in the
   student's kernel and its result handed back as data again;
6. writes the grades and their summary after each submission, atomically, both or neither, formula
   prefixes neutralised (`fer_book.grade_sheet`): a grader killed halfway keeps every finished grade.

One row per (submission, exercise) goes to the grades table, `passed/total` per submission to the summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fer_book.execute import GRADE_TIMEOUT_S
from fer_book.grade_notebooks import (
    Chapter,
    Exercise,
    Submission,
    book_chapters,
    hidden_exercises,
    read_submissions,
    runnable_notebook,
    second_hand_ins,
    skipped_checkpoints,
    submission_notes,
    submission_paths,
)
from fer_book.grade_sandbox import Bind, Broken, Isolation, Layout, Limits, Sandboxed, check_isolation, make_layout
from fer_book.grade_sheet import GradeSheet, check_grade_outputs, grade_sheet_lock
from fer_book.toc import repo_root, toc_notebooks
from fer_utils.storage.locking import process_alive

STATUSES = ("passed", "failed", "unanswered", "error", "timeout", "tampered")  # a checker's verdicts
# besides them the sheet has `skipped`: a student's second notebook of one chapter, not graded (`second_hand_ins`)
# What a chapter's grading depends on besides its notebook: a change to any of them regrades its submissions.
GRADING_CODE = (
    "fer_utils/book/exercises",
    "fer_book/grade.py",
    "fer_book/grade_notebooks.py",
    "fer_book/grade_runner.py",
    "fer_book/grade_referee.py",
)
START_S = 180  # seconds a sandbox may take to start (Python, the kernel) beyond a notebook's own time
GRACE_S = 15  # seconds a sandbox may answer late, once a notebook's time is up, before it is killed
WORK_PREFIX = "fer-grade-"  # the grader's working folder: fer-grade-<pid>-<random> in the temporary folder


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
    fingerprint: str = ""


def folder_digest(root: Path, names: tuple[str, ...]) -> str:
    """sha256 of the files under `root`'s `names` (folders walked in order, byte code left out)."""
    digest = hashlib.sha256()
    for name in names:
        paths = sorted((root / name).rglob("*")) if (root / name).is_dir() else [root / name]
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass
class Reference:
    """The grader's own run of one chapter: the folder of its pickled reference arguments, and what went
    wrong for each exercise it could not give a reference for."""

    folder: Path
    problems: dict[int, str]


@dataclass
class Run:
    """The sandboxes of one submission: the student's kernel (`kernel`) and the checks (`referee`)."""

    kernel: Sandboxed
    referee: Sandboxed
    deadline: float
    late: str


class Grader:
    """Grades submissions one at a time, each in sandboxes of its own, against each chapter's reference
    (made once, on first need)."""

    def __init__(self, layout: Layout, isolation: Isolation, limits: Limits, timeout_s: float, work: Path) -> None:
        self.layout, self.isolation, self.limits, self.timeout_s = layout, isolation, limits, timeout_s
        self.work = work
        self.references: dict[str, Reference] = {}
        self.count = 0

    def start(self, argv: list[str], binds: list[Bind], own_user: bool = True, **options: object) -> Sandboxed:
        """One sandboxed Python process of the pristine copy (`python -m …`)."""
        self.count += 1
        host_tmp = self.work / f"tmp-{self.count}"
        return Sandboxed(
            [str(self.layout.python), *argv],
            self.layout,
            self.isolation,
            self.limits,
            binds=binds,
            own_user=own_user,
            host_tmp=host_tmp,
            **options,  # type: ignore[arg-type]
        )

    def folder(self, name: str, mode: int = 0o755) -> Path:
        """A fresh folder of this grading run's own (shown to sandboxes through binds)."""
        path = self.work / name
        path.mkdir()
        path.chmod(mode)
        return path

    def inbox(self, name: str, notebook: dict) -> tuple[Path, Path]:
        """A folder holding `notebook` (read-only to the sandbox that runs it) and the notebook's path."""
        folder = self.folder(name)
        path = folder / "notebook.ipynb"
        path.write_text(json.dumps(notebook))
        path.chmod(0o644)
        return folder, path

    def reference(self, chapter: Chapter) -> Reference:
        """The chapter's reference: the book's own chapter run once in a sandbox (cache writable: it is the
        book's code), each exercise's reference arguments pickled right after its cell."""
        if chapter.name in self.references:
            return self.references[chapter.name]
        runnable, cells = runnable_notebook(chapter.notebook or {}, chapter)
        inbox, notebook = self.inbox(f"book-{chapter.name}", runnable)
        folder = self.folder(f"reference-{chapter.name}")
        exercises = {cells[e.number]: e for e in chapter.exercises if e.number in cells}
        problems = {e.number: "its cell is missing from the book's chapter" for e in chapter.exercises}
        deadline = time.monotonic() + self.timeout_s + START_S
        argv = ["-m", "fer_book.grade_runner", str(notebook), "--output-limit", str(self.limits.output_chars)]
        binds = [Bind(inbox, inbox), Bind(folder, folder, writable=True)]
        log = self.work / f"reference-{chapter.name}.log"
        try:
            with self.start(argv, binds, own_user=False, writable_cache=True, stderr=log) as runner:
                ready = runner.receive(deadline)
                if "stop" in ready:
                    raise Broken("ended", str(ready["stop"].get("message")))
                for index in range(len(runnable["cells"])):
                    remaining = deadline - time.monotonic()
                    reply = request(runner, {"op": "run", "index": index, "timeout": remaining}, deadline)
                    if "stop" in reply:
                        raise Broken("ended", f"cell {index + 1}: {reply['stop'].get('message') or 'out of time'}")
                    if index not in exercises:
                        continue
                    exercise = exercises[index]
                    path = folder / f"exercise-{exercise.number}.pickle"
                    saved = request(
                        runner,
                        {
                            "op": "reference",
                            "exercise": exercise.number,
                            "source": exercise.reference,
                            "path": str(path),
                            "timeout": deadline - time.monotonic(),
                        },
                        deadline,
                    )
                    error = reply.get("error") or saved.get("error") or (saved.get("stop") or {}).get("message")
                    if error:
                        problems[exercise.number] = f"its cell raised {error}"
                    else:
                        problems.pop(exercise.number)
        except Broken as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            for number in problems:
                problems[number] = f"the book's chapter stopped ({exc.message}) {tail}".strip()
        self.references[chapter.name] = Reference(folder, problems)
        return self.references[chapter.name]

    def grade(self, submission: Submission) -> dict[int, tuple[str, str]]:
        """(status, message) of each exercise of `submission`'s chapter, judged in sandboxes of its own."""
        chapter = submission.chapter
        if submission.problem is not None or submission.notebook is None or chapter is None:
            numbers = [e.number for e in chapter.exercises] if chapter else [0]
            return {number: ("error", submission.problem or "unreadable") for number in numbers}
        runnable, cells = runnable_notebook(submission.notebook, chapter)
        hidden = hidden_exercises(submission.notebook)
        grades = {
            e.number: missing_cell(e.number, e.number in hidden) for e in chapter.exercises if e.number not in cells
        }
        if len(grades) == len(chapter.exercises):
            return grades
        reference = self.reference(chapter)
        for number, problem in reference.problems.items():
            grades[number] = ("error", f"the grader could not run the book's chapter itself: {problem}")
        if len(grades) == len(chapter.exercises):
            return grades
        self.count += 1
        inbox, notebook = self.inbox(f"submission-{self.count}", runnable)
        exchange = self.folder(f"exchange-{self.count}", 0o777)
        late = f"the notebook did not finish within {self.timeout_s:g} s"
        try:
            with (
                self.start(
                    ["-m", "fer_book.grade_referee", str(reference.folder), str(exchange)],
                    [Bind(reference.folder, reference.folder), Bind(exchange, exchange, writable=True)],
                    stderr=self.work / "referee.log",
                    role="referee",
                ) as referee,
                self.start(
                    ["-m", "fer_book.grade_runner", str(notebook), "--output-limit", str(self.limits.output_chars)],
                    [Bind(inbox, inbox), Bind(exchange, exchange)],
                    role="kernel",
                ) as kernel,
            ):
                run = Run(kernel, referee, time.monotonic() + self.timeout_s, late)
                self.run_notebook(run, runnable, cells, chapter, grades)
        finally:
            shutil.rmtree(exchange, ignore_errors=True)
            shutil.rmtree(inbox, ignore_errors=True)
        return grades

    def run_notebook(
        self, run: Run, runnable: dict, cells: dict[int, int], chapter: Chapter, grades: dict[int, tuple[str, str]]
    ) -> None:
        """Run the submission's cells one by one; judge each exercise right after its cell. When the run
        stops (time, a dead kernel, a broken sandbox) every exercise not judged yet gets why."""
        at = {index: number for number, index in cells.items()}
        exercises = {e.number: e for e in chapter.exercises}
        stop: tuple[str, str] | None = None
        try:
            for sandbox in (run.referee, run.kernel):
                try:
                    ready = sandbox.receive(run.deadline + START_S)
                except Broken as exc:  # nothing of the student's ran yet: the machine's problem, not theirs
                    raise Stopped(("error", f"the {sandbox.role}'s sandbox did not start ({exc.message})")) from exc
                if "stop" in ready:
                    stop = stop_of(ready["stop"], run.late)
                    break
            for index in range(len(runnable["cells"])) if stop is None else ():
                reply = request(run.kernel, {"op": "run", "index": index, "timeout": remaining(run)}, grace(run))
                if "stop" in reply:
                    stop = stop_of(reply["stop"], run.late)
                    break
                number = at.get(index)
                if number is None or number in grades:
                    continue
                if reply.get("error"):
                    grades[number] = ("error", str(reply["error"]))
                    continue
                grades[number] = self.judge(run, exercises[number])
        except Broken as exc:
            stop = broken(exc, run)
        except Stopped as exc:
            stop = exc.stop
        for number in exercises:
            if number not in grades:
                grades[number] = stop or ("error", "the notebook's run ended before this exercise")

    def judge(self, run: Run, exercise: Exercise) -> tuple[str, str]:
        """The verdict on one exercise: the kernel hands over the answer, the referee judges it (calling
        the student's function in the kernel when the checker asks)."""
        reply = request(
            run.kernel,
            {"op": "export", "exercise": exercise.number, "source": exercise.answer, "timeout": remaining(run)},
            grace(run),
        )
        if "stop" in reply:
            raise Stopped(stop_of(reply["stop"], run.late))
        if reply.get("error"):
            return "error", f"your answer could not be handed to the grader: {reply['error']}"
        if not isinstance(reply.get("payload"), str):
            return "tampered", "your kernel handed over no answer (was the grader's helper in it replaced?)"
        check = {"op": "check", "exercise": exercise.number, "checker": exercise.checker, "answer": reply["payload"]}
        message = request(run.referee, check, grace(run))
        while "call" in message:
            arguments = str(message["call"].get("arguments"))
            call = {"op": "call", "exercise": exercise.number, "arguments": arguments, "timeout": remaining(run)}
            result = request(run.kernel, call, grace(run))
            if "stop" in result:
                raise Stopped(stop_of(result["stop"], run.late))
            payload, error = result.get("payload"), result.get("error")
            if not isinstance(payload, str) or error:
                payload, error = None, str(error or "no result written")[:2000]
            reply = {"result": payload, "error": error, "oversize": result.get("oversize") is True}
            message = request(run.referee, reply, grace(run))
        verdict = message.get("verdict")
        if not (
            isinstance(verdict, dict) and verdict.get("status") in STATUSES and isinstance(verdict.get("message"), str)
        ):
            return "error", "the checker's process gave no verdict"
        return verdict["status"], verdict["message"]


class Stopped(Exception):
    """The student's kernel stopped (time, a dead kernel, its output cap) while an exercise was judged."""

    def __init__(self, stop: tuple[str, str]) -> None:
        super().__init__(stop[1])
        self.stop = stop


def request(sandbox: Sandboxed, message: dict, deadline: float) -> dict:
    """Send one request and read its reply (a Broken names the sandbox it came from)."""
    try:
        sandbox.send(message, deadline)
        return sandbox.receive(deadline)
    except Broken as exc:
        exc.role = sandbox.role
        raise


def remaining(run: Run) -> float:
    """Seconds left of the submission's time."""
    return max(0.0, run.deadline - time.monotonic())


def grace(run: Run) -> float:
    """The deadline of a reply: the submission's time, and a little for the sandbox to say it ran out."""
    return run.deadline + GRACE_S


def stop_of(stop: object, late: str) -> tuple[str, str]:
    """(status, message) of a run the kernel's sandbox reported stopped."""
    if not isinstance(stop, dict) or stop.get("status") not in ("timeout", "error"):
        return "tampered", "the notebook's sandbox reported a stop the grader does not know"
    return str(stop["status"]), str(stop.get("message") or late)


def broken(exc: Broken, run: Run) -> tuple[str, str]:
    """(status, message) of a run whose sandbox broke off."""
    if exc.kind == "late":
        return "timeout", run.late
    if exc.role == "referee":
        return "error", f"the checker's process broke off: {exc.message}"
    return (
        "tampered",
        f"the grader's process in the notebook's sandbox broke off: {exc.message} (ended by the notebook?)",
    )


def missing_cell(number: int, hidden: bool) -> tuple[str, str]:
    """(status, message) of an exercise whose cell grading cannot run: tagged `solution` by the student, or gone."""
    if hidden:
        return "error", (
            f"the cell of exercise {number} is tagged `solution`, and grading never runs solution cells: "
            "remove that tag (View > Cell toolbar > Tags) and hand the notebook in again"
        )
    return "tampered", f"the cell of exercise {number} is missing"


def grade_rows(submission: Submission, grades: dict[int, tuple[str, str]], fingerprint: str) -> list[Grade]:
    """The rows of one submission, by exercise."""
    name = submission.chapter.name if submission.chapter else ""
    return [
        Grade(submission.student, submission.key, name, number, status == "passed", status, message, fingerprint)
        for number, (status, message) in sorted(grades.items())
    ]


def not_graded_rows(submission: Submission, graded: str) -> list[Grade]:
    """The rows of a second hand-in that is not graded: `skipped`, naming the one graded in its place."""
    why = f"not graded: {submission.student} also handed in {graded}, which is graded; remove one and grade again"
    numbers = [e.number for e in submission.chapter.exercises] if submission.chapter else [0]
    return grade_rows(submission, {number: ("skipped", why) for number in numbers}, "")


def fingerprints(found: list[Submission], book: Path) -> dict[str, str]:
    """Each submission's fingerprint: its bytes, and the code and chapter it is graded with."""
    code = folder_digest(book, GRADING_CODE)
    chapter_files = {Path(path).stem: book / path for path in toc_notebooks(book)}
    prints = {}
    for submission in found:
        name = submission.chapter.name if submission.chapter else ""
        chapter = chapter_files[name].read_bytes() if name in chapter_files else b""
        graded_with = hashlib.sha256(code.encode() + chapter).hexdigest()
        prints[submission.key] = f"{submission.digest[:24]}-{graded_with[:24]}"
    return prints


def timed(fingerprint: str, timeout_s: float) -> str:
    """The fingerprint of a submission that ran out of time: bound to the time limit as well, so that a rerun
    under another `--timeout` grades it again (a finished notebook's verdict holds under any limit and keeps
    its plain fingerprint)."""
    limit = f"{fingerprint}\0timeout={float(timeout_s)!r}".encode()
    return f"{fingerprint[:24]}-{hashlib.sha256(limit).hexdigest()[:24]}"


def row_fingerprint(grades: dict[int, tuple[str, str]], fingerprint: str, timeout_s: float) -> str:
    """The fingerprint a submission's rows carry: `timed` when one of its exercises ran out of time."""
    return timed(fingerprint, timeout_s) if any(status == "timeout" for status, _ in grades.values()) else fingerprint


def remove_dead_work_folders() -> None:
    """Remove the working folders (pristine copy, references) that a killed grader left in the temporary
    folder: those whose process is gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*-*"):
        pid = folder.name.removeprefix(WORK_PREFIX).split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def grade_folder(
    submissions: Path,
    out: Path,
    timeout_s: float = GRADE_TIMEOUT_S,
    root: Path | None = None,
    isolation: Isolation = Isolation.BWRAP,
    limits: Limits | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Grade every notebook under `submissions` not graded yet in `out`; write `out` (grades) and its
    summary after each one; return both tables and how many notebooks kept their previous grades."""
    root = Path(root or repo_root()).absolute()
    paths = submission_paths(submissions)
    inputs = [*paths, *(root / path for path in toc_notebooks(root)), root / "_toc.yml"]
    check_grade_outputs(out, inputs)
    check_isolation(isolation)
    remove_dead_work_folders()
    checkpoints = skipped_checkpoints(submissions)
    if checkpoints and progress is not None:
        progress(f"skipped {len(checkpoints)} notebook(s) in .ipynb_checkpoints (Jupyter's autosaves, not submissions)")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with grade_sheet_lock(out), tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-") as work:
        work_path = Path(work)
        work_path.chmod(0o755)
        layout = make_layout(root, work_path, isolation)
        found = read_submissions(paths, submissions, book_chapters(layout.book))  # all read before anything runs
        prints, skipped = fingerprints(found, layout.book), second_hand_ins(found)
        kept = {s.key: set() if s.key in skipped else {prints[s.key], timed(prints[s.key], timeout_s)} for s in found}
        notes = submission_notes(found)
        sheet = GradeSheet(out, kept, notes)
        for key, note in notes.items():
            if progress is not None:
                progress(f"note on {key}: {note}")
        grader = Grader(layout, isolation, limits or Limits(), timeout_s, work_path)
        for submission in found:
            if submission.key in skipped:
                sheet.add(not_graded_rows(submission, skipped[submission.key]))
                if progress is not None:
                    progress(
                        f"not graded {submission.key}: {submission.student} also handed in {skipped[submission.key]}"
                    )
                continue
            if sheet.has(submission.key):
                continue
            start = time.monotonic()
            grades = grader.grade(submission)
            rows = grade_rows(submission, grades, row_fingerprint(grades, prints[submission.key], timeout_s))
            sheet.add(rows)
            if progress is not None:
                passed = sum(row.passed for row in rows)
                progress(f"graded {submission.key}: {passed}/{len(rows)} in {time.monotonic() - start:.1f} s")
        sheet.write()  # also when every submission kept its grades (or one was removed since)
    return sheet.grades(), sheet.summary(), sheet.kept
