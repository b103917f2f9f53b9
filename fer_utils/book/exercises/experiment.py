"""The experiment exercises of chapters 4 to 10: change one setting of a baseline, train both sides over the same
seeds, and answer the mean change, which the checker recomputes from the student's own runs and judges as chapter 6
teaches: seed by seed (a paired comparison), with the 95 % interval of the mean change and the spread over seeds."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, fields, is_dataclass
from statistics import mean
from typing import NamedTuple

import numpy as np
import pandas as pd

from fer_utils.book.chapters import confidence_interval, seed_spread
from fer_utils.book.exercises.feedback import UNANSWERED, Feedback, as_number
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX
from fer_utils.train.config import TrainConfig
from fer_utils.train.runs import RunFolder

# What an answer may measure on each run, and the feedback's words for it.
MEASURES = {
    "test_accuracy": "the test accuracy of the last epoch's weights",
    "val_accuracy": "the validation accuracy at the last epoch",
    "val_loss": "the validation loss at the last epoch",
    "gap": "the train−validation accuracy gap at the last epoch (both sides scored in inference mode)",
}
SETTINGS = tuple(field.name for field in fields(TrainConfig))
PREDICTIONS = ("higher", "lower", "no effect")  # what a student predicts the measured number does
DIGITS = 9  # a measured change is rounded to this many decimals: float noise is no difference


class Design(NamedTuple):
    """How an experiment exercise is built (`task`), and the rubrics of the two questions graded by hand around
    it: the one before the run (`before`) and the one after it (`after`)."""

    title: str
    task: str
    before: str
    after: str


DESIGNS = {
    "predict": Design(
        "predict, then run",
        "write a prediction (`prediction`: higher, lower or no effect) before training, then run both sides",
        "1 point for a direction (higher, lower or no effect) with a rough size, 1 for a reason from the chapter; "
        "a wrong prediction that was reasoned earns both",
        "1 point for reading the checker's verdict (the change, its interval, the spread) and saying whether the "
        "prediction held, 1 for why it did or did not",
    ),
    "ablation": Design(
        "an ablation",
        "switch one part of the baseline's recipe off and keep the rest",
        "1 point for naming the part switched off and what it does in the chapter, 1 for a direction with a reason",
        "1 point for reading the effect from its interval (no effect shown when it holds zero), 1 for saying "
        "whether the recipe needs the part",
    ),
    "protocol": Design(
        "a protocol comparison",
        "train the same runs under another split and read the test side; the checker shows the validation side",
        "1 point for saying which split tests new people and why, 1 for a direction of the test accuracy",
        "1 point for comparing the test side's change with the validation side's, 1 for saying which one a "
        "report states, and why",
    ),
    "budget": Design(
        "a budget trade-off",
        "train a cheaper setting: what it costs in test accuracy against the training time it saves",
        "1 point for the cost predicted in accuracy, 1 for the saving predicted in time, each with a reason",
        "1 point for both sides of the trade (the accuracy change with its interval, the speed ratio), 1 for a "
        "choice of setting under a stated budget",
    ),
}


def experiment(baseline: object, changed: object, answer: object, prediction: object = None) -> dict | None:
    """Each side's runs (a `RunFolder`, a (config, history[, metrics]) tuple, or a list), the answer and the
    prediction, for the checker."""
    if changed is None or answer is None:
        return None
    record = {"baseline": _side_record(baseline), "changed": _side_record(changed), "answer": answer}
    return record | {"prediction": prediction}


def _side_record(runs: object) -> list[dict]:
    """The records of one side's runs: one run, or a list (or tuple) of runs."""
    one = isinstance(runs, RunFolder) or (
        isinstance(runs, tuple) and len(runs) in (2, 3) and (is_dataclass(runs[0]) or isinstance(runs[0], dict))
    )
    return [_run_record(run) for run in ([runs] if one else list(runs))]


def _run_record(run: object) -> dict:
    """A run's settings, per-epoch history, test accuracies (last and best epoch) and training seconds."""
    if isinstance(run, RunFolder):
        config, history, metrics = run.config(), run.history(), run.metrics()
    else:
        config, history, metrics = (*run, {})[:3]
    if is_dataclass(config):
        config = asdict(config)
    test = {
        side: metrics.get(key, {}).get("frame", {}).get("accuracy")
        for side, key in (("last", "test_last_epoch"), ("best", "test"))
    }
    return {
        "config": {name: config.get(name) for name in SETTINGS},
        "history": pd.DataFrame(history),
        "test": test,
        "seconds": metrics.get("train_seconds"),
    }


def measured(run: dict, measure: str, epoch: int = -1) -> float:
    """`measure` (a key of MEASURES) of one run's record, read on one epoch of its history (default: the last);
    the test accuracy is the last epoch's weights' alone."""
    if measure == "test_accuracy":
        return float(run["test"]["last"])
    row = run["history"].iloc[epoch]
    if measure == "gap":
        return float(row[f"{TRAIN_EVAL_PREFIX}accuracy"] - row["val_accuracy"])
    return float(row[measure])


