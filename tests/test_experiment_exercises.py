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
from fer_utils.book.exercises.experiment import (
    DESIGNS,
    MEASURES,
    PREDICTIONS,
    SETTINGS,
    changed_settings,
    compare,
    measured,
)
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
    """Real short runs on the toy crops, three seeds each: a baseline, its learning rate changed, and two
    settings changed."""
    cache, crops = toy
    short = TrainConfig(image_size=(16, 16), epochs=3, patience=3, protocol="random")
    data = FaceData(crops)

    def seeds(config: TrainConfig) -> list:
        return [artifacts.train(None, data, replace(config, seed=seed), cache=cache) for seed in SEEDS]

    return {
        "baseline": seeds(short),
        "rate": seeds(replace(short, learning_rate=1e-2)),
        "two": seeds(replace(short, learning_rate=1e-2, epochs=2, patience=2)),
    }


SEEDS = (0, 1, 2)


def last(runs: list, measure: str) -> list[float]:
    """`measure` of each run (at its last epoch)."""
    return [measured(record_of(run), measure) for run in runs]


def record_of(run: object) -> dict:
    """The checker's record of one run."""
    (record,) = exercises.experiment(run, run, 0.0)["baseline"]
    return record


def change(runs: dict, mine: str, measure: str = "val_accuracy") -> float:
    """The mean change of `measure` over the seeds, `mine` minus the baseline."""
    return float(np.mean(last(runs[mine], measure)) - np.mean(last(runs["baseline"], measure)))


def pair(run: object, history: pd.DataFrame | None = None, **changes: object) -> tuple:
    """A run as (its config, its history, its metrics), with `changes` to its settings and another history."""
    config = TrainConfig(**{k: v for k, v in run.config().items() if k in SETTINGS})
    return replace(config, **changes), run.history() if history is None else history, run.metrics()


def check(
    runs: dict,
    mine: object,
    answer: float,
    setting: str = "learning_rate",
    measure: str = "val_accuracy",
    design: str = "protocol",
):
    return exercises.check_experiment(exercises.experiment(runs["baseline"], mine, answer), setting, measure, design)


def test_a_right_answer_from_the_students_own_runs_passes_and_states_the_change_and_its_interval(runs: dict) -> None:
    answer = change(runs, "rate", "val_loss")
    verdict = check(runs, runs["rate"], answer, measure="val_loss")
    assert verdict.ok, verdict.message
    assert "`learning_rate` = 0.01 instead of 0.001" in verdict.message and f": {answer:+.3f}, 95 % interval [" in (
        verdict.message
    )
    base, mine = last(runs["baseline"], "val_loss"), last(runs["rate"], "val_loss")
    judged = compare(dict(zip(SEEDS, base)), dict(zip(SEEDS, mine)))
    assert str(judged) in verdict.message and "over 3 paired seeds" in verdict.message
    spread = max(np.std(base, ddof=1), np.std(mine, ddof=1))
    assert f"(largest std) {spread:.3f}" in verdict.message
    # the runs' training seconds travel with the verdict (the book's record of how long an exercise runs cold)
    assert verdict.seconds == pytest.approx(sum(r.metrics()["train_seconds"] for r in runs["baseline"] + runs["rate"]))
    # runs handed over as (config, history, metrics), in any order, are judged the same way
    assert check(runs, [pair(run) for run in reversed(runs["rate"])], answer, measure="val_loss")


def test_the_change_is_judged_seed_by_seed_by_its_interval_and_the_spread(runs: dict) -> None:
    base = runs["baseline"]
    # the baseline's histories under the changed setting: no change at all
    same = [pair(run, learning_rate=1e-2) for run in base]
    zero = check(runs, same, 0.0, measure="val_loss")
    assert zero.ok and "no effect shown: the interval holds zero" in zero.message, zero.message
    # each history's loss one higher: an effect far beyond the spread
    shifted = [
        pair(run, run.history().assign(val_loss=run.history()["val_loss"] + 1), learning_rate=1e-2) for run in base
    ]
    beyond = check(runs, shifted, 1.0, measure="val_loss")
    assert beyond.ok and "an effect: the interval leaves out zero" in beyond.message, beyond.message
    # float noise is no difference: a change of 1e-12 at every seed (zero spread of the changes) shows no effect
    assert not compare({0: 0.1, 1: 0.2, 2: 0.3}, {0: 0.1 + 1e-12, 1: 0.2 + 1e-12, 2: 0.3 + 1e-12}).effect
    # the same change at every seed, but smaller than the spread between seeds: no effect shown
    steady = compare({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.52, 1: 0.62, 2: 0.72})
    assert steady.low > 0 and not steady.effect and "the change is within the spread" in str(steady)
    assert compare({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.8, 1: 0.9, 2: 1.0}).effect


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


