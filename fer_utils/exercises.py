"""Checker functions for the classroom exercises at the end of each chapter.

A checker takes the student's answer and the real data the question is about, computes the expected
answer itself (nothing is hard-coded), and returns a `Feedback` that the notebook displays at once.
An unanswered exercise (`None`) is not an error, so a student notebook always runs to the end.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: `ok` and a message saying why (shown as the cell's output)."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return ("✅ " if self.ok else "❌ ") + self.message

    def _repr_markdown_(self) -> str:
        return ("✅ **Correct.** " if self.ok else "❌ **Not yet.** ") + self.message


class Unanswered(Exception):
    """The student's function is still the stub (it raised NotImplementedError or returned `...`)."""


def run_student(function: Callable[..., object], *args: object, **kwargs: object) -> object:
    """Call the student's code; a stub becomes `Unanswered` (not an error: the notebook goes on)."""
    try:
        result = function(*args, **kwargs)
    except NotImplementedError as exc:
        raise Unanswered from exc
    if result is Ellipsis:
        raise Unanswered
    return result


def coding_exercise(check: Callable[..., Feedback]) -> Callable[..., Feedback]:
    """Make a checker of student code safe to run in any notebook: an unanswered stub and code that
    crashes both become feedback that says so, never an exception that stops the run."""

    @functools.wraps(check)
    def checked(answer: object, *args: object, **kwargs: object) -> Feedback:
        name = getattr(answer, "__name__", "your code")
        if answer is None:
            return Feedback(False, "Not answered yet: complete the function above and run this cell again.")
        try:
            return check(answer, *args, **kwargs)
        except Unanswered:
            return Feedback(False, f"Not answered yet: complete `{name}` (replace `raise NotImplementedError`) "
                                   "and run this cell again.")
        except Exception as exc:  # the student's code failed: name the error, keep the notebook running
            return Feedback(False, f"`{name}` raised {type(exc).__name__}: {exc}")

    return checked


