"""The teacher's page's tables and each chapter's run time, written from the chapters and the book's time record.

`python -m fer_book teaching` writes them between markers (run times in "Time to learn"); `--check` exits 1 if stale.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from fer_book.assign import exercise_cells, title_of
from fer_book.assign import source as cell_source
from fer_book.markers import between, marker_command, write_changed
from fer_book.toc import toc_notebooks
from fer_utils.errors import BookError

PAGE = Path("book") / "teaching.md"
TIMES = Path("benchmarks") / "results" / "book_times.json"
EXERCISE_MARKERS = (
    "<!-- exercise table: written by `python -m fer_book teaching` from the chapters; do not edit -->",
    "<!-- end of the exercise table -->",
)
RUN_TIME_MARKERS = (
    "<!-- run time: written by `python -m fer_book teaching` from the book's time record; do not edit -->",
    "<!-- end of the run time -->",
)
PLAN_MARKERS = (
    "<!-- session plans: written by `python -m fer_book teaching` from the book's time record; do not edit -->",
    "<!-- end of the session plans -->",
)
# The rubric: a number or table is worth 1 point, a function 2 (it takes longer), an experiment 3.
POINTS = {"a number or a table": 1, "a function": 2, "an experiment": 3}
# The session plans: how many sessions, and which chapters (by number) each covers.
PLANS: dict[int, tuple[tuple[int, ...], ...]] = {
    2: ((1, 2, 3, 4), (5, 6, 7, 8, 9, 10)),
    4: ((1, 2), (3, 4), (5, 6), (7, 8, 9, 10)),
    10: tuple((n,) for n in range(1, 11)),
}


class ExerciseRow(NamedTuple):
    """One exercise as the teacher's page lists it."""

    chapter: str
    number: int
    asks: str
    checker: str
    checks: str
    kind: str
    seconds: float | None  # how long its solution ran in the book's time record (None: not recorded)

    @property
    def points(self) -> int:
        """Its points under the page's rubric (POINTS)."""
        return POINTS[self.kind]


def sentences(text: str) -> list[str]:
    """The sentences of `text`, each on one line (table cells: `|` escaped)."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return [s for s in re.split(r"(?<=[.?!])\s+(?=[A-Z`*(])", flat) if s]


def task_sentence(text: str) -> str:
    """The sentence of an exercise that sets the task (`Write …`, `Compute …`, a question), else its first."""
    found = sentences(text)
    tasks = [s for s in found if re.match(r"(Write|Compute|Build)\b", s) or s.endswith("?")]
    return (tasks or found or [""])[0]


def exercise_rows(root: Path) -> list[ExerciseRow]:
    """Every exercise of the book's chapters, in reading order."""
    from fer_utils.book import exercises

    record = json.loads((root / TIMES).read_text(encoding="utf-8")).get("exercise_seconds", {})
    rows = []
    for path in toc_notebooks(root):
        notebook = json.loads((root / path).read_text(encoding="utf-8"))
        cells = notebook["cells"]
        for number, index in sorted(exercise_cells(notebook).items()):
            heading = next(i for i in range(index, -1, -1) if cell_source(cells[i]).strip().startswith("### Exercise"))
            asks = task_sentence(cell_source(cells[heading]).split("\n", 1)[1])
            stub = cell_source(cells[index])
            called = re.search(r"exercises\.(check_\w+)\(", stub)
            if not called:
                raise BookError(f"{path}: exercise {number} calls no checker of fer_utils.book.exercises")
            name = called.group(1)
            function = "raise NotImplementedError" in stub or re.search(r"^def \w", stub, re.MULTILINE)
            kind = "a function" if function else "a number or a table"
            kind = "an experiment" if name == "check_experiment" else kind
            checks = (sentences(inspect.getdoc(getattr(exercises, name)) or "") or [""])[0]
            seconds = record.get(path.name, {}).get(str(number))
            rows.append(ExerciseRow(title_of(notebook).lstrip("# "), number, asks, name, checks, kind, seconds))
    return rows


