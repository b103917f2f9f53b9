"""Grading a class: chapter 1's student edition, completed in every way a student can, graded by `fer_book grade`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fer_book.grade import (
    GRADE_COLUMNS,
    book_chapters,
    cell_source,
    exercise_cells,
    is_solution,
    last_statement,
    tampering,
    verdict,
)
from fer_book.student import strip_solutions
from fer_book.toc import toc_notebooks
from fer_utils.exercises import Feedback

CHAPTER = "01_dataset_tour"
GRADE = (sys.executable, "-m", "fer_book", "grade")


def chapter_notebook(repo_root: Path) -> dict:
    """Chapter 1 as the book has it (with its solution cells)."""
    return json.loads((repo_root / "notebooks" / f"{CHAPTER}.ipynb").read_text())


def solutions(notebook: dict) -> dict[int, str]:
    """Exercise number -> the chapter's solution code (the solution-tagged code cell after its exercise cell)."""
    cells = notebook["cells"]
    found = {}
    for number, index in exercise_cells(notebook).items():
        following = (c for c in cells[index + 1 :] if c["cell_type"] == "code" and is_solution(c))
        found[number] = cell_source(next(following))
    return found


def answered(edition: dict, answers: dict[int, str]) -> dict:
    """The student edition with the given exercise cells replaced by `answers` (cell source by exercise)."""
    notebook = json.loads(json.dumps(edition))
    cells = exercise_cells(notebook)
    for number, source in answers.items():
        notebook["cells"][cells[number]]["source"] = source
    return notebook


def with_exercise_cell(edition: dict, number: int, edit) -> dict:
    """The student edition with exercise `number`'s cell source passed through `edit`."""
    index = exercise_cells(edition)[number]
    return answered(edition, {number: edit(cell_source(edition["cells"][index]))})


@pytest.fixture(scope="module")
def chapter(repo_root: Path) -> tuple[dict, dict]:
    """(chapter 1 with solutions, its student edition)."""
    original = chapter_notebook(repo_root)
    return original, strip_solutions(original)


def write(folder: Path, name: str, notebook: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(notebook, indent=1))
    return path


def run_grade(submissions: Path, out: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GRADE, str(submissions), "--out", str(out), "--timeout", str(timeout)], capture_output=True, text=True
    )


