"""The checkers of chapter 9, real faces: each computes the expected answer from the real data it is given."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from fer_utils.book.exercises.feedback import Feedback, as_number, check_number, coding_exercise, run_student


@coding_exercise
def check_confidence_interval(interval: Callable[..., object], values: Sequence[float]) -> Feedback:
    """`interval(values)` must be the 95 % t-interval of the mean of `values`, as (low, high); says which
    end is off and the likely cause."""
    from fer_utils.book.chapters import confidence_interval

    what = "the 95 % confidence interval (low, high)"
    answer = run_student(interval, values)
    try:
        low, high = (float(v) for v in answer)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return Feedback(False, f"{what} is a pair of numbers; `{interval.__name__}` returned {answer!r}.")
    expected_low, expected_high = confidence_interval(values)
    if math.isclose(low, expected_low, abs_tol=1e-4) and math.isclose(high, expected_high, abs_tol=1e-4):
        return Feedback(True, f"{what} is ({expected_low:.4f}, {expected_high:.4f}).")
    mean = float(pd.Series(values).mean())
    if not math.isclose((low + high) / 2, mean, abs_tol=1e-4):
        return Feedback(
            False,
            f"your interval is centred on {(low + high) / 2:.4f}, but it must be centred on the mean, {mean:.4f}.",
        )
    half, expected_half = (high - low) / 2, (expected_high - expected_low) / 2
    hint = (
        "too narrow: did you use the population std (ddof=0) or the normal quantile 1.96 instead of Student's t?"
        if half < expected_half
        else "too wide: divide the std by the square root of the number of seeds."
    )
    return Feedback(False, f"your half-width {half:.4f} should be {expected_half:.4f}; it is {hint}")


@coding_exercise
def check_restricted_accuracy(
    restricted_accuracy: Callable[..., object],
    probabilities: Sequence[Sequence[float]],
    classes: Sequence[str],
    truth: Sequence[str],
    allowed: Sequence[str],
) -> Feedback:
    """`restricted_accuracy(probabilities, classes, truth, allowed)`: the accuracy when the model may only
    choose among `allowed` classes (the higher of their probabilities)."""
    answer = run_student(restricted_accuracy, probabilities, classes, truth, allowed)
    scores = np.asarray(probabilities)[:, [list(classes).index(c) for c in allowed]]
    choice = np.asarray(allowed)[scores.argmax(1)]
    expected = float(np.mean(choice == np.asarray(truth)))
    unrestricted = float(np.mean(np.asarray(classes)[np.asarray(probabilities).argmax(1)] == np.asarray(truth)))
    feedback = check_number(answer, expected, f"the accuracy among {list(allowed)}", rel_tol=0, abs_tol=1e-6)
    if not feedback.ok and as_number(answer) is not None and math.isclose(float(answer), unrestricted, abs_tol=1e-6):  # type: ignore[arg-type]
        return Feedback(
            False,
            f"{float(answer):g} is the accuracy over all the classes (the {len(classes)}-way accuracy): keep only the "
            f"columns of {list(allowed)} before taking the arg-max.",
        )
    return feedback