def exercise_table(rows: Sequence[ExerciseRow]) -> str:
    """The exercises as a markdown table, with the time each solution ran and the total of points."""
    lines = [
        "| chapter | exercise | what it asks | what its checker checks | answer | its solution ran | points |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {row.chapter} | {row.number} | {row.asks} | `{row.checker}`: {row.checks} | {row.kind} | "
        f"{'not recorded' if row.seconds is None else duration(row.seconds)} | {row.points} |"
        for row in rows
    ]
    functions = sum(row.kind == "a function" for row in rows)
    experiments = sum(row.kind == "an experiment" for row in rows)
    lines += [
        "",
        f"{len(rows)} exercises in {len({row.chapter for row in rows})} chapters, {functions} of them functions to "
        f"write and {experiments} experiments to run: {sum(row.points for row in rows)} points in all.",
    ]
    return "\n".join(lines)


def plan_table(root: Path) -> str:
    """The session plans, each session's chapters with how long their notebooks ran in the book's time record."""
    record = json.loads((root / TIMES).read_text(encoding="utf-8"))
    seconds = {name.split("_", 1)[0]: value for name, value in record["seconds"].items()}
    calibration = record["calibration"]
    lines = ["| sessions | session | chapters | their notebooks run |", "| --- | --- | --- | --- |"]
    for count, sessions in PLANS.items():
        for k, chapters in enumerate(sessions, 1):
            minutes = sum(seconds[f"{n:02d}"] for n in chapters) / 60
            names = ", ".join(str(n) for n in chapters)
            lines.append(f"| {count} | {k} | {names} | {minutes:.1f} min |")
    lines += [
        "",
        f"Run times: the book's record of {calibration['when'][:10]} (`{TIMES.as_posix()}`), each chapter's execution "
        "on its quick defaults "
        f"in `make book` ({record['jobs']} chapters at a time) on {calibration['cpus']} CPU cores calibrated at "
        f"{calibration['images_per_s']:.0f} images/s (`fer_book/calibrate.py`); a chapter whose runs are already "
        "cached (chapter 4's reference run, made once) runs faster.",
    ]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """Seconds in words a reader plans with: "under 1 s", "40 s", "2.5 minutes"."""
    if seconds < 1:
        return "under 1 s"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} minutes"


def run_time_sentence(chapter: str, record: dict) -> str:
    """How long a chapter's notebook ran in the book's time record (`chapter`: its notebook's file name)."""
    calibration = record["calibration"]
    return (
        f"On its quick defaults the notebook ran in {duration(record['seconds'][chapter])} in the book's time record "
        f"of {calibration['when'][:10]} ({record['jobs']} chapters at a time, {calibration['cpus']} CPU cores "
        f"calibrated at {calibration['images_per_s']:.0f} images/s: `{TIMES.as_posix()}`); faster when the runs it "
        "needs are cached."
    )


def write_run_times(root: Path, check: bool = False) -> bool:
    """Write each chapter's run time into its "Time to learn" (or only compare); whether all were up to date."""
    from fer_book.links import notebook_text

    record = json.loads((root / TIMES).read_text(encoding="utf-8"))
    current = True
    for path in toc_notebooks(root):
        text = (root / path).read_text(encoding="utf-8")
        notebook = json.loads(text)
        cells = [c for c in notebook["cells"] if c["cell_type"] == "markdown" and RUN_TIME_MARKERS[0] in cell_source(c)]
        if len(cells) != 1:
            raise BookError(f"{path}: needs the run-time markers in one markdown cell (its Time to learn)")
        new = between(cell_source(cells[0]), RUN_TIME_MARKERS, run_time_sentence(path.name, record), root / path)
        cells[0]["source"] = new.splitlines(keepends=True)
        current = write_changed(root / path, text, notebook_text(notebook), check) and current
    return current


def write_tables(root: Path, check: bool = False) -> bool:
    """Write the tables and run times (or only compare, `check`); whether everything was up to date."""
    path = root / PAGE
    text = path.read_text(encoding="utf-8")
    new = between(text, EXERCISE_MARKERS, exercise_table(exercise_rows(root)), path)
    new = between(new, PLAN_MARKERS, plan_table(root), path)
    times_current = write_run_times(root, check)
    return write_changed(path, text, new, check) and times_current


def main(argv: Sequence[str] | None = None) -> int:
    """`teaching` writes the teacher's page's tables; `teaching --check` exits 1 when they are stale."""
    stale = f"{PAGE}'s tables differ from the chapters"
    prog = "python -m fer_book teaching"
    return marker_command(argv, prog, __doc__.splitlines()[0], write_tables, f"{PAGE}: tables", stale)


if __name__ == "__main__":
    raise SystemExit(main())