@pytest.mark.slow
def test_grade_a_class(chapter: tuple[dict, dict], tmp_path: Path) -> None:
    original, edition = chapter
    solved = solutions(original)
    subs = tmp_path / "submissions"
    write(subs, "ada", answered(edition, solved))
    # bob hands in the student edition as it is, plus the solution cell of exercise 1 added back (tagged), which
    # would leave a trace if it ran
    marker = tmp_path / "solution-ran"
    bob = json.loads(json.dumps(edition))
    sneaky = {"cell_type": "code", "metadata": {"tags": ["solution"]}, "outputs": [], "execution_count": None}
    sneaky["source"] = f"open({str(marker)!r}, 'w').write('ran')\n" + solved[1]
    bob["cells"].insert(exercise_cells(bob)[1] + 1, sneaky)
    write(subs, "bob", bob)
    wrong_parser = 'def parse_ravdess_name(file_name: str) -> dict:\n    return {"emotion": "happy"}\n\n\n'
    wrong_then_crash = with_exercise_cell(edition, 1, lambda src: wrong_parser + src.splitlines()[-1])
    wrong_then_crash = with_exercise_cell(wrong_then_crash, 2, lambda src: "answer = 1 / 0\n" + src)
    write(subs / "cy", CHAPTER, wrong_then_crash)  # cy/01_dataset_tour.ipynb: the student is the folder
    cheat = answered(
        edition, {2: "answer = 0\nexercises.check_clip_count = lambda *a: exercises.Feedback(True, 'ok')\n"}
    )
    cheat = with_exercise_cell(cheat, 2, lambda src: src + 'exercises.check_clip_count(answer, clips, "neutral")')
    write(subs, "eve", cheat)
    dies = "import os\n\nos.kill(os.getpid(), 9)  # the kernel dies, as when it runs out of memory\n"
    write(subs, "hal", with_exercise_cell(answered(edition, {1: solved[1]}), 2, lambda src: dies + src))

    out = tmp_path / "grades.csv"
    done = run_grade(subs, out, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    grades = pd.read_csv(out, keep_default_na=False)
    assert list(grades.columns) == GRADE_COLUMNS
    rows = {(r.student, r.exercise): (r.passed, r.status, r.message) for r in grades.itertuples()}
    assert set(grades["chapter"]) == {CHAPTER} and len(rows) == 10
    assert rows["ada", 1][:2] == rows["ada", 2][:2] == (True, "passed")
    assert rows["ada", 1][2].startswith("your parser reads all")
    assert rows["bob", 1][:2] == (False, "unanswered") and "complete `parse_ravdess_name`" in rows["bob", 1][2]
    assert rows["bob", 2] == (False, "unanswered", "Not answered yet: replace `None` with the number of neutral clips.")
    assert not marker.exists(), "a solution cell was executed"
    assert rows["cy", 1][:2] == (False, "failed") and "your `emotion` is 'happy'" in rows["cy", 1][2]
    assert rows["cy", 2] == (False, "error", "ZeroDivisionError: division by zero")
    assert rows["eve", 1][1] == rows["eve", 2][1] == "tampered"
    assert "changes `exercises`" in rows["eve", 2][2]
    assert rows["hal", 1][:2] == (True, "passed")
    assert rows["hal", 2][1] == "error" and rows["hal", 2][2].startswith("the kernel died in cell")
    summary = pd.read_csv(tmp_path / "grades_summary.csv")
    assert summary.set_index("student")["passed"].to_dict() == {
        "ada": 2,
        "bob": 0,
        "cy": 0,
        "eve": 0,
        "hal": 1,
    }
    assert set(summary["total"]) == {2}
    assert re.search(r"^ada +01_dataset_tour +2/2$", done.stdout, re.MULTILINE), done.stdout

    # an endless loop: the notebook is stopped at the time limit, its kernel killed, the next notebook graded
    loops = tmp_path / "loops"
    write(loops, "fay", with_exercise_cell(edition, 1, lambda src: "while True:\n    pass\n" + src))
    holiday = {"cell_type": "markdown", "metadata": {}, "source": "# My holiday photos"}
    write(loops, "gus", edition | {"cells": [holiday, *edition["cells"][1:]]})
    done = run_grade(loops, tmp_path / "loops.csv", timeout=12)
    assert done.returncode == 2 and "1 notebook(s) are no chapter with exercises" in done.stderr
    assert str(loops / "gus.ipynb") in done.stderr and not (tmp_path / "loops.csv").exists()  # nothing ran
    (loops / "gus.ipynb").unlink()
    done = run_grade(loops, tmp_path / "loops.csv", timeout=12)
    assert done.returncode == 0, done.stderr[-3000:]
    loop = pd.read_csv(tmp_path / "loops.csv")
    assert list(loop["status"]) == ["timeout", "timeout"] and not loop["passed"].any()
    assert loop["message"][0] == "the notebook did not finish within 12 s"


def test_tampering_is_found_before_anything_runs(chapter: tuple[dict, dict]) -> None:
    _, edition = chapter
    assert tampering(edition) == []

    def code(source: str) -> dict:
        return {"cell_type": "code", "metadata": {}, "source": source, "outputs": []}

    cases = {
        "def check_clip_count(answer, clips, emotion):\n    return True": "defines `check_clip_count`",
        "exercises = None": "assigns `exercises`",
        "exercises.check_clip_count = print": "changes `exercises`",
        "Feedback.__repr__ = lambda self: '✅ fine'": "changes `Feedback`",
        "import builtins as exercises": "imports over `exercises`",
        "from fer_utils.exercises import check_number as check_clip_count": "imports over `check_clip_count`",
        "setattr(exercises, 'check_clip_count', print)": "changes `exercises`",
        "for exercises in range(3): pass": "assigns `exercises`",
    }
    for source, found in cases.items():
        notebook = {"cells": [code("x = 1"), code(source)]}
        assert tampering(notebook) == [f"cell 2 {found}"], source
    allowed = "from fer_utils import artifacts, exercises\nanswer = exercises.check_number(1, 1, 'x')"
    assert tampering({"cells": [code(allowed), code(allowed) | {"metadata": {"tags": ["solution"]}}]}) == []


def test_a_changed_checker_call_is_seen(chapter: tuple[dict, dict], repo_root: Path) -> None:
    _, edition = chapter
    (ch1,) = [c for c in book_chapters(repo_root).values() if c.name == CHAPTER]
    cells = exercise_cells(edition)
    calls = [last_statement(cell_source(edition["cells"][cells[e.number]])) for e in ch1.exercises]
    assert calls == [e.checker_call for e in ch1.exercises]
    reformatted = 'answer = 3\nexercises.check_clip_count(answer,clips,  "neutral" )'
    assert last_statement(reformatted) == ch1.exercises[1].checker_call  # formatting is not tampering
    assert last_statement('exercises.check_clip_count(answer, clips, "happy")') != ch1.exercises[1].checker_call


def test_verdicts_are_read_from_the_checkers_output() -> None:
    def cell(*outputs: dict) -> dict:
        return {"cell_type": "code", "source": "", "outputs": list(outputs)}

    def shown(feedback: Feedback) -> dict:
        return {"output_type": "execute_result", "data": {"text/plain": repr(feedback)}}

    assert verdict(cell(shown(Feedback(True, "right.")))) == ("passed", "right.")
    assert verdict(cell(shown(Feedback(False, "too low.")))) == ("failed", "too low.")
    assert verdict(cell(shown(Feedback(False, "Not answered yet: replace `None`.")))) == (
        "unanswered",
        "Not answered yet: replace `None`.",
    )
    error = {"output_type": "error", "ename": "NameError", "evalue": "name 'x' is not defined", "traceback": []}
    assert verdict(cell(error)) == ("error", "NameError: name 'x' is not defined")
    printed = {"output_type": "stream", "name": "stdout", "text": "✅ I passed, honestly\n"}
    assert verdict(cell(printed))[0] == "error"  # printing a mark is not a verdict
    assert Feedback.from_text(repr(Feedback(True, "x"))) == Feedback(True, "x") and Feedback.from_text("x") is None


def test_every_exercise_of_the_book_ends_with_its_checker_call(repo_root: Path) -> None:
    chapters = book_chapters(repo_root)
    assert len(chapters) == len(toc_notebooks(repo_root))
    for chapter in chapters.values():
        assert 2 <= len(chapter.exercises) <= 4, chapter.name
        for exercise in chapter.exercises:
            call = exercise.checker_call
            assert "id='exercises'" in call and "attr='check_" in call, (chapter.name, exercise.number)
