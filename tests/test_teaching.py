"""The teacher's page: its syllabus, exercise tables, grade rule and discussion prompts are written from the
chapters, their questions graded by hand and the book's run of record (`python -m fer_book teaching`), so they
cannot go stale or miss an exercise."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fer_book import teaching
from fer_book.toc import toc_notebooks
from fer_utils.book import exercises

REPO = Path(__file__).resolve().parents[1]


def copy_of_the_book(tmp_path: Path) -> Path:
    """What the page is written from: the table of contents, the chapters, the page and the time record."""
    for part in ("_toc.yml", "notebooks", "book/teaching.md", "benchmarks/results/book_times.json"):
        target = tmp_path / part
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (REPO / part).is_dir() else shutil.copy)(REPO / part, target)
    return tmp_path


def test_the_page_is_up_to_date_with_the_chapters() -> None:
    assert teaching.write_tables(REPO, check=True), "run `python -m fer_book teaching`"


def test_every_exercise_is_listed_with_its_checker_and_the_points_add_up() -> None:
    rows = teaching.exercise_rows(REPO)
    headings = sum(
        len(re.findall(r"^### Exercise \d+", "".join(c["source"]), re.M))
        for path in toc_notebooks(REPO)
        for c in json.loads((REPO / path).read_text())["cells"]
        if c["cell_type"] == "markdown"
    )
    assert len(rows) == headings > 0
    assert all(callable(getattr(exercises, row.checker)) and row.checks for row in rows)
    total = sum(row.points for row in rows)
    assert f"{len(rows)} exercises in 10 chapters" in teaching.exercise_table(rows)
    assert f"{total} points in all" in (REPO / teaching.PAGE).read_text()


def test_the_exercise_tables_fit_the_page() -> None:
    """Regression: one table of seven columns overflowed the page; two narrow ones, each row one exercise."""
    table = teaching.exercise_table(teaching.exercise_rows(REPO))
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows and all(len(re.split(r"(?<!\\)\|", row)) - 2 <= 4 for row in rows), max(rows, key=len)


def test_a_students_time_grows_with_what_the_student_writes_and_runs(tmp_path: Path) -> None:
    """The student's time is estimated from the task's words, the lines the solution adds to the stub, the
    answers in words and the exercise's run time from an empty cache in the record."""
    root = copy_of_the_book(tmp_path)
    row = next(r for r in teaching.exercise_rows(root) if (r.chapter, r.number) == (4, 1))
    assert row.lines == 1 and row.written == 0
    expected = row.task_words / teaching.READING_WORDS_PER_MINUTE + teaching.MINUTES_PER_LINE + (row.seconds or 0) / 60
    assert row.minutes == pytest.approx(expected)
    record = json.loads((root / teaching.BOOK_TIMES_RECORD).read_text())
    record["exercise_seconds"]["04_training.ipynb"]["1"] = 600.0
    (root / teaching.BOOK_TIMES_RECORD).write_text(json.dumps(record))
    chapter = root / "notebooks" / "04_training.ipynb"
    chapter.write_text(
        chapter.read_text().replace(
            "answer = matrix.to_numpy().trace() / matrix.to_numpy().sum()",
            "counts = matrix.to_numpy()\\nright = counts.trace()\\nanswer = right / counts.sum()",
        )
    )
    longer = next(r for r in teaching.exercise_rows(root) if (r.chapter, r.number) == (4, 1))
    assert longer.lines == 3 and longer.minutes == pytest.approx(expected - (row.seconds or 0) / 60 + 10 + 4)
    experiment = next(r for r in teaching.exercise_rows(root) if (r.chapter, r.number) == (4, 3))
    assert experiment.written == 2 and experiment.minutes > 2 * teaching.MINUTES_PER_WRITTEN_ANSWER


def test_the_syllabi_cover_every_chapter_and_the_grade_counts_what_the_assignments_offer(tmp_path: Path) -> None:
    """Ten weeks read every chapter once, and each shorter syllabus its chapters in order; the grade rule's
    points are the exercise table's and those of the questions graded by hand in the assignments."""
    from fer_book.assign import MANUAL_POINTS, master_notebook, source

    chapters = sorted(int(path.name[:2]) for path in toc_notebooks(REPO))
    assert sorted(n for week in teaching.SYLLABI[10] for n in week) == chapters
    for weeks in teaching.SYLLABI.values():
        read = [n for week in weeks for n in week]
        assert read == sorted(set(read)) and set(read) <= set(chapters)
    rows = teaching.exercise_rows(REPO)
    manual = sum(
        source(cell).count("manual: true")
        for path in toc_notebooks(REPO)
        for cell in master_notebook(json.loads((REPO / path).read_text()), path.stem, REPO)["cells"]
    )
    rule = teaching.grade_rule(rows, REPO)
    assert f"50 × A / {sum(r.points for r in rows)}" in rule and f"20 × M / {manual * MANUAL_POINTS}" in rule
    prompts = sum(bool(teaching.manual_questions(path.stem).get("prompt")) for path in toc_notebooks(REPO))
    assert f"({prompts} discussion prompts and" in rule and "{" not in rule  # every field filled in
    assert sum(teaching.GRADE_WEIGHTS.values()) == pytest.approx(1.0)
    syllabus = teaching.syllabus_table(REPO, rows)
    assert all(f"| {week} | chapter {week} (" in syllabus for week in chapters)
    assert "trains the paper's CNN at" in syllabus


