"""The teacher's page's syllabus, exercise tables and grade rule, and each chapter's run time, written from the
chapters, their questions graded by hand (`manual_questions.toml`) and the book's fresh run of record.

`python -m fer_book teaching` writes them between markers (run times in "Time to learn"); `--check` exits 1 if stale.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from fer_book import prose
from fer_book.assign import MANUAL_POINTS, design_of, exercise_cells, is_solution, manual_questions, split_call
from fer_book.assign import source as cell_source
from fer_book.book_times import BOOK_TIMES_RECORD
from fer_book.markers import between, marker_command, write_changed
from fer_book.toc import toc_notebooks
from fer_utils.errors import BookError

PAGE = Path("book") / "teaching.md"


def markers(what: str, source: str = "the chapters") -> tuple[str, str]:
    """The pair of markers around a generated part of a page."""
    return (
        f"<!-- {what}: written by `python -m fer_book teaching` from {source}; do not edit -->",
        f"<!-- end of {what} -->",
    )


EXERCISE_MARKERS = markers("the exercise tables")
SYLLABUS_MARKERS = markers("the syllabus")
VARIANT_MARKERS = markers("the shorter syllabi")
GRADE_MARKERS = markers("the grade rule")
PROMPT_MARKERS = markers("the discussion prompts", "fer_book/manual_questions.toml")
LEARN_TIME_MARKERS = markers("the time to learn", "the chapter's prose and its exercises' times")
READING_WORDS_PER_MINUTE = 150  # prose read with the code, tables and figures beside it
RUN_TIME_MARKERS = (  # in each chapter's "Time to learn"
    "<!-- run time: written by `python -m fer_book teaching` from the book's time record; do not edit -->",
    "<!-- end of the run time -->",
)
# The rubric: a number or table is worth 1 point, a function 2 (it takes longer), an experiment 3.
POINTS = {"a number or a table": 1, "a function": 2, "an experiment": 3}
# The syllabi: how many weeks, and which chapters (by number) each week reads; the shorter ones keep the core.
SYLLABI: dict[int, tuple[tuple[int, ...], ...]] = {
    10: tuple((n,) for n in range(1, 11)),
    4: ((1, 2, 3), (4, 5, 6), (7, 8), (9, 10)),
    2: ((1, 3, 4), (6, 9)),
}
# The grade: the share of each part (auto-graded, graded by hand, mini-project), each its points earned over offered.
GRADE_WEIGHTS = {"auto-graded exercises": 0.5, "questions graded by hand": 0.2, "mini-project": 0.3}
MINI_PROJECT_POINTS = 10
# How long a student takes, from what they do: read the task (READING_WORDS_PER_MINUTE), write the solution's
# lines, answer in words, run it.
MINUTES_PER_LINE = 2  # a line of the solution written, run and mended
MINUTES_PER_WRITTEN_ANSWER = 5  # an experiment's prediction or explanation, a few sentences
NOT_READ = ("Overview", "Prerequisites", "Time to learn", "Summary", "Exercises", "What's next", "Explore")


class ExerciseRow(NamedTuple):
    """One exercise as the teacher's page lists it."""

    chapter: int
    number: int
    asks: str
    checker: str
    checks: str
    kind: str
    task_words: int  # words of its task
    lines: int  # lines of code its solution writes beyond the stub
    seconds: float | None  # how long its cells ran from an empty cache in the run of record (None: not recorded)

    @property
    def points(self) -> int:
        """Its points under the page's rubric (POINTS)."""
        return POINTS[self.kind]

    @property
    def written(self) -> int:
        """The questions answered in words around it: an experiment's prediction and explanation."""
        return 2 if self.kind == "an experiment" else 0

    @property
    def minutes(self) -> float:
        """The student's time: reading the task, writing the lines and the answers in words, and running it."""
        reading = self.task_words / READING_WORDS_PER_MINUTE
        writing = self.lines * MINUTES_PER_LINE + self.written * MINUTES_PER_WRITTEN_ANSWER
        return reading + writing + (self.seconds or 0.0) / 60


def sentences(text: str) -> list[str]:
    """The sentences of `text`, each on one line (table cells: `|` escaped)."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return [s for s in re.split(r"(?<=[.?!])\s+(?=[A-Z`*(])", flat) if s]


def task_sentence(text: str) -> str:
    """The sentence of an exercise that sets the task (`Write …`, `Compute …`, a question), else its first."""
    found = sentences(text)
    tasks = [s for s in found if re.match(r"(Write|Compute|Build)\b", s) or s.endswith("?")]
    return (tasks or found or [""])[0]


def code_lines(text: str) -> set[str]:
    """The lines of a cell that are code (not blank, not a comment), stripped."""
    return {line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")}


def record_of(root: Path) -> dict:
    """The book's fresh run of record (`BOOK_TIMES_RECORD`)."""
    return json.loads((root / BOOK_TIMES_RECORD).read_text(encoding="utf-8"))