class Comparison(NamedTuple):
    """Two sides compared seed by seed: the mean change, its 95 % interval, the spread over seeds, the verdict."""

    change: float
    low: float
    high: float
    spread: float
    seeds: int

    @property
    def effect(self) -> bool:
        """An effect shown: the interval leaves out zero and the change is larger than the spread over seeds."""
        return self.seeds >= 2 and (self.low > 0 or self.high < 0) and abs(self.change) > self.spread

    def __str__(self) -> str:
        verdict = (
            "an effect: the interval leaves out zero and the change is larger than the spread"
            if self.effect
            else "no effect shown: "
            + ("the interval holds zero" if self.low <= 0 <= self.high else "the change is within the spread")
        )
        return (
            f"{self.change:+.3f}, 95 % interval [{self.low:+.3f}, {self.high:+.3f}] over {self.seeds} paired seeds, "
            f"spread over seeds (largest std) {self.spread:.3f}: {verdict}"
        )


def compare(before: dict[int, float], after: dict[int, float]) -> Comparison:
    """`after` against `before` ({seed: value}, the same seeds): the paired changes' mean and 95 % t-interval."""
    seeds = sorted(before)
    changes = np.round([after[seed] - before[seed] for seed in seeds], DIGITS)
    low, high = confidence_interval(changes) if len(seeds) > 1 else (-math.inf, math.inf)
    spread = round(seed_spread(list(before.values()), list(after.values())), DIGITS)
    return Comparison(round(float(changes.mean()), DIGITS), round(low, DIGITS), round(high, DIGITS), spread, len(seeds))


def changed_settings(baseline: dict, changed: dict) -> list[str]:
    """The settings whose values differ between two runs' configs (lists and tuples compare alike)."""

    def same(a: object, b: object) -> bool:
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, float) or isinstance(b, float):
            return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
        return a == b

    return [name for name in SETTINGS if not same(baseline.get(name), changed.get(name))]


def is_off(value: object) -> bool:
    """Whether a setting's value switches its part of the recipe off: 0, False, "none", or all zeros."""
    if isinstance(value, (list, tuple)):
        return all(is_off(v) for v in value)
    return value in (0, False, None, "none")


def close(a: float, b: float) -> bool:
    """Whether two measured changes agree to the precision an answer read off a history table has."""
    return math.isclose(a, b, rel_tol=1e-2, abs_tol=1e-3)


def _count(seeds: list[int]) -> str:
    return f"{len(seeds)} run{'s' if len(seeds) != 1 else ''}"


def _names(settings: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in settings)


def _runs_problem(base: list[dict], mine: list[dict], allowed: tuple[str, ...], seeds: int) -> str | None:
    """What is wrong with the two sides' runs as an experiment on one of `allowed` over `seeds` seeds, or None."""
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
    wanted = " or ".join(f"`{name}`" for name in allowed)
    if not changed:
        return f"your runs have the baseline's settings: change {wanted} and run them again."
    if len(changed) > 1 or changed[0] not in allowed:
        extra = [name for name in changed if name not in allowed] or changed[1:]
        kept = [name for name in changed if name not in extra]
        also = f" as well as {_names(kept)}" if kept else ""
        return (
            f"you changed {_names(extra)}{also}: change {wanted} only, so that the difference between the "
            "baseline and your runs is its effect alone."
        )
    base_seeds = sorted(run["config"]["seed"] for run in base)
    mine_seeds = sorted(run["config"]["seed"] for run in mine)
    if min(len(base_seeds), len(mine_seeds)) < seeds:
        return (
            f"the baseline has {_count(base_seeds)} and your side {_count(mine_seeds)}: train each side with "
            f"at least {seeds} seeds (a list of runs, one per seed), so that the change "
            "can be read against its interval over seeds."
        )
    if base_seeds != mine_seeds:
        return (
            f"your runs have seeds {', '.join(map(str, mine_seeds))} and the baseline "
            f"{', '.join(map(str, base_seeds))}: train yours with the baseline's seeds, so that each seed's pair "
            f"differs in `{changed[0]}` alone."
        )
    return None


def _record_problem(runs: list[dict], name: str, measure: str) -> str | None:
    """What keeps `measure` from being read on each of one side's runs (`name`), or None."""
    for run in runs:
        history, seed = run["history"], run["config"]["seed"]
        if len(history) == 0:
            return f"{name}, seed {seed}: its history is empty: did it train?"
        if measure == "gap" and f"{TRAIN_EVAL_PREFIX}accuracy" not in history:
            return f"{name}, seed {seed}: its history has no `{TRAIN_EVAL_PREFIX}accuracy`: train it with score_train."
        if measure == "test_accuracy" and None in run["test"].values():
            return f"{name}, seed {seed}: no test accuracy recorded: hand over the run folders `fer.train` returns."
    return None


def _design_problem(record: dict, mine: list[dict], design: str) -> str | None:
    """What the design asks that the record lacks, or None."""
    if design == "predict" and record.get("prediction") not in PREDICTIONS:
        return (
            f"set `prediction` to one of {', '.join(map(repr, PREDICTIONS))} before you train your runs (it was "
            f"{record.get('prediction')!r})."
        )
    if design == "ablation":
        (name,) = [n for n in changed_settings(record["baseline"][0]["config"], mine[0]["config"]) if n != "seed"]
        if not is_off(mine[0]["config"][name]):
            return (
                f"an ablation switches a part off: set `{name}` to zero (or off), not to {mine[0]['config'][name]!r}."
            )
    return None


