"""The checkers of chapter 10, seven expressions on real faces: each computes its answer from real predictions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd

from fer_utils.book.exercises.feedback import Feedback, as_number, check_number, coding_exercise, run_student


@coding_exercise
def check_macro_f1_present(
    macro_f1_present: Callable[..., object], truth: Sequence[str], predicted: Sequence[str]
) -> Feedback:
    """`macro_f1_present(truth, predicted)`: macro F1 over the classes present in `truth` (chapter 10)."""
    from sklearn.metrics import f1_score

    answer = run_student(macro_f1_present, list(truth), list(predicted))
    labels = sorted(set(truth))
    expected = float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))
    every = sorted(set(truth) | set(predicted))
    over_all = float(f1_score(truth, predicted, labels=every, average="macro", zero_division=0))
    feedback = check_number(answer, expected, "the macro F1 over the classes in `truth`", rel_tol=0, abs_tol=1e-6)
    value = as_number(answer)
    if not feedback.ok and value is not None and over_all != expected and math.isclose(value, over_all, abs_tol=1e-6):
        return Feedback(
            False,
            f"{value:g} averages over every class predicted too ({len(every)} classes): average only over "
            f"the {len(labels)} classes present in `truth` (labels=...).",
        )
    return feedback


@coding_exercise
def check_majority_baseline(majority_baseline: Callable[..., object], predictions: pd.DataFrame) -> Feedback:
    """`majority_baseline(truth)` on the London faces and on every real frame of `predictions` (chapter 10)."""
    for name, truth in (
        ("the London faces", predictions.loc[predictions["set"] == "London faces", "emotion"]),
        ("all the real frames", predictions["emotion"]),
    ):
        expected = float(truth.value_counts(normalize=True).iloc[0])
        answer = run_student(majority_baseline, list(truth))
        feedback = check_number(answer, expected, f"the majority baseline of {name}", rel_tol=0, abs_tol=1e-6)
        if not feedback.ok:
            least = float(truth.value_counts(normalize=True).iloc[-1])
            if as_number(answer) is not None and math.isclose(float(answer), least, abs_tol=1e-6):  # type: ignore[arg-type]
                return Feedback(
                    False, f"{float(answer):g} is the share of the rarest value of {name}: take the commonest."
                )
            return feedback
    return Feedback(True, "Right: always answering the commonest expression is the score to beat.")