def exercise_rows(root: Path) -> list[ExerciseRow]:
    """Every exercise of the book's chapters, in reading order."""
    from fer_utils.book import exercises

    record = record_of(root).get("exercise_seconds", {})
    rows = []
    for path in toc_notebooks(root):
        notebook = json.loads((root / path).read_text(encoding="utf-8"))
        cells = notebook["cells"]
        for number, index in sorted(exercise_cells(notebook).items()):
            heading = next(i for i in range(index, -1, -1) if cell_source(cells[i]).strip().startswith("### Exercise"))
            task = cell_source(cells[heading]).split("\n", 1)[1]
            stub = cell_source(cells[index])
            called = re.search(r"exercises\.(check_\w+)\(", stub)
            if not called:
                raise BookError(f"{path}: exercise {number} calls no checker of fer_utils.book.exercises")
            name = called.group(1)
            solution = next(cell_source(c) for c in cells[index + 1 :] if is_solution(c) and c["cell_type"] == "code")
            function = "raise NotImplementedError" in stub or re.search(r"^def \w", stub, re.MULTILINE)
            kind = "a function" if function else "a number or a table"
            kind = "an experiment" if name == "check_experiment" else kind
            checks = (sentences(inspect.getdoc(getattr(exercises, name)) or "") or [""])[0]
            if kind == "an experiment":
                asks, checks = experiment_words(split_call(stub, f"{path}, exercise {number}")[1])
            else:
                asks = task_sentence(task)
            lines = len(code_lines(solution) - code_lines(stub))
            seconds = record.get(path.name, {}).get(str(number))
            words = len(task.split())
            rows.append(ExerciseRow(int(path.name[:2]), number, asks, name, checks, kind, words, lines, seconds))
    return rows


def experiment_words(call: str) -> tuple[str, str]:
    """(what an experiment exercise asks, what its checker checks), from its checker call's setting, measure and
    design."""
    from fer_utils.book.exercises.experiment import DESIGNS, MEASURES

    setting, measure, _ = (ast.literal_eval(argument) for argument in ast.parse(call).body[0].value.args[1:4])
    design = DESIGNS[design_of(call)]
    changed = " or ".join(f"`{name}`" for name in ((setting,) if isinstance(setting, str) else setting))
    asks = f"{design.title.capitalize()}: change {changed}; answer the mean change in {MEASURES[measure]}."
    checks = (
        f"{design.title}: {design.task}. The student's own runs, paired seed by seed: an effect only when the "
        "change's 95 % interval leaves out zero and it is larger than the spread over seeds."
    )
    return asks, checks


def nearest_five(minutes: float) -> int:
    """`minutes` to the nearest 5, at least 5: the unit of every student time the pages state."""
    return max(5, 5 * round(minutes / 5))


def student_minutes(rows: Sequence[ExerciseRow]) -> int:
    """The student's time for `rows`: each exercise's `nearest_five`, then summed, so that a total is the sum of the
    times the tables show."""
    return sum(nearest_five(row.minutes) for row in rows)


def exercise_table(rows: Sequence[ExerciseRow]) -> str:
    """The exercises in two tables that fit the page: what each asks with its student time, and what its checker
    checks; then the totals."""
    plan = ["| exercise | what it asks | answer, points | student time |", "| --- | --- | --- | --- |"]
    plan += [
        f"| {row.chapter}.{row.number} | {row.asks} | {row.kind.split()[1]}, {row.points} | "
        f"{student_minutes([row])} min ({run_words(row.seconds)}) |"
        for row in rows
    ]
    checks = ["| exercise | its checker checks |", "| --- | --- |"]
    checks += [f"| {row.chapter}.{row.number} | `{row.checker}`: {row.checks} |" for row in rows]
    functions = sum(row.kind == "a function" for row in rows)
    experiments = sum(row.kind == "an experiment" for row in rows)
    total = (
        f"{len(rows)} exercises in {len({row.chapter for row in rows})} chapters, {functions} of them functions to "
        f"write and {experiments} experiments to run: {sum(row.points for row in rows)} points in all, and about "
        f"{student_minutes(rows) / 60:.0f} hours of a student's time."
    )
    return "\n".join([*plan, "", total, "", *checks])


