"""The experiment exercises of chapters 4 to 10: change one setting of a baseline, train it over the same
seeds, and answer from the results, which the checker recomputes from the student's own runs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, fields, is_dataclass
from statistics import mean

import pandas as pd

from fer_utils.book.exercises.feedback import UNANSWERED, Feedback, as_number
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX
from fer_utils.train.config import TrainConfig
from fer_utils.train.runs import RunFolder

# What an answer may measure on each run's last epoch, and the feedback's words for it.
MEASURES = {
    "val_accuracy": "the validation accuracy at the last epoch",
    "val_loss": "the validation loss at the last epoch",
    "gap": "the train−validation accuracy gap at the last epoch (both sides scored in inference mode)",
}
SETTINGS = tuple(field.name for field in fields(TrainConfig))


def experiment(baseline: object, changed: object, answer: object) -> dict | None:
    """Each side's runs (a `RunFolder`, a (config, history) pair, or a list) and the answer, for the checker."""
    if changed is None or answer is None:
        return None
    return {"baseline": _side_record(baseline), "changed": _side_record(changed), "answer": answer}


def _side_record(runs: object) -> list[dict]:
    """The records of one side's runs: one run, or a list (or tuple) of runs."""
    one = isinstance(runs, RunFolder) or (
        isinstance(runs, tuple) and len(runs) == 2 and (is_dataclass(runs[0]) or isinstance(runs[0], dict))
    )
    return [_run_record(run) for run in ([runs] if one else list(runs))]


def _run_record(run: object) -> dict:
    """{"config": the run's settings as a dict, "history": its per-epoch table} of a run folder or a pair."""
    config, history = (run.config(), run.history()) if isinstance(run, RunFolder) else run
    if is_dataclass(config):
        config = asdict(config)
    return {"config": {name: config.get(name) for name in SETTINGS}, "history": pd.DataFrame(history)}


def measured(history: pd.DataFrame, measure: str, epoch: int = -1) -> float:
    """`measure` (a key of MEASURES) read on one epoch of a run's history (default: the last)."""
    row = history.iloc[epoch]
    if measure == "gap":
        return float(row[f"{TRAIN_EVAL_PREFIX}accuracy"] - row["val_accuracy"])
    return float(row[measure])


def changed_settings(baseline: dict, changed: dict) -> list[str]:
    """The settings whose values differ between two runs' configs (lists and tuples compare alike)."""

    def same(a: object, b: object) -> bool:
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, float) or isinstance(b, float):
            return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
        return a == b

    return [name for name in SETTINGS if not same(baseline.get(name), changed.get(name))]


def close(a: float, b: float) -> bool:
    """Whether two measured changes agree to the precision an answer read off a history table has."""
    return math.isclose(a, b, rel_tol=1e-2, abs_tol=1e-3)


def _count(seeds: list[int]) -> str:
    return f"{len(seeds)} run{'s' if len(seeds) != 1 else ''}"


def _names(settings: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in settings)


def _runs_problem(base: list[dict], mine: list[dict], setting: str, seeds: int) -> str | None:
    """What is wrong with the two sides' runs as an experiment on `setting` over `seeds` seeds, or None."""
    if not base or not mine:
        return f"{'the baseline' if not base else 'your side'} has no runs: hand over a list of runs, one per seed."
    for name, runs in (("the baseline's runs", base), ("your runs", mine)):
        seeds_of = [run["config"]["seed"] for run in runs]
        if len(set(seeds_of)) < len(seeds_of):
            return f"{name} repeat a seed (seeds {', '.join(map(str, seeds_of))}): train each seed once."
        for run in runs[1:]:
            others = [n for n in changed_settings(runs[0]["config"], run["config"]) if n != "seed"]
            if others:
                return (
                    f"{name} differ in {_names(others)}, not only in their seed: the runs of one side should be "
                    "one run trained with different seeds."
                )
    changed = [n for n in changed_settings(base[0]["config"], mine[0]["config"]) if n != "seed"]
    if not changed:
        return f"your runs have the baseline's settings: change `{setting}` and run them again."
    if changed != [setting]:
        others = _names([name for name in changed if name != setting])
        also = f" as well as `{setting}`" if setting in changed else ""
        return (
            f"you changed {others}{also}: change `{setting}` only, so that the difference between the baseline "
            "and your runs is its effect alone."
        )
    base_seeds = sorted(run["config"]["seed"] for run in base)
    mine_seeds = sorted(run["config"]["seed"] for run in mine)
    if min(len(base_seeds), len(mine_seeds)) < seeds:
        return (
            f"the baseline has {_count(base_seeds)} and your side {_count(mine_seeds)}: train each side with "
            f"at least {seeds} seeds (a list of runs, one per seed), so that the change "
            "can be read against the spread between seeds."
        )
    if base_seeds != mine_seeds:
        return (
            f"your runs have seeds {', '.join(map(str, mine_seeds))} and the baseline "
            f"{', '.join(map(str, base_seeds))}: train yours with the baseline's seeds, so that each seed's pair "
            f"differs in `{setting}` alone."
        )
    return None