def test_a_changed_exercise_makes_the_page_stale_and_writing_mends_it(tmp_path: Path) -> None:
    root = copy_of_the_book(tmp_path)
    chapter = root / "notebooks" / "04_training.ipynb"
    text = chapter.read_text()
    assert "Compute the accuracy from the confusion matrix" in text
    chapter.write_text(
        text.replace(
            "Compute the accuracy from the confusion matrix", "Compute the error rate from the confusion matrix"
        )
    )
    assert not teaching.write_tables(root, check=True)
    assert teaching.write_tables(root) is False and teaching.write_tables(root, check=True)
    assert "Compute the error rate from the confusion matrix" in (root / teaching.PAGE).read_text()


def test_an_exercise_without_a_checker_is_an_error_naming_it(tmp_path: Path) -> None:
    root = copy_of_the_book(tmp_path)
    chapter = root / "notebooks" / "04_training.ipynb"
    chapter.write_text(chapter.read_text().replace("exercises.check_accuracy_from_confusion(", "print("))
    with pytest.raises(teaching.BookError, match="04_training.ipynb: exercise 1 calls no checker"):
        teaching.exercise_rows(root)


def test_each_chapters_time_to_learn_states_its_run_time_with_its_calibration(tmp_path: Path) -> None:
    """Each chapter states the time its notebook took in the book's fresh run of record with the speed of the
    machine that ran it ("about N minutes on a machine that trains the paper's CNN at M images/s"), written by
    the tool; a new record makes the chapters stale until they are written again."""
    root = copy_of_the_book(tmp_path)
    record_path = root / teaching.BOOK_TIMES_RECORD
    record = json.loads(record_path.read_text())
    chapter = root / "notebooks" / "07_comparison.ipynb"
    assert teaching.run_time_sentence("07_comparison.ipynb", record) in chapter.read_text().replace("\\n", "")
    record["seconds"]["07_comparison.ipynb"] = 1234.0
    record["calibration"]["images_per_s"] = 250.4
    record_path.write_text(json.dumps(record))
    assert not teaching.write_tables(root, check=True)
    teaching.write_tables(root)
    assert "About 21 minutes on its quick defaults, on a machine that trains the paper's CNN at 250 images/s" in (
        chapter.read_text()
    )
    assert teaching.write_tables(root, check=True)
    assert [teaching.minutes_run(s) for s in (40, 95, 1234)] == [
        "under a minute",
        "about 1.5 minutes",
        "about 21 minutes",
    ]


def test_each_total_of_a_students_time_is_the_sum_of_the_times_shown(tmp_path: Path) -> None:
    """Regression: the four-week plan gave week 1 100 min for exercises the table shows as 20 + 5 + 10 + 25 + 5 +
    10 + 35 = 110 min (each rounded to 5 minutes, the total rounded once); chapter 8's "Time to learn" said about
    40 minutes with three exercises this page gives 70. Totals now add the times shown, and each chapter's time to
    learn is written from the same times."""
    root = copy_of_the_book(tmp_path)
    rows = teaching.exercise_rows(root)
    shown = {
        name: int(minutes)
        for name, minutes in re.findall(r"^\| (\d+\.\d+) \| .* \| (\d+) min \(", teaching.exercise_table(rows), re.M)
    }
    assert len(shown) == len(rows)
    weeks = re.findall(
        r"^\| \d+ \| \d+ \| [\d, ]+ \| ([\d., ]+) \| (\d+) min \|", teaching.variants_table(root, rows), re.M
    )
    assert weeks
    for names, total in weeks:
        assert int(total) == sum(shown[name] for name in names.split(", ")), (names, total)
    teaching.write_tables(root)
    chapter = json.loads((root / "notebooks" / "08_deployment.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in chapter["cells"] if c["cell_type"] == "markdown")
    eight = sum(minutes for name, minutes in shown.items() if name.startswith("8."))
    read = re.search(rf"About (\d+) minutes: (\d+) to read, {eight} for its 3 exercises\.", text)
    assert read and int(read[1]) == int(read[2]) + eight, text[:2000]