def run_words(seconds: float | None) -> str:
    """How long an exercise's cells run, in the words of the student-time column."""
    if seconds is None:
        return "run time not recorded"
    return (
        "runs in under 1 s"
        if seconds < 1
        else f"runs {seconds:.0f} s"
        if seconds < 90
        else f"runs {seconds / 60:.0f} min"
    )


def read_sections(root: Path, chapter: Path) -> list[str]:
    """The chapter's sections a student reads (its `## ` headings, less the ones every chapter has)."""
    notebook = json.loads((root / chapter).read_text(encoding="utf-8"))
    headings = [
        line[3:].strip()
        for cell in notebook["cells"]
        if cell["cell_type"] == "markdown"
        for line in cell_source(cell).splitlines()
        if line.startswith("## ")
    ]
    return [h for h in headings if not h.startswith(NOT_READ)]


def chapters_by_number(root: Path) -> dict[int, Path]:
    """The book's chapters by their number."""
    return {int(path.name[:2]): path for path in toc_notebooks(root)}


def syllabus_table(root: Path, rows: Sequence[ExerciseRow]) -> str:
    """The ten-week syllabus: each week's reading, its exercises in class and as homework with the student's time,
    and how long its chapter runs."""
    chapters, record = chapters_by_number(root), record_of(root)
    lines = ["| week | read | in class | homework |", "| --- | --- | --- | --- |"]
    for week, numbers in enumerate(SYLLABI[10], 1):
        read = "; ".join(
            f"chapter {n} ({minutes_run(record['seconds'][chapters[n].name])} to run): "
            + ", ".join(read_sections(root, chapters[n]))
            for n in numbers
        )
        mine = [row for row in rows if row.chapter in numbers]
        lines.append(f"| {week} | {read} | {exercise_list(mine, False)} | {exercise_list(mine, True)} |")
    return "\n".join([*lines, "", calibration_words(record)])


def exercise_list(rows: Sequence[ExerciseRow], homework: bool) -> str:
    """The exercises of a week done in class (all but the experiment) or as homework (the experiment, with its
    two written answers; without one, the last exercise), with the student's time."""
    last = next((row for row in rows if row.kind == "an experiment"), rows[-1] if rows else None)
    chosen = [row for row in rows if (row is last) == homework]
    if not chosen:
        return "—"
    names = ", ".join(f"{r.chapter}.{r.number}" for r in chosen)
    return f"exercise{'s' if len(chosen) > 1 else ''} {names}: {student_minutes(chosen)} min"