def check_number(answer: object, expected: float, what: str, rel_tol: float = 1e-3, abs_tol: float = 0.0) -> Feedback:
    """Compare a numeric answer with the expected value within a tolerance; explain the difference."""
    if answer is None:
        return Feedback(False, f"Not answered yet: replace `None` with {what}.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return Feedback(False, f"{what} is a number; got {answer!r}.")
    if math.isclose(value, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return Feedback(True, f"{what} is {expected:g}.")
    direction = "too high" if value > expected else "too low"
    return Feedback(False, f"{value:g} is {direction} for {what}. Look again at how it is computed.")


def check_choice(answer: object, expected: str, what: str, options: Sequence[str] = ()) -> Feedback:
    """Compare a textual answer (case-insensitive) with the expected one among `options`."""
    if answer is None:
        return Feedback(False, f"Not answered yet: replace `None` with {what}.")
    given = str(answer).strip().lower()
    if options and given not in {o.lower() for o in options}:
        return Feedback(False, f"{answer!r} is not one of {list(options)}.")
    if given == expected.lower():
        return Feedback(True, f"{what} is {expected!r}.")
    return Feedback(False, f"{answer!r} is not {what}.")


# Chapter 1: the datasets.
def check_clip_count(answer: object, clips: pd.DataFrame, emotion: str) -> Feedback:
    """How many clips of `emotion` the clip index holds."""
    return check_number(answer, int((clips["emotion"] == emotion).sum()), f"the number of {emotion} clips", 0)


def check_emotion_from_name(answer: object, file_name: str) -> Feedback:
    """The emotion a RAVDESS file name encodes (its third field, through the RAVDESS codebook)."""
    from fer_utils.data import EMOTIONS, RAVDESS_EMOTIONS

    code = Path(file_name).stem.split("-")[2]
    return check_choice(answer, RAVDESS_EMOTIONS[code], f"the emotion of {file_name}", EMOTIONS)


# Chapter 2: preprocessing.
def check_detection_rate(answer: object, manifest: pd.DataFrame) -> Feedback:
    """The fraction of sampled frames in which a face was found (status `ok`)."""
    return check_number(answer, float((manifest["status"] == "ok").mean()), "the detection rate", 1e-2, 1e-3)


def check_crop_count(answer: object, manifest: pd.DataFrame, emotion: str) -> Feedback:
    """How many usable crops (status `ok`) of `emotion` the manifest holds."""
    ok = manifest[(manifest["status"] == "ok") & (manifest["emotion"] == emotion)]
    return check_number(answer, len(ok), f"the number of usable {emotion} crops", 0)


# Chapter 3: the architecture.
def check_conv_params(answer: object, kernel: int, in_channels: int, filters: int) -> Feedback:
    """Parameters of a Conv2D layer: (kernel × kernel × in_channels + 1 bias) × filters."""
    expected = (kernel * kernel * in_channels + 1) * filters
    return check_number(answer, expected, f"the parameters of a {kernel}×{kernel} conv, {in_channels} → {filters} channels", 0)


def check_dense_params(answer: object, inputs: int, units: int) -> Feedback:
    """Parameters of a Dense layer: (inputs + 1 bias) × units."""
    return check_number(answer, (inputs + 1) * units, f"the parameters of a Dense({units}) on {inputs} inputs", 0)


# Chapter 4: training and metrics.
def check_accuracy_from_confusion(answer: object, confusion: pd.DataFrame) -> Feedback:
    """Accuracy from a confusion matrix of counts: the diagonal over the total."""
    values = confusion.to_numpy()
    return check_number(answer, float(values.trace() / values.sum()), "the accuracy", 1e-3, 1e-3)


def check_majority_vote(answer: object, votes: Sequence[str]) -> Feedback:
    """The clip-level label of a list of frame predictions: the most frequent one (first on ties)."""
    expected = pd.Series(list(votes)).value_counts(sort=True).index[0]
    return check_choice(answer, str(expected), "the clip's majority vote")


# Chapter 5: overfitting.
def check_generalization_gap(answer: object, history: pd.DataFrame) -> Feedback:
    """Train minus validation accuracy at the last epoch of a run's history."""
    last = history.iloc[-1]
    return check_number(answer, float(last["accuracy"] - last["val_accuracy"]), "the final train−validation accuracy gap", 1e-2, 1e-3)


def check_best_epoch(answer: object, history: pd.DataFrame) -> Feedback:
    """The epoch (0-based, as in the history table) with the lowest validation loss."""
    return check_number(answer, int(history["val_loss"].idxmin()), "the epoch with the lowest validation loss", 0)


# Chapter 6: evaluation protocols.
def check_shared_clips(answer: object, train: pd.DataFrame, test: pd.DataFrame) -> Feedback:
    """How many clips have frames on both sides of a split."""
    shared = set(train["clip_id"]) & set(test["clip_id"])
    return check_number(answer, len(shared), "the number of clips on both sides", 0)


def check_shared_subjects(answer: object, train: pd.DataFrame, test: pd.DataFrame) -> Feedback:
    """How many subjects (actors) appear on both sides of a split."""
    shared = set(train["subject"]) & set(test["subject"])
    return check_number(answer, len(shared), "the number of actors on both sides", 0)


# Chapter 7: comparison.
def check_param_ratio(answer: object, big: int, small: int) -> Feedback:
    """How many times more parameters `big` has than `small`."""
    return check_number(answer, big / small, "the parameter ratio", 2e-2)


def check_smallest(answer: object, table: pd.DataFrame, column: str = "params", name: str = "model") -> Feedback:
    """The row name with the smallest value of `column` in a comparison table."""
    expected = str(table.loc[table[column].idxmin(), name])
    return check_choice(answer, expected, f"the model with the fewest {column}", list(table[name].astype(str)))


# Chapter 8: deployment.
def check_compression(answer: object, original_bytes: int, compressed_bytes: int) -> Feedback:
    """The compression factor original / compressed of a quantized model."""
    return check_number(answer, original_bytes / compressed_bytes, "the compression factor", 2e-2)


def check_top_emotion(answer: object, probabilities: Sequence[float], classes: Sequence[str]) -> Feedback:
    """The class with the highest predicted probability."""
    best = max(range(len(classes)), key=lambda i: probabilities[i])
    return check_choice(answer, classes[best], "the predicted emotion", list(classes))


# Chapter 9: real faces.
def check_confidence_interval(answer: object, values: Sequence[float]) -> Feedback:
    """The 95 % t-interval of the mean of `values`, as (low, high); says which end is off and the likely cause."""
    from fer_utils.chapters import confidence_interval

    what = "the 95 % confidence interval (low, high)"
    if answer is None:
        return Feedback(False, f"Not answered yet: replace `None` with {what}.")
    try:
        low, high = (float(v) for v in answer)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return Feedback(False, f"{what} is a pair of numbers; got {answer!r}.")
    expected_low, expected_high = confidence_interval(values)
    if math.isclose(low, expected_low, abs_tol=1e-4) and math.isclose(high, expected_high, abs_tol=1e-4):
        return Feedback(True, f"{what} is ({expected_low:.4f}, {expected_high:.4f}).")
    mean = float(pd.Series(values).mean())
    if not math.isclose((low + high) / 2, mean, abs_tol=1e-4):
        return Feedback(False, f"your interval is centred on {(low + high) / 2:.4f}, but it must be centred on the mean, {mean:.4f}.")
    half, expected_half = (high - low) / 2, (expected_high - expected_low) / 2
    hint = ("too narrow: did you use the population std (ddof=0) or the normal quantile 1.96 instead of Student's t?"
            if half < expected_half else "too wide: divide the std by the square root of the number of seeds.")
    return Feedback(False, f"your half-width {half:.4f} should be {expected_half:.4f}; it is {hint}")


def check_restricted_accuracy(answer: object, probabilities: Sequence[Sequence[float]], classes: Sequence[str],
                              truth: Sequence[str], allowed: Sequence[str]) -> Feedback:
    """Accuracy when the model may only choose among `allowed` classes (the higher of their probabilities)."""
    import numpy as np

    scores = np.asarray(probabilities)[:, [list(classes).index(c) for c in allowed]]
    choice = np.asarray(allowed)[scores.argmax(1)]
    expected = float(np.mean(choice == np.asarray(truth)))
    unrestricted = float(np.mean(np.asarray(classes)[np.asarray(probabilities).argmax(1)] == np.asarray(truth)))
    feedback = check_number(answer, expected, f"the accuracy among {list(allowed)}", rel_tol=0, abs_tol=1e-6)
    if not feedback.ok and answer is not None and math.isclose(float(answer), unrestricted, abs_tol=1e-6):  # type: ignore[arg-type]
        return Feedback(False, f"{float(answer):g} is the accuracy over all the classes (the 8-way accuracy for the book's models): keep only the columns of {list(allowed)} "
                               "before taking the arg-max.")
    return feedback
