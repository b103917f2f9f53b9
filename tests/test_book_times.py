"""`fer_book/book_times.py` judges a `make book` run against the budget on the budget's machine (about 500
images/s), scaled by the run's own calibration; the slowest machine seen is printed, not the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_book.book_times import BUDGET_IMAGES_PER_S, BUDGET_S, main


def write_stage(stage: Path, wall_s: float, images_per_s: float, every_cell: bool = True) -> None:
    """A stage as `fer_book execute --every-cell` leaves it (`make book`'s, when not `every_cell`): its execution
    times and its calibration."""
    stage.mkdir()
    times = {"seconds": {"07_comparison.ipynb": wall_s}, "total_seconds": wall_s, "wall_seconds": wall_s, "jobs": 2}
    times["every_cell"] = every_cell
    (stage / "execution_times.json").write_text(json.dumps(times))
    calibration = {"images_per_s": images_per_s, "load_average": [1.7, 1.5, 1.2]}
    (stage / "calibration.json").write_text(json.dumps(calibration))


@pytest.mark.parametrize(("wall_s", "expected"), [(2_302.0, 0), (3_000.0, 1)])
def test_the_run_is_judged_on_the_budgets_machine(tmp_path: Path, wall_s: float, expected: int) -> None:
    """Regression: a fresh clone's 2,302 s at 154.7 images/s is 712 s on the budget's machine, within
    its 900 s, but the script scaled it to the slowest machine seen (165 images/s, 2,158 s) and exited 1."""
    write_stage(tmp_path / "stage", wall_s, 154.7)
    out = tmp_path / "book_times.json"
    assert main(["--stage", str(tmp_path / "stage"), "--out", str(out)]) == expected
    record = json.loads(out.read_text())
    on_budget = record["projected_wall_seconds_on_budget_machine"]
    assert on_budget == pytest.approx(wall_s * 154.7 / BUDGET_IMAGES_PER_S, abs=0.1)
    assert (on_budget <= BUDGET_S) == (expected == 0)
    assert record["projected_wall_seconds_on_slow_machine"] > on_budget  # still recorded, for the grader's limit


def test_a_stage_that_left_the_experiments_unrun_is_refused_as_the_record(tmp_path: Path, capsys) -> None:
    """`make book` leaves the experiment exercises unrun: its times are not a reader's, and its exercise times
    would be missing; the record is written from a run of every cell only, and nothing is written otherwise."""
    write_stage(tmp_path / "stage", 600.0, 154.7, every_cell=False)
    out = tmp_path / "book_times.json"
    assert main(["--stage", str(tmp_path / "stage"), "--out", str(out)]) == 2
    assert "make book EVERY_CELL=1" in capsys.readouterr().err and not out.exists()


def test_each_exercises_time_from_an_empty_cache_is_recorded_from_the_executed_chapter(tmp_path: Path) -> None:
    """The teacher's page lists how long each exercise runs from an empty cache: papermill's durations of its stub
    (an experiment's stub trains the baseline) and of its solution, read from a chapter papermill really executed;
    where the runs its checker judged trained longer than that (runs the chapter had cached), their seconds."""
    import nbformat
    import papermill

    from fer_book.book_times import exercise_seconds
    from fer_book.teaching import run_words

    def code(text: str, *tags: str) -> nbformat.NotebookNode:
        return nbformat.v4.new_code_cell(text, metadata={"tags": list(tags)} if tags else {})

    chapter = nbformat.v4.new_notebook()
    chapter.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cached = "from fer_utils.book.exercises import Feedback\nFeedback(True, 'judged', 120.0)"
    chapter.cells = [
        nbformat.v4.new_markdown_cell("### Exercise 1\nWrite it."),
        code("import time\ntime.sleep(1.0)\nanswer = None"),
        code("time.sleep(1.5)\nanswer = 1", "solution"),
        nbformat.v4.new_markdown_cell("### Exercise 2\nCount them."),
        code("answer = None"),
        code("answer = 2", "solution"),
        nbformat.v4.new_markdown_cell("### Exercise 3\nRun it."),
        code("answer = None"),
        code(cached, "solution"),
    ]
    source, stage = tmp_path / "04_training.ipynb", tmp_path / "stage"
    nbformat.write(chapter, source)
    (stage / "notebooks").mkdir(parents=True)
    papermill.execute_notebook(str(source), str(stage / "notebooks" / source.name), progress_bar=False)
    seconds = exercise_seconds(stage)["04_training.ipynb"]
    assert set(seconds) == {"1", "2", "3"}
    assert 2.5 <= seconds["1"] < 10 and seconds["2"] < 1.5 and seconds["3"] == 120.0
    assert run_words(seconds["2"]) == "runs in under 1 s" and run_words(95) == "runs 2 min"


def test_the_calibration_after_the_chapters_is_pooled_with_the_one_before(tmp_path: Path) -> None:
    """`make book` calibrates before and after the chapters (`--append`): the record keeps both measurements and
    its figure is their pooled throughput, all timed images over all their seconds, between the two. Regression:
    one two-second measurement before the run said 280 images/s in one fresh clone and 424 in the next."""
    from fer_book.calibrate import main as calibrate

    out = tmp_path / "calibration.json"
    # the measurement before the chapters, as a fresh clone's make book recorded it (its slow and fast epochs)
    before = {"images_per_s": 256.2, "epochs_images_per_s": [233.3, 275.9, 295.2, 193.5, 286.3, 288.9]}
    before |= {"cpus": 2, "load_average": [1.6, 1.7, 1.6], "when": "2026-11-27T03:35:59Z"}
    out.write_text(json.dumps(before))
    assert calibrate(["--out", str(out), "--epochs", "1", "--append"]) == 0
    record = json.loads(out.read_text())
    first, after = record["measurements"]
    assert first == {k: before[k] for k in first} and record["when"] == before["when"]
    rates = [*before["epochs_images_per_s"], *after["epochs_images_per_s"]]
    assert len(rates) == 7 and record["epochs_images_per_s"] == rates
    assert record["images_per_s"] == pytest.approx(7 / sum(1 / r for r in rates), abs=0.1)
    assert min(rates) <= record["images_per_s"] <= max(rates)
