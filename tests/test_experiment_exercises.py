"""The experiment exercise of chapters 4 to 10 (change one setting of a short run, train both over two
seeds, answer the mean change) judged on the student's own runs, with feedback that names the mistake, and graded in
the grader's sandbox (otter run in bubblewrap), where the book's cache is read-only and the student's run is a
new one."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from toy_data import make_toy_crops

from fer_book.assign import assign_chapter, exercise_cells, is_solution, split_call
from fer_book.assign import source as cell_source
from fer_book.grade import grade_folder
from fer_utils.book import artifacts, exercises
from fer_utils.book.exercises.experiment import SETTINGS, changed_settings, measured
from fer_utils.train.config import TrainConfig
from fer_utils.train.pipeline import FaceData

EXPERIMENT_CHAPTERS = (
    "04_training",
    "05_regularization",
    "06_evaluation_protocols",
    "07_comparison",
    "08_deployment",
    "09_real_faces",
    "10_seven_expressions",
)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a cache folder, toy crops of the real stills inside it: the sandbox sees the cache, read-only)."""
    cache = tmp_path_factory.mktemp("cache")
    cache.chmod(0o755)  # as a user's cache folder is: the sandboxed student (another user) may read it
    crops = cache / "toy_crops"
    make_toy_crops(crops, size=16, frames_per_clip=2)
    return cache, crops


@pytest.fixture(scope="module")
def runs(toy: tuple[Path, Path]) -> dict[str, list]:
    """Real short runs on the toy crops, two seeds each: a baseline, its learning rate changed, and two
    settings changed."""
    cache, crops = toy
    short = TrainConfig(image_size=(16, 16), epochs=3, patience=3, protocol="random")
    data = FaceData(crops)

    def seeds(config: TrainConfig) -> list:
        return [artifacts.train(None, data, replace(config, seed=seed), cache=cache) for seed in (0, 1)]

    return {
        "baseline": seeds(short),
        "rate": seeds(replace(short, learning_rate=1e-2)),
        "two": seeds(replace(short, learning_rate=1e-2, epochs=2, patience=2)),
    }


def last(runs: list, measure: str) -> list[float]:
    """`measure` at the last epoch of each run."""
    return [measured(run.history(), measure) for run in runs]


def change(runs: dict, mine: str, measure: str = "val_accuracy") -> float:
    """The mean change of `measure` over the seeds, `mine` minus the baseline."""
    return float(np.mean(last(runs[mine], measure)) - np.mean(last(runs["baseline"], measure)))


def pair(run: object, history: pd.DataFrame | None = None, **changes: object) -> tuple[TrainConfig, pd.DataFrame]:
    """A run as (its config, its history), with `changes` to its settings and another history if given."""
    config = TrainConfig(**{k: v for k, v in run.config().items() if k in SETTINGS})
    return replace(config, **changes), run.history() if history is None else history


def check(runs: dict, mine: object, answer: float, setting: str = "learning_rate", measure: str = "val_accuracy"):
    return exercises.check_experiment(exercises.experiment(runs["baseline"], mine, answer), setting, measure)


def test_a_right_answer_from_the_students_own_runs_passes_and_states_the_change_and_the_spread(runs: dict) -> None:
    answer = change(runs, "rate", "val_loss")
    verdict = check(runs, runs["rate"], answer, measure="val_loss")
    assert verdict.ok, verdict.message
    assert "`learning_rate` = 0.01 instead of 0.001" in verdict.message and f"({answer:+.3f})" in verdict.message
    base, mine = last(runs["baseline"], "val_loss"), last(runs["rate"], "val_loss")
    assert f"The baseline's seeds differ by {abs(base[0] - base[1]):.3f}" in verdict.message
    assert f"and yours by {abs(mine[0] - mine[1]):.3f}" in verdict.message
    # runs handed over as (config, history) pairs, in any order, are judged the same way
    assert check(runs, [pair(run) for run in reversed(runs["rate"])], answer, measure="val_loss")