def test_the_test_side_is_read_from_the_last_epochs_weights(runs: dict) -> None:
    """The test accuracy of the last epoch's weights, not of the best epoch's (early stopping's pick, chosen on
    the validation side), nor the validation accuracy: each of those is named as the mistake it is."""
    planted = []
    for k, run in enumerate(runs["rate"]):
        metrics = run.metrics()
        metrics["test_last_epoch"]["frame"]["accuracy"] = 0.9 - 0.01 * k
        metrics["test"]["frame"]["accuracy"] = 0.2
        planted.append((pair(run)[0], run.history(), metrics))
    right = float(np.mean([0.9, 0.89, 0.88]) - np.mean(last(runs["baseline"], "test_accuracy")))
    assert check(runs, planted, right, measure="test_accuracy"), right
    best = 0.2 - np.mean([r.metrics()["test"]["frame"]["accuracy"] for r in runs["baseline"]])
    assert "best epoch's weights" in check(runs, planted, float(best), measure="test_accuracy").message
    on_val = change(runs, "rate", "val_accuracy")
    if not np.isclose(on_val, right, atol=1e-3):
        assert "validation side" in check(runs, planted, on_val, measure="test_accuracy").message


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


def test_both_sides_need_the_same_seeds_at_least_three(runs: dict) -> None:
    base, rate, answer = runs["baseline"], runs["rate"], change(runs, "rate")
    two = exercises.check_experiment(
        exercises.experiment(base[:2], rate[:2], answer), "learning_rate", "val_accuracy", "protocol"
    )
    assert not two.ok and "the baseline has 2 runs and your side 2 runs" in two.message, two.message
    assert "at least 3 seeds" in two.message
    other_seeds = check(runs, [*rate[:2], pair(rate[2], seed=5)], answer)
    assert not other_seeds.ok and "your runs have seeds 0, 1, 5 and the baseline 0, 1, 2" in other_seeds.message
    repeated = check(runs, [rate[0], rate[0], rate[1]], answer)
    assert not repeated.ok and "your runs repeat a seed (seeds 0, 0, 1)" in repeated.message
    mixed = check(runs, [*rate[:2], runs["two"][2]], answer)
    assert not mixed.ok and "your runs differ in `epochs`, `patience`, not only in their seed" in mixed.message
    # the seeds asked for are the checker's argument
    one = measured(record_of(rate[0]), "val_accuracy") - last(base, "val_accuracy")[0]
    assert exercises.check_experiment(
        exercises.experiment(base[0], rate[0], one), "learning_rate", "val_accuracy", "protocol", seeds=1
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
    unanswered = exercises.check_experiment(
        exercises.experiment(runs["baseline"], None, None), "x", "val_accuracy", "protocol"
    )
    assert not unanswered.ok and unanswered.unanswered


def test_each_design_asks_its_own_part(runs: dict) -> None:
    """Predict then run needs a prediction and says whether it held; an ablation switches a part off; a
    protocol comparison shows the validation side beside the test side; a budget trade-off states the time saved."""
    base, rate, answer = runs["baseline"], runs["rate"], change(runs, "rate")

    def judged(design: str, prediction: object = None, mine: object = rate, setting: object = "learning_rate"):
        record = exercises.experiment(base, mine, answer, prediction)
        return exercises.check_experiment(record, setting, "val_accuracy", design)

    assert "set `prediction`" in judged("predict").message and not judged("predict", "maybe").ok
    held = compare(*({s: v for s, v in zip(SEEDS, last(side, "val_accuracy"))} for side in (base, rate)))
    said = "no effect" if not held.effect else "higher" if held.change > 0 else "lower"
    assert "it held" in judged("predict", said).message
    assert "it did not hold" in judged("predict", next(p for p in PREDICTIONS if p != said)).message
    off = [pair(run, learning_rate=0.0) for run in base]
    assert "switches a part off" in judged("ablation", setting=("learning_rate", "l1")).message
    ablated = exercises.experiment(
        base, off, float(np.mean(last(off, "val_accuracy")) - np.mean(last(base, "val_accuracy")))
    )
    assert exercises.check_experiment(ablated, ("l1", "learning_rate"), "val_accuracy", "ablation")
    tested = exercises.check_experiment(
        exercises.experiment(base, rate, change(runs, "rate", "test_accuracy")),
        "learning_rate",
        "test_accuracy",
        "protocol",
    )
    assert tested.ok and "On the validation side the change was" in tested.message, tested.message
    budget = judged("budget")
    ratio = np.mean([r.metrics()["train_seconds"] for r in base]) / np.mean(
        [r.metrics()["train_seconds"] for r in rate]
    )
    assert budget.ok and f"trained {ratio:.1f}× as fast as the baseline's" in budget.message, budget.message


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


def checker_arguments(stub: str) -> tuple:
    """(setting, measure, design) of the chapter's `exercises.check_experiment(record, …)` call, as literals."""
    call = ast.parse(split_call(stub, "stub")[1]).body[0].value
    return tuple(ast.literal_eval(argument) for argument in call.args[1:4])


# Each setting an experiment may change: (the baseline's value, a student's), the student's switching it off.
VALUES = {
    "learning_rate": (1e-3, 1e-2),
    "dropout": ((0.3, 0.5, 0.5), (0.0, 0.0, 0.0)),
    "l1": (1e-4, 0.0),
    "protocol": ("random", "subject"),
    "model": ("paper-cnn", "mini-xception"),
    "image_size": ((32, 32), (16, 16)),
    "augment": (True, False),
    "label_smoothing": (0.1, 0.0),
}


def planted(setting: str | tuple, measure: str, values: dict[str, list[float]]) -> dict:
    """A record of planted runs: `measure` takes `values["baseline"]` and `values["changed"]` over three seeds,
    the baseline with every setting the exercise may change on, the changed side with the first one changed."""
    allowed = (setting,) if isinstance(setting, str) else setting
    config = TrainConfig(**{name: VALUES[name][0] for name in allowed})
    sides = {"baseline": config, "changed": replace(config, **{allowed[0]: VALUES[allowed[0]][1]})}

    def run(side: str, seed: int, value: float) -> tuple:
        history = pd.DataFrame(
            {"accuracy": [0.5, 0.6], "val_loss": [1.0, value], "val_accuracy": [0.4, 0.5]}
            | {"train_eval_accuracy": [0.5, 0.5 + (value if measure == "gap" else 0.1)]}
        )
        if measure == "val_accuracy":
            history["val_accuracy"] = [0.4, value]
        metrics = {"test_last_epoch": {"frame": {"accuracy": value}}, "test": {"frame": {"accuracy": 0.3}}}
        return replace(sides[side], seed=seed), history, metrics | {"train_seconds": 1.0}

    runs = {side: [run(side, seed, v) for seed, v in zip(SEEDS, values[side])] for side in sides}
    answer = float(np.mean(values["changed"]) - np.mean(values["baseline"]))
    return exercises.experiment(runs["baseline"], runs["changed"], answer, "no effect")


@pytest.mark.parametrize("chapter", EXPERIMENT_CHAPTERS)
def test_each_chapters_experiment_grades_a_zero_and_a_within_spread_change_as_no_effect(
    chapter: str, repo_root: Path
) -> None:
    """Planted in each chapter's experiment as the chapter calls its checker: a change of exactly zero, one of
    float noise, one within the spread (the interval holds zero) and the same small change at every seed (the
    interval leaves out zero, but it is within the spread between seeds) are all graded as no effect; a change
    far beyond the spread is an effect. The last epoch's test accuracy is what chapters 6 to 10 read."""
    stub, _ = experiment_cells(chapter, repo_root)
    setting, measure, design = checker_arguments(stub)
    assert measure in MEASURES and design in DESIGNS, (chapter, measure, design)
    assert measure == "test_accuracy" or chapter == "05_regularization", "test, not validation (chapter 6)"
    base = [0.6, 0.7, 0.8]
    cases = {
        "zero": [0.6, 0.7, 0.8],
        "float noise": [v + 1e-12 for v in base],
        "within the spread": [0.65, 0.68, 0.84],
        "the same small change": [v + 0.02 for v in base],
    }
    for case, mine in cases.items():
        verdict = exercises.check_experiment(
            planted(setting, measure, {"baseline": base, "changed": mine}), setting, measure, design
        )
        assert verdict.ok and "no effect shown" in verdict.message, (chapter, case, verdict.message)
        assert not compare(dict(zip(SEEDS, base)), dict(zip(SEEDS, mine))).effect, (chapter, case)
    beyond = planted(setting, measure, {"baseline": base, "changed": [v + 0.15 for v in base]})
    verdict = exercises.check_experiment(beyond, setting, measure, design)
    assert verdict.ok and "an effect: the interval leaves out zero" in verdict.message, (chapter, verdict.message)


# The names the chapters' experiment cells read, made small on the toy crops (each chapter defines them at
# its own size); the grader runs this setup, then each chapter's stub as one exercise.
SETUP = """from dataclasses import replace

import numpy as np

from fer_utils.book.kit import build_paper_cnn, exercises, fer
from fer_utils.train.fit import fit_model

crops = {crops!r}
data = faces = london_faces = fer.FaceData(crops)
reference = fixed = settings = train_settings = fer.TrainConfig(
    image_size=(16, 16), epochs=2, patience=2, protocol="subject", augment=True, label_smoothing=0.1
)
SETTINGS = {{"none": {{"dropout": (0.0, 0.0, 0.0), "l1": 0.0}}, "remedy": {{"dropout": (0.3, 0.5, 0.5), "l1": 1e-4}}}}
names = list(SETTINGS)
EXPERIMENT_SIZE, EXPERIMENT_EPOCHS = 24, 2  # chapter 8's solution tries 16
SEEDS = [0, 1, 2]
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
    own_value = with_answer(solved[0], 'mine[0].scores()["last-epoch accuracy"]')
    two_settings = solved[1].replace("dropout=(0.0, 0.0, 0.0)", "dropout=(0.0, 0.0, 0.0), learning_rate=1e-2")
    assert own_value != solved[0] and two_settings != solved[1]
    (subs / "bob.ipynb").write_text(submission({1: own_value, 2: two_settings}))
    # cy changes a parameter of the chapter before its exercises (chapter 5's remedy, which only its experiment
    # reads, so the other stubs still find their baselines): nothing the book's run cached fits exercise 2
    stronger = SETUP.replace('"l1": 1e-4}}', '"l1": 2e-4}}')
    assert stronger != SETUP
    (subs / "cy.ipynb").write_text(submission({2: solved[1]}, stronger))
    grades, _, _ = grade_folder(subs, "04", tmp_path / "grades.csv", timeout_s=600, root=root)
    rows = {(r.student, r.exercise): (r.status, r.message) for r in grades.itertuples()}
    for number in range(1, len(EXPERIMENT_CHAPTERS) + 1):
        assert rows["ada", number][0] == "passed", (number, rows["ada", number])
    assert rows["bob", 1][0] == "failed" and "not its change from the baseline" in rows["bob", 1][1]
    assert rows["bob", 2] == (
        "failed",
        "you changed `learning_rate` as well as `dropout`: change `dropout` or `l1` only, so that the difference "
        "between the baseline and your runs is its effect alone.",
    )
    assert all(rows["bob", n][0] == "unanswered" for n in range(3, len(EXPERIMENT_CHAPTERS) + 1))
    # was `error` (PermissionError: the sandbox's cache is read-only): its runs now train in a scratch cache
    assert rows["cy", 2][0] == "passed", rows["cy", 2]