def _history_problem(runs: list[dict], name: str, measure: str) -> str | None:
    """What keeps `measure` from being read on each of one side's runs (`name`), or None."""
    for run in runs:
        history, seed = run["history"], run["config"]["seed"]
        if len(history) == 0:
            return f"{name}, seed {seed}: its history is empty: did it train?"
        if measure == "gap" and f"{TRAIN_EVAL_PREFIX}accuracy" not in history:
            return f"{name}, seed {seed}: its history has no `{TRAIN_EVAL_PREFIX}accuracy`: train it with score_train."
    return None


def check_experiment(record: object, setting: str, measure: str, seeds: int = 2) -> Feedback:
    """The student changed one setting of the baseline (`setting`) and nothing else, trained both over the same seeds
    (at least `seeds`), and answered the mean change in a measured number (`measure`, one of MEASURES), their runs
    minus the baseline, recomputed here from the student's own runs and read against the spread between seeds."""
    if record is None:
        return Feedback(False, f"{UNANSWERED}: run your experiment and set `answer`, then run this cell again.")
    if not isinstance(record, dict) or not {"baseline", "changed", "answer"} <= set(record):
        return Feedback(False, "hand over `exercises.experiment(baseline, yours, answer)` as the cell does.")
    base, mine = record["baseline"], record["changed"]
    problem = (
        _runs_problem(base, mine, setting, seeds)
        or _history_problem(base, "the baseline", measure)
        or _history_problem(mine, "your run", measure)
    )
    if problem:
        return Feedback(False, problem)
    before = {run["config"]["seed"]: measured(run["history"], measure) for run in base}
    after = {run["config"]["seed"]: measured(run["history"], measure) for run in mine}
    expected = mean(after.values()) - mean(before.values())
    what = MEASURES[measure]
    value = as_number(record["answer"])
    if value is None or not math.isfinite(value):
        return Feedback(
            False,
            f"`answer` should be a finite number: the change in {what}, the mean of your runs minus the baseline's.",
        )
    if close(value, expected):
        return Feedback(True, _result(base, mine, setting, what, before, after))
    for wrong, message in _hints(base, mine, measure, before, after):
        if close(value, wrong) and not close(wrong, expected):
            return Feedback(False, f"{value:g}: {message}.")
    direction = "high" if value > expected else "low"
    return Feedback(
        False,
        f"{value:g} is too {direction} for the change in {what}: read each run's last epoch "
        "(`history.iloc[-1]`), average each side over its seeds, and subtract the baseline's mean from yours.",
    )


def _result(base: list[dict], mine: list[dict], setting: str, what: str, before: dict, after: dict) -> str:
    """The message of a right answer: the mean change and the spread between seeds it is read against."""
    change = mean(after.values()) - mean(before.values())
    spread = {side: max(v.values()) - min(v.values()) for side, v in (("base", before), ("mine", after))}
    reading = (
        "the change is larger than both"
        if abs(change) > max(spread.values())
        else "the change is within that spread: these seeds show no effect beyond it"
    )
    return (
        f"with `{setting}` = {mine[0]['config'][setting]!r} instead of {base[0]['config'][setting]!r}, {what} went "
        f"from {mean(before.values()):.3f} to {mean(after.values()):.3f} on average over seeds "
        f"{', '.join(map(str, sorted(before)))} ({change:+.3f}). The baseline's seeds differ by "
        f"{spread['base']:.3f} and yours by {spread['mine']:.3f}: {reading}."
    )


def _hints(base: list[dict], mine: list[dict], measure: str, before: dict, after: dict) -> Iterator[tuple[float, str]]:
    """(a plausible wrong answer, what it is) for the student's runs."""
    what = MEASURES[measure]
    expected = mean(after.values()) - mean(before.values())
    yield -expected, "that is the baseline minus your runs: subtract the other way (yours minus the baseline)"
    yield mean(after.values()), f"that is {what} of your runs (their mean), not its change from the baseline"
    for seed, v in after.items():
        yield v, f"that is {what} of your seed-{seed} run, not its change from the baseline"
    for seed in after:
        yield (
            after[seed] - before[seed],
            f"that is the change on seed {seed} alone: average each side over all its seeds, then subtract",
        )
    if measure == "gap":

        def logged(runs: list[dict]) -> float:
            return mean(float((r["history"]["accuracy"] - r["history"]["val_accuracy"]).iloc[-1]) for r in runs)

        yield (
            logged(mine) - logged(base),
            "that uses the training accuracy Keras logs (the epoch's running mean, dropout on); score both "
            f"sides in inference mode: `{TRAIN_EVAL_PREFIX}accuracy`",
        )
    column = "val_accuracy" if measure == "gap" else measure

    def at_best(runs: list[dict]) -> float:
        def best(history: pd.DataFrame) -> int:
            values = history[column].reset_index(drop=True)  # a position: `measured` reads the epoch with iloc
            return int(values.idxmax() if "accuracy" in column else values.idxmin())

        return mean(measured(r["history"], measure, best(r["history"])) for r in runs)

    yield (
        at_best(mine) - at_best(base),
        "that compares the runs' best epochs; the question reads the last epoch of each",
    )