def variants_table(root: Path, rows: Sequence[ExerciseRow]) -> str:
    """The shorter syllabi: each week's chapters, its exercises and the student's time."""
    record, chapters = record_of(root), chapters_by_number(root)
    lines = [
        "| weeks | week | chapters | exercises | student time | the chapters run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for count, weeks in SYLLABI.items():
        if count == 10:
            continue
        for week, numbers in enumerate(weeks, 1):
            mine = [row for row in rows if row.chapter in numbers]
            seconds = sum(record["seconds"][chapters[n].name] for n in numbers)
            names = ", ".join(f"{r.chapter}.{r.number}" for r in mine)
            numbers_text, total = ", ".join(map(str, numbers)), student_minutes(mine)
            lines.append(f"| {count} | {week} | {numbers_text} | {names} | {total} min | {minutes_run(seconds)} |")
    return "\n".join(lines)


def grade_rule(rows: Sequence[ExerciseRow], root: Path) -> str:
    """The rule that makes the grade: each part's points earned over the points it offers, weighted."""
    prompts = sum(bool(manual_questions(path.stem).get("prompt")) for path in toc_notebooks(root))
    offered = {
        "A": sum(row.points for row in rows),
        "M": MANUAL_POINTS * (prompts + sum(row.written for row in rows)),
        "P": MINI_PROJECT_POINTS,
    }
    weights = dict(zip(offered, GRADE_WEIGHTS.values()))
    terms = " + ".join(f"{100 * weights[part]:.0f} × {part} / {offered[part]}" for part in offered)
    return (
        f"**Grade (out of 100) = {terms}**, where A is the points earned in the {len(rows)} auto-graded exercises, "
        f"M the points earned in the questions graded by hand ({prompts} discussion prompts and "
        f"an experiment's prediction and explanation, {MANUAL_POINTS} points each), and P the mini-project's points."
    )


def prompts_list(root: Path) -> str:
    """Each chapter's discussion prompt (its answer key is in the instructor's edition only)."""
    found = []
    for path in toc_notebooks(root):
        prompt = manual_questions(path.stem).get("prompt")
        if prompt:
            found.append(f"- Chapter {int(path.name[:2])}: {prompt}")
    return "\n".join(found)


def minutes_run(seconds: float) -> str:
    """A run time as a reader plans with it: "under a minute", "about 2.5 minutes", "about 12 minutes"."""
    minutes = seconds / 60
    if minutes < 1:
        return "under a minute"
    rounded = round(minutes * 2) / 2 if minutes < 10 else round(minutes)
    return f"about {rounded:g} minute{'s' if rounded != 1 else ''}"


def calibration_words(record: dict) -> str:
    """How the run of record's times were measured, with its calibration, and how they scale."""
    calibration = record["calibration"]
    return (
        f"Times: the book's fresh run of record of {calibration['when'][:10]} (`{BOOK_TIMES_RECORD.as_posix()}`, a fresh clone's "
        f"`make book EVERY_CELL=1` from an empty cache, the experiment exercises run too, {record['jobs']} chapters "
        f"at a time on {calibration['cpus']} CPU cores) on a machine that trains the paper's CNN at "
        f"{calibration['images_per_s']:.0f} images/s (`fer_book/calibrate.py`); "
        "a machine half as fast takes about twice as long. An exercise's run time is its cells' from an empty cache."
    )


def run_time_sentence(chapter: str, record: dict) -> str:
    """How long a chapter's notebook ran in the fresh run of record (`chapter`: its notebook's file name)."""
    calibration = record["calibration"]
    return (
        f"{minutes_run(record['seconds'][chapter]).capitalize()} on its quick defaults, on a machine that trains the "
        f"paper's CNN at {calibration['images_per_s']:.0f} images/s: the book's fresh run of record of "
        f"{calibration['when'][:10]} (`{BOOK_TIMES_RECORD.as_posix()}`). A machine half as fast takes about twice as long."
    )


def learn_time_sentence(notebook: dict, rows: Sequence[ExerciseRow]) -> str:
    """A chapter's time for a student: its prose read at READING_WORDS_PER_MINUTE, and its exercises (`rows`) at the
    times the teacher's page gives them, so that the two pages agree."""
    read = nearest_five(prose.stats(notebook).words / READING_WORDS_PER_MINUTE)
    exercises = student_minutes(rows)
    return f"About {read + exercises} minutes: {read} to read, {exercises} for its {len(rows)} exercises."


def write_run_times(root: Path, rows: Sequence[ExerciseRow], check: bool = False) -> bool:
    """Write each chapter's time to learn (from `rows`, the exercises) and run time into its "Time to learn" (or only
    compare); whether all were up to date."""
    from fer_book.links import notebook_text

    record = record_of(root)
    current = True
    for path in toc_notebooks(root):
        text = (root / path).read_text(encoding="utf-8")
        notebook = json.loads(text)
        cells = [c for c in notebook["cells"] if c["cell_type"] == "markdown" and RUN_TIME_MARKERS[0] in cell_source(c)]
        if len(cells) != 1:
            raise BookError(f"{path}: needs the run-time markers in one markdown cell (its Time to learn)")
        mine = [row for row in rows if row.chapter == int(path.name[:2])]
        new = between(cell_source(cells[0]), RUN_TIME_MARKERS, run_time_sentence(path.name, record), root / path)
        new = between(new, LEARN_TIME_MARKERS, learn_time_sentence(notebook, mine), root / path)
        cells[0]["source"] = new.splitlines(keepends=True) if isinstance(cells[0]["source"], list) else new
        current = write_changed(root / path, text, notebook_text(notebook), check) and current
    return current


def write_tables(root: Path, check: bool = False) -> bool:
    """Write the page's generated parts and the run times (or only compare, `check`); whether all were current."""
    path = root / PAGE
    text = path.read_text(encoding="utf-8")
    rows = exercise_rows(root)
    new = between(text, EXERCISE_MARKERS, exercise_table(rows), path)
    new = between(new, SYLLABUS_MARKERS, syllabus_table(root, rows), path)
    new = between(new, VARIANT_MARKERS, variants_table(root, rows), path)
    new = between(new, GRADE_MARKERS, grade_rule(rows, root), path)
    new = between(new, PROMPT_MARKERS, prompts_list(root), path)
    times_current = write_run_times(root, rows, check)
    return write_changed(path, text, new, check) and times_current


def main(argv: Sequence[str] | None = None) -> int:
    """`teaching` writes the teacher's page's generated parts; `teaching --check` exits 1 when they are stale."""
    stale = f"{PAGE}'s tables differ from the chapters"
    prog = "python -m fer_book teaching"
    return marker_command(argv, prog, __doc__.splitlines()[0], write_tables, f"{PAGE}: tables", stale)


if __name__ == "__main__":
    raise SystemExit(main())