def test_the_change_is_read_against_the_spread_between_seeds(runs: dict) -> None:
    base = runs["baseline"]
    # the baseline's histories under the changed setting, seeds swapped: no change, but seeds differ
    swapped = [pair(base[1], learning_rate=1e-2, seed=0), pair(base[0], learning_rate=1e-2, seed=1)]
    within = check(runs, swapped, 0.0, measure="val_loss")
    assert within.ok and "the change is within that spread" in within.message, within.message
    # each history's loss one higher: a change far beyond the spread
    shifted = [
        pair(run, run.history().assign(val_loss=run.history()["val_loss"] + 1), learning_rate=1e-2) for run in base
    ]
    beyond = check(runs, shifted, 1.0, measure="val_loss")
    assert beyond.ok and "the change is larger than both" in beyond.message, beyond.message


def test_the_plausible_wrong_answers_are_named(runs: dict) -> None:
    def verdict(answer: float, measure: str) -> str:
        result = check(runs, runs["rate"], answer, measure=measure)
        assert not result.ok, (answer, measure, result.message)
        return result.message

    loss = change(runs, "rate", "val_loss")  # a loss differs between two runs where an accuracy may tie
    assert abs(loss) > 0.01, "the toy runs must differ for this test to mean anything"
    assert "subtract the other way" in verdict(-loss, "val_loss")
    mine, base = last(runs["rate"], "val_loss"), last(runs["baseline"], "val_loss")
    assert "of your runs (their mean)" in verdict(float(np.mean(mine)), "val_loss")
    assert "of your seed-1 run," in verdict(mine[1], "val_loss")
    first_seed = mine[0] - base[0]
    assert abs(first_seed - loss) > 0.01, "the seeds must differ for this test to mean anything"
    assert "the change on seed 0 alone" in verdict(first_seed, "val_loss")
    assert "too high" in verdict(loss + 0.5, "val_loss") and "too low" in verdict(loss - 0.5, "val_loss")
    # the gap from Keras's logged training accuracy (dropout on), where it differs from the scored one
    keras_gap = np.mean([r.history()["accuracy"].iloc[-1] - r.history()["val_accuracy"].iloc[-1] for r in runs["rate"]])
    keras_gap -= np.mean(
        [r.history()["accuracy"].iloc[-1] - r.history()["val_accuracy"].iloc[-1] for r in runs["baseline"]]
    )
    assert abs(keras_gap - change(runs, "rate", "gap")) > 0.01, "the logged and the scored gaps must differ here"
    assert "dropout on" in verdict(float(keras_gap), "gap")


def test_a_history_indexed_by_epoch_number_is_read_by_position(runs: dict) -> None:
    """A student's history may be numbered by epoch from 1 (read with `index_col`): the best-epoch mistake is
    still named, as for the package's own histories (numbered from 0)."""

    def best_first(run: object) -> pd.DataFrame:
        """The run's history with its lowest validation loss moved to the first epoch."""
        history = run.history().copy()
        history.loc[0, "val_loss"] = history["val_loss"].min() - 0.5
        return history

    histories = [best_first(run) for run in runs["rate"]]
    base = np.mean([run.history()["val_loss"].min() for run in runs["baseline"]])
    answer = float(np.mean([h["val_loss"].min() for h in histories]) - base)
    for index in (range(len(histories[0])), range(1, len(histories[0]) + 1)):
        mine = [pair(run, history=h.set_axis(index)) for run, h in zip(runs["rate"], histories)]
        verdict = check(runs, mine, answer, measure="val_loss")
        assert not verdict.ok and "best epochs" in verdict.message, (index, verdict.message)