def check_experiment(
    record: object, setting: str | tuple[str, ...], measure: str, design: str, seeds: int = 3
) -> Feedback:
    """The student changed one setting of the baseline (`setting`, or one of several) and nothing else, as the
    exercise's `design` (a key of DESIGNS) asks, trained both sides over the same seeds (at least `seeds`) and
    answered the mean change in `measure` (a key of MEASURES), their runs minus the baseline; recomputed here from
    the student's own runs and judged seed by seed: an effect only when its interval leaves out zero."""
    if record is None:
        return Feedback(False, f"{UNANSWERED}: run your experiment and set `answer`, then run this cell again.")
    if not isinstance(record, dict) or not {"baseline", "changed", "answer"} <= set(record):
        return Feedback(False, "hand over `exercises.experiment(baseline, yours, answer, …)` as the cell does.")
    base, mine = record["baseline"], record["changed"]
    allowed = (setting,) if isinstance(setting, str) else tuple(setting)
    problem = (
        _runs_problem(base, mine, allowed, seeds)
        or _record_problem(base, "the baseline", measure)
        or _record_problem(mine, "your run", measure)
        or _design_problem(record, mine, design)
    )
    if problem:
        return Feedback(False, problem)
    before = {run["config"]["seed"]: measured(run, measure) for run in base}
    after = {run["config"]["seed"]: measured(run, measure) for run in mine}
    expected = mean(after.values()) - mean(before.values())
    what = MEASURES[measure]
    value = as_number(record["answer"])
    if value is None or not math.isfinite(value):
        return Feedback(
            False,
            f"`answer` should be a finite number: the change in {what}, the mean of your runs minus the baseline's.",
        )
    seconds = sum(run["seconds"] or 0.0 for run in (*base, *mine)) or None
    if close(value, expected):
        return Feedback(True, _result(record, design, measure, before, after), seconds)
    for wrong, message in _hints(base, mine, measure, before, after):
        if close(value, wrong) and not close(wrong, expected):
            return Feedback(False, f"{value:g}: {message}.")
    direction = "high" if value > expected else "low"
    return Feedback(
        False,
        f"{value:g} is too {direction} for the change in {what}: read each run's value, average each side over its "
        "seeds, and subtract the baseline's mean from yours.",
    )


def _result(record: dict, design: str, measure: str, before: dict, after: dict) -> str:
    """The message of a right answer: the change judged seed by seed, and what the design adds to it."""
    base, mine = record["baseline"], record["changed"]
    (name,) = [n for n in changed_settings(base[0]["config"], mine[0]["config"]) if n != "seed"]
    judged = compare(before, after)
    lines = [
        f"with `{name}` = {mine[0]['config'][name]!r} instead of {base[0]['config'][name]!r}, {MEASURES[measure]} "
        f"went from {mean(before.values()):.3f} to {mean(after.values()):.3f} over seeds "
        f"{', '.join(map(str, sorted(before)))}: {judged}."
    ]
    if design == "predict":
        held = ("no effect" if not judged.effect else "higher" if judged.change > 0 else "lower") == record[
            "prediction"
        ]
        lines.append(f"You predicted {record['prediction']!r}: {'it held' if held else 'it did not hold'}.")
    if design == "protocol" and measure != "val_accuracy":
        on_val = compare(*({r["config"]["seed"]: measured(r, "val_accuracy") for r in side} for side in (base, mine)))
        lines.append(f"On the validation side the change was {on_val.change:+.3f}: the test side is the one to report.")
    if design == "budget" and all(run["seconds"] for run in (*base, *mine)):
        ratio = mean(run["seconds"] for run in base) / mean(run["seconds"] for run in mine)
        lines.append(f"Your runs trained {ratio:.1f}× as fast as the baseline's (training seconds, mean over seeds).")
    return " ".join(lines)


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
    if measure == "test_accuracy":
        yield (
            mean(measured(r, "val_accuracy") for r in mine) - mean(measured(r, "val_accuracy") for r in base),
            "that is the change on the validation side; the question reads the test side",
        )
    if measure == "test_accuracy":
        best = {side: mean(r["test"]["best"] for r in runs) for side, runs in (("base", base), ("mine", mine))}
        yield best["mine"] - best["base"], "that reads the best epoch's weights (early stopping's pick), not the last"
        return
    column = "val_accuracy" if measure == "gap" else measure

    def at_best(runs: list[dict]) -> float:
        def best(history: pd.DataFrame) -> int:
            values = history[column].reset_index(drop=True)  # a position: `measured` reads the epoch with iloc
            return int(values.idxmax() if "accuracy" in column else values.idxmin())

        return mean(measured(r, measure, best(r["history"])) for r in runs)

    yield (
        at_best(mine) - at_best(base),
        "that compares the runs' best epochs; the question reads the last epoch of each",
    )
