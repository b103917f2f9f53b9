"""Checker functions for the classroom exercises at the end of each chapter.

A checker takes the student's answer and the real data the question is about, computes the expected
answer itself (nothing is hard-coded), and returns a `Feedback` that the notebook displays at once.
An unanswered exercise (`None`) is not an error, so a student notebook always runs to the end.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
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
INT8_MAX_MEAN_CHANGE = 0.03  # mean |Δ probability| allowed between an int8 model and its Keras original


def _int8_model_problem(interpreter: object) -> str | None:
    """What keeps a TFLite model from being full-integer int8 with int8 input and output (None: nothing)."""
    import numpy as np

    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    inner = [d for d in interpreter.get_tensor_details() if d["index"] not in (inp["index"], out["index"])]
    kinds = {np.dtype(d["dtype"]).name for d in inner}
    if "int8" not in kinds:
        stored = "float16" if "float16" in kinds else "float32"
        return (f"your model's weights are {stored}: did you set converter.optimizations = [tf.lite.Optimize.DEFAULT] "
                "(and leave out target_spec.supported_types = [tf.float16])?")
    if "float32" in kinds:
        return ("no representative dataset: the weights are int8 but the activations are not int8 (they stay float32); "
                "set converter.representative_dataset to a function that yields training crops")
    for side, detail in (("input", inp), ("output", out)):
        kind = np.dtype(detail["dtype"]).name
        if kind != "int8":
            return (f"your model's {side} is {kind}: this exercise asks for signed int8 in and out "
                    f"(converter.inference_{side}_type = tf.int8)")
    return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the TFLite converter's log (Python prints, TensorFlow's logger, warnings and the C++ log on
    file descriptors 1 and 2) out of the exercise's output while the student's conversion runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    tf_logger, level = logging.getLogger("tensorflow"), logging.getLogger("tensorflow").level
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tf_logger.setLevel(logging.ERROR)
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        tf_logger.setLevel(level)


@coding_exercise
def check_int8_model(to_int8: Callable[..., object], model: object, representative: object, crops: object,
                     float32_bytes: int) -> Feedback:
    """`to_int8(model, representative)` must return a full-integer TFLite model (int8 weights and
    activations, int8 input and output) whose probabilities on the real `crops` stay close to Keras's."""
    import numpy as np

    from fer_utils.deploy import tflite_interpreter, tflite_predict

    with _quiet():
        blob = run_student(to_int8, model, representative)
    if not isinstance(blob, (bytes, bytearray)):
        return Feedback(False, f"`{to_int8.__name__}` returned a {type(blob).__name__}; return what converter.convert() gives (bytes).")
    interpreter = tflite_interpreter(bytes(blob))
    problem = _int8_model_problem(interpreter)
    if problem:
        return Feedback(False, problem)
    images = np.asarray(crops, np.float32)
    expected = np.asarray(model.predict(images, verbose=0))
    got = tflite_predict(interpreter, images)
    change = float(np.abs(got - expected).mean())
    agree = float(np.mean(got.argmax(1) == expected.argmax(1)))
    if change > INT8_MAX_MEAN_CHANGE:
        return Feedback(False, f"your int8 model's probabilities differ from the Keras model's by {change:.3f} on average "
                               f"(it agrees on the top class for {agree:.0%} of the {len(images)} crops): calibrate on crops in raw "
                               "pixels 0–255, as the model sees them (not divided by 255), one float32 batch of one at a time")
    return Feedback(True, f"a full-integer int8 model of {len(blob) / 1024:.0f} kB, {float32_bytes / len(blob):.1f}× smaller than "
                          f"the float32 one ({float32_bytes / 1024:.0f} kB); on {len(images)} real crops it picks the Keras model's "
                          f"class {agree:.0%} of the time, probabilities within {change:.3f} on average.")