def test_both_sides_need_the_same_seeds_at_least_two(runs: dict) -> None:
    base, rate, answer = runs["baseline"], runs["rate"], change(runs, "rate")
    one = exercises.check_experiment(exercises.experiment(base[0], rate[0], answer), "learning_rate", "val_accuracy")
    assert not one.ok and "the baseline has 1 run and your side 1 run" in one.message, one.message
    assert "at least 2 seeds" in one.message
    other_seeds = check(runs, [rate[0], pair(rate[1], seed=2)], answer)
    assert not other_seeds.ok and "your runs have seeds 0, 2 and the baseline 0, 1" in other_seeds.message
    repeated = check(runs, [rate[0], rate[0]], answer)
    assert not repeated.ok and "your runs repeat a seed (seeds 0, 0)" in repeated.message
    mixed = check(runs, [rate[0], runs["two"][1]], answer)
    assert not mixed.ok and "your runs differ in `epochs`, `patience`, not only in their seed" in mixed.message
    # the seeds asked for are the checker's argument
    assert exercises.check_experiment(
        exercises.experiment(
            base[0], rate[0], measured(rate[0].history(), "val_accuracy") - last(base, "val_accuracy")[0]
        ),
        "learning_rate",
        "val_accuracy",
        seeds=1,
    )


def test_only_the_asked_setting_may_change(runs: dict) -> None:
    same = check(runs, runs["baseline"], 0.0)
    assert not same.ok and "have the baseline's settings" in same.message
    two = check(runs, runs["two"], change(runs, "two"))
    assert not two.ok and "`epochs`" in two.message and "`patience`" in two.message
    assert "change `learning_rate` only" in two.message
    other = check(runs, runs["rate"], change(runs, "rate"), setting="dropout")
    assert not other.ok and "you changed `learning_rate`" in other.message
    assert changed_settings(runs["baseline"][0].config(), runs["rate"][0].config()) == ["learning_rate"]
    unanswered = exercises.check_experiment(exercises.experiment(runs["baseline"], None, None), "x", "val_accuracy")
    assert not unanswered.ok and unanswered.unanswered


def experiment_cells(chapter: str, repo_root: Path) -> tuple[str, str]:
    """(the stub, the solution) of a chapter's experiment exercise."""
    notebook = json.loads((repo_root / "notebooks" / f"{chapter}.ipynb").read_text())
    cells = notebook["cells"]
    (number,) = [n for n, i in exercise_cells(notebook).items() if "check_experiment" in cell_source(cells[i])]
    index = exercise_cells(notebook)[number]
    solution = next(c for c in cells[index + 1 :] if c["cell_type"] == "code" and is_solution(c))
    return cell_source(cells[index]), cell_source(solution)


def test_every_chapter_from_4_on_has_an_experiment_exercise(repo_root: Path) -> None:
    for chapter in EXPERIMENT_CHAPTERS:
        stub, solution = experiment_cells(chapter, repo_root)
        assert "mine = None" in stub and "answer = None" in stub, chapter
        assert split_call(stub, chapter)[1] == split_call(solution, chapter)[1], chapter


# The names the chapters' experiment cells read, made small on the toy crops (each chapter defines them at
# its own size); the grader runs this setup, then each chapter's stub as one exercise.
SETUP = """from dataclasses import replace

import numpy as np

from fer_utils.book.kit import build_paper_cnn, exercises, fer
from fer_utils.train.fit import fit_model

crops = {crops!r}
data = faces = london_faces = fer.FaceData(crops)
reference = fixed = settings = train_settings = fer.TrainConfig(
    image_size=(16, 16), epochs=2, patience=2, protocol="subject"
)
EXPERIMENT_SIZE, EXPERIMENT_EPOCHS = 24, 2  # chapter 8's solution tries 16
SEEDS = [0, 1]
"""


def with_answer(source: str, expression: str) -> str:
    """`source` with its `answer = …` statement replaced by `answer = expression`."""
    (node,) = [n for n in ast.parse(source).body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "answer"]
    lines = source.splitlines()
    return "\n".join([*lines[: node.lineno - 1], f"answer = {expression}", *lines[node.end_lineno :]])


