"""The teacher's page: its exercise list and session plans are written from the chapters and
the book's time record (`python -m fer_book teaching`), so they cannot go stale or miss an exercise."""

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


def test_each_chapters_time_to_learn_states_its_run_time_from_the_record(tmp_path: Path) -> None:
    """The page's "Time to learn" typed run times that the measured ones had outgrown (by 39 to 53 % in chapters
    4 to 7); each chapter now states the time its notebook took in the book's time record, written by the tool,
    and a new record makes the chapters stale until they are written again."""
    root = copy_of_the_book(tmp_path)
    record_path = root / teaching.TIMES
    record = json.loads(record_path.read_text())
    chapter = root / "notebooks" / "07_comparison.ipynb"
    assert teaching.run_time_sentence("07_comparison.ipynb", record) in chapter.read_text().replace("\\n", "")
    record["seconds"]["07_comparison.ipynb"] = 1234.0
    record_path.write_text(json.dumps(record))
    assert not teaching.write_tables(root, check=True)
    teaching.write_tables(root)
    assert "ran in 20.6 minutes" in chapter.read_text() and teaching.write_tables(root, check=True)