def _occlusion_drops(model: object, image: object, class_index: int, patch: int, fill: float | None = None) -> object:
    """The drop of p(class_index) when each patch×patch square of `image` (H, W, 1) is covered with
    `fill` (default: the image's mean gray), as a (H // patch, W // patch) array: the expected answer."""
    import numpy as np

    image = np.asarray(image, np.float32).reshape(model.input_shape[1:])
    rows, cols = image.shape[0] // patch, image.shape[1] // patch
    value = float(image.mean()) if fill is None else fill
    covered = np.repeat(image[None], rows * cols, axis=0)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        covered[k, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = value
    probabilities = np.asarray(model.predict(np.concatenate([image[None], covered]), verbose=0))[:, class_index]
    return (probabilities[0] - probabilities[1:]).reshape(rows, cols)


@coding_exercise
def check_occlusion_map(occlusion_map: Callable[..., object], model: object, image: object, class_index: int,
                        patch: int = 8) -> Feedback:
    """`occlusion_map(model, image, class_index, patch)`: the drop of the class probability when each
    square is covered with the image's mean gray; compared with the drops computed here, and with Grad-CAM."""
    import numpy as np

    from fer_utils.explain import grad_cam

    answer = np.asarray(run_student(occlusion_map, model, image, class_index, patch), dtype=np.float64)
    expected = _occlusion_drops(model, image, class_index, patch)
    height, width = model.input_shape[1:3]
    if answer.shape != expected.shape:
        return Feedback(False, f"your map is {answer.shape}; with {patch}×{patch} squares on a {height}×{width} face it must be "
                              f"{expected.shape} (one value per square, rows first)")
    if np.allclose(answer, expected, atol=1e-4):
        r, c = np.unravel_index(expected.argmax(), expected.shape)
        cam = grad_cam(model, image, class_index)
        cam_r, cam_c = np.unravel_index(cam.argmax(), cam.shape)
        return Feedback(True, f"covering square (row {r}, column {c}) lowers the probability most, by {expected[r, c]:.3f}; "
                              f"Grad-CAM's peak lies in square (row {cam_r // patch}, column {cam_c // patch}).")
    if np.allclose(answer, -expected, atol=1e-4):
        return Feedback(False, "your map has the wrong sign: the drop is p(original) − p(covered), positive where the square mattered")
    if np.allclose(answer, _occlusion_drops(model, image, class_index, patch, fill=0.0), atol=1e-4):
        return Feedback(False, "you covered the squares with black (0): use the image's mean gray, so that the cover adds no dark blob of its own")
    r, c = np.unravel_index(np.abs(answer - expected).argmax(), expected.shape)
    return Feedback(False, f"square (row {r}, column {c}) should drop by {expected[r, c]:.4f}, yours says {answer[r, c]:.4f}: "
                          f"cover rows {r * patch}–{(r + 1) * patch - 1} and columns {c * patch}–{(c + 1) * patch - 1} only")


# Chapter 9: real faces.
@coding_exercise
def check_confidence_interval(interval: Callable[..., object], values: Sequence[float]) -> Feedback:
    """`interval(values)` must be the 95 % t-interval of the mean of `values`, as (low, high); says which
    end is off and the likely cause."""
    from fer_utils.chapters import confidence_interval

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
        return Feedback(False, f"your interval is centred on {(low + high) / 2:.4f}, but it must be centred on the mean, {mean:.4f}.")
    half, expected_half = (high - low) / 2, (expected_high - expected_low) / 2
    hint = ("too narrow: did you use the population std (ddof=0) or the normal quantile 1.96 instead of Student's t?"
            if half < expected_half else "too wide: divide the std by the square root of the number of seeds.")
    return Feedback(False, f"your half-width {half:.4f} should be {expected_half:.4f}; it is {hint}")


@coding_exercise
def check_restricted_accuracy(restricted_accuracy: Callable[..., object], probabilities: Sequence[Sequence[float]],
                              classes: Sequence[str], truth: Sequence[str], allowed: Sequence[str]) -> Feedback:
    """`restricted_accuracy(probabilities, classes, truth, allowed)`: the accuracy when the model may only
    choose among `allowed` classes (the higher of their probabilities)."""
    import numpy as np

    answer = run_student(restricted_accuracy, probabilities, classes, truth, allowed)
    scores = np.asarray(probabilities)[:, [list(classes).index(c) for c in allowed]]
    choice = np.asarray(allowed)[scores.argmax(1)]
    expected = float(np.mean(choice == np.asarray(truth)))
    unrestricted = float(np.mean(np.asarray(classes)[np.asarray(probabilities).argmax(1)] == np.asarray(truth)))
    feedback = check_number(answer, expected, f"the accuracy among {list(allowed)}", rel_tol=0, abs_tol=1e-6)
    if not feedback.ok and answer is not None and math.isclose(float(answer), unrestricted, abs_tol=1e-6):  # type: ignore[arg-type]
        return Feedback(False, f"{float(answer):g} is the accuracy over all the classes (the 8-way accuracy for the book's models): keep only the columns of {list(allowed)} "
                               "before taking the arg-max.")
    return feedback