def experiments_chapter(crops: Path, cells: list[tuple[str, str]], setup: str = SETUP) -> dict:
    """A chapter of the experiment exercises `cells` ((stub, solution) each) on the toy crops."""

    def code(source: str, *tags: str) -> dict:
        metadata = {"tags": list(tags)} if tags else {}
        return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": source}

    def md(source: str) -> dict:
        return {"cell_type": "markdown", "metadata": {}, "source": source}

    body = [md("# 4. Experiments"), code(setup.format(crops=str(crops)))]
    for number, (stub, solution) in enumerate(cells, 1):
        body += [md(f"### Exercise {number}"), code(stub), code(solution, "solution", "hide-cell")]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {"cells": body, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.slow
def test_each_chapters_experiment_is_graded_in_the_sandbox_on_the_students_runs(
    repo_root: Path, toy: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The book's seven experiment stubs as one chapter on toy crops: the solutions pass, each training its
    run in the sandbox, whose cache is read-only (the run goes to a scratch cache); an answer that is one
    run's value instead of the change and
    a second changed setting fail with their reasons; an untouched stub is unanswered; a student who changed a
    parameter before the exercises is graded on runs of their own (it was an `error`). Graded by otter
    (`fer_book grade`: the chapter's autograder from `fer_book assign`, `otter run` in the sandbox)."""
    cache, crops = toy
    monkeypatch.setenv("FER_CACHE", str(cache))
    stubs, solved = zip(*(experiment_cells(chapter, repo_root) for chapter in EXPERIMENT_CHAPTERS))
    # the baselines, as the executed book leaves them in its cache: the sandbox reads them there, read-only
    book: dict = {}
    exec(SETUP.format(crops=str(crops)), book)
    for stub in stubs:
        exec(stub, book)
    root = tmp_path / "book"
    (root / "nb").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: nb/04_experiments\n")
    chapter = root / "nb" / "04_experiments.ipynb"
    chapter.write_text(json.dumps(experiments_chapter(crops, list(zip(stubs, solved)))))
    student = json.loads(assign_chapter(chapter, tmp_path / "assign").student.read_text())

    def submission(answers: dict[int, str], setup: str = SETUP) -> str:
        """The student notebook with the answer cells of `answers` (a cell ending with its checker call)."""
        notebook = json.loads(json.dumps(student))
        cells = notebook["cells"]
        for number, index in exercise_cells(notebook).items():
            if number in answers:
                cells[index]["source"] = split_call(answers[number], f"exercise {number}")[0]
        (setup_cell,) = [c for c in cells if "EXPERIMENT_SIZE, EXPERIMENT_EPOCHS" in cell_source(c)]
        setup_cell["source"] = setup.format(crops=str(crops))
        return json.dumps(notebook)

    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ada.ipynb").write_text(submission(dict(enumerate(solved, 1))))
    own_value = with_answer(solved[0], 'mine[0].history()["val_accuracy"].iloc[-1]')
    two_settings = solved[1].replace("dropout=(0.5, 0.5, 0.5)", "dropout=(0.5, 0.5, 0.5), l1=1e-4")
    assert own_value != solved[0] and two_settings != solved[1]
    (subs / "bob.ipynb").write_text(submission({1: own_value, 2: two_settings}))
    # cy changes a parameter of the chapter before its exercises: nothing the book's run cached fits it
    longer = SETUP.replace("EXPERIMENT_EPOCHS = 24, 2", "EXPERIMENT_EPOCHS = 24, 3")
    assert longer != SETUP
    (subs / "cy.ipynb").write_text(submission({1: solved[0]}, longer))
    grades, _, _ = grade_folder(subs, "04", tmp_path / "grades.csv", timeout_s=600, root=root)
    rows = {(r.student, r.exercise): (r.status, r.message) for r in grades.itertuples()}
    for number in range(1, len(EXPERIMENT_CHAPTERS) + 1):
        assert rows["ada", number][0] == "passed", (number, rows["ada", number])
    assert rows["bob", 1][0] == "failed" and "not its change from the baseline" in rows["bob", 1][1]
    assert rows["bob", 2] == (
        "failed",
        "you changed `l1` as well as `dropout`: change `dropout` only, so that the difference between the baseline "
        "and your runs is its effect alone.",
    )
    assert all(rows["bob", n][0] == "unanswered" for n in range(3, len(EXPERIMENT_CHAPTERS) + 1))
    # was `error` (PermissionError: the sandbox's cache is read-only): its runs now train in a scratch cache
    assert rows["cy", 1][0] == "passed", rows["cy", 1]
