"""The experiment exercises of chapters 4 to 10 (issue 46): change one setting of a baseline run (a short
run, or the chapter's own first-seed run from the cache), train it, and answer from the result. The student hands over both runs as plain data (`experiment`: each run's
settings and per-epoch history, and the answer), so the checker grades the student's own output: it
checks that exactly the asked setting changed and recomputes the answer from the two histories, naming
the plausible mistakes (the other sign, one run's value instead of the change, the best epoch instead of
the last, the training accuracy logged with dropout on instead of the one scored in inference mode).
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields, is_dataclass

import pandas as pd

from fer_utils.book.exercises.feedback import UNANSWERED, Feedback, as_number
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX
from fer_utils.train.config import TrainConfig
from fer_utils.train.runs import RunFolder

# What an experiment's answer may measure, on the last epoch of each run's history: the column(s) read and
# the words the feedback uses. "gap" is training minus validation accuracy, both scored in inference mode.
MEASURES = {
    "val_accuracy": "the validation accuracy at the last epoch",
    "val_loss": "the validation loss at the last epoch",
    "gap": "the train−validation accuracy gap at the last epoch (both sides scored in inference mode)",
}
SETTINGS = tuple(field.name for field in fields(TrainConfig))


def experiment(baseline: object, changed: object, answer: object) -> dict | None:
    """The plain record the checker reads: each run's settings and history, and the student's answer.

    A run is a `RunFolder` (what `fer.train` returns) or a pair (its `TrainConfig`, its history table);
    None while the experiment has not been run (the exercise is then unanswered, not wrong)."""
    if changed is None or answer is None:
        return None
    return {"baseline": _run_record(baseline), "changed": _run_record(changed), "answer": answer}


def _run_record(run: object) -> dict:
    """{"config": the run's settings as a dict, "history": its per-epoch table} of a run folder or a pair."""
    if isinstance(run, RunFolder):
        config, history = run.config(), run.history()
    else:
        config, history = run
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


def check_experiment(record: object, setting: str, measure: str) -> Feedback:
    """The student changed one setting of the baseline run (`setting`) and nothing else, trained it, and answered
    the change in a measured number (`measure`, one of MEASURES), their run minus the baseline, recomputed
    here from the student's own two runs."""
    if record is None:
        return Feedback(False, f"{UNANSWERED}: run your experiment and set `answer`, then run this cell again.")
    if not isinstance(record, dict) or not {"baseline", "changed", "answer"} <= set(record):
        return Feedback(False, "hand over `exercises.experiment(baseline, yours, answer)` as the cell does.")
    base, mine = record["baseline"], record["changed"]
    changed = changed_settings(base["config"], mine["config"])
    if not changed:
        return Feedback(False, f"your run has the baseline's settings: change `{setting}` and run it again.")
    if changed != [setting]:
        others = ", ".join(f"`{name}`" for name in changed if name != setting)
        return Feedback(
            False,
            f"you changed {others}{' as well as' if setting in changed else ''}"
            f"{f' `{setting}`' if setting in changed else ''}: change `{setting}` only, so that the difference "
            "between the two runs is its effect alone.",
        )
    for name, history in (("the baseline", base["history"]), ("your run", mine["history"])):
        if len(history) == 0:
            return Feedback(False, f"{name}'s history is empty: did it train?")
        if measure == "gap" and f"{TRAIN_EVAL_PREFIX}accuracy" not in history:
            return Feedback(False, f"{name}'s history has no `{TRAIN_EVAL_PREFIX}accuracy`: train it with score_train.")
    expected = measured(mine["history"], measure) - measured(base["history"], measure)
    what = MEASURES[measure]
    value = as_number(record["answer"])
    if value is None or not math.isfinite(value):
        return Feedback(
            False, f"`answer` should be a finite number: the change in {what}, your run minus the baseline."
        )
    if close(value, expected):
        before, after = measured(base["history"], measure), measured(mine["history"], measure)
        return Feedback(
            True,
            f"with `{setting}` = {mine['config'][setting]!r} instead of {base['config'][setting]!r}, {what} went from "
            f"{before:.3f} to {after:.3f} ({expected:+.3f}). One run per setting: another seed may differ.",
        )
    hints = [
        (-expected, "that is the baseline minus your run: subtract the other way (yours minus the baseline)"),
        (measured(mine["history"], measure), f"that is your run's {what}, not its change from the baseline"),
    ]
    if measure == "gap":
        logged = (mine["history"]["accuracy"] - mine["history"]["val_accuracy"]).iloc[-1] - (
            base["history"]["accuracy"] - base["history"]["val_accuracy"]
        ).iloc[-1]
        hints.append(
            (
                float(logged),
                "that uses the training accuracy Keras logs (the epoch's running mean, dropout on); score both "
                f"sides in inference mode: `{TRAIN_EVAL_PREFIX}accuracy`",
            )
        )
    column = "val_accuracy" if measure == "gap" else measure
    best = mine["history"][column].idxmax() if "accuracy" in column else mine["history"][column].idxmin()
    base_best = base["history"][column].idxmax() if "accuracy" in column else base["history"][column].idxmin()
    hints.append(
        (
            measured(mine["history"], measure, int(best)) - measured(base["history"], measure, int(base_best)),
            "that compares the runs' best epochs; the question reads the last epoch of each",
        )
    )
    for wrong, message in hints:
        if close(value, wrong) and not close(wrong, expected):
            return Feedback(False, f"{value:g}: {message}.")
    direction = "high" if value > expected else "low"
    return Feedback(
        False,
        f"{value:g} is too {direction} for the change in {what}: read both runs' last epoch "
        "(`history.iloc[-1]`) and subtract the baseline's from yours.",
    )
