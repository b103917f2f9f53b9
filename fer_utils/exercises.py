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

import numpy as np
import pandas as pd

# How a verdict reads as text (the cell's text/plain output): the mark, then the message. `fer_book grade`
# reads a graded notebook's verdicts back from it (`Feedback.from_text`).
PASS_MARK = "✅ "
FAIL_MARK = "❌ "
# The message of every checker's verdict on an answer that is still the stub (None, NotImplementedError, `...`).
UNANSWERED = "Not answered yet"


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: `ok` and a message saying why (shown as the cell's output)."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return (PASS_MARK if self.ok else FAIL_MARK) + self.message

    @property
    def unanswered(self) -> bool:
        """Whether the answer was still the stub (not a wrong answer)."""
        return not self.ok and self.message.startswith(UNANSWERED)

    @classmethod
    def from_text(cls, text: str) -> Feedback | None:
        """The verdict a cell displayed as text (its `repr`), or None when `text` is not one."""
        for mark, ok in ((PASS_MARK, True), (FAIL_MARK, False)):
            if text.startswith(mark):
                return cls(ok, text.removeprefix(mark))
        return None

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
            return Feedback(False, f"{UNANSWERED}: complete the function above and run this cell again.")
        try:
            return check(answer, *args, **kwargs)
        except Unanswered:
            return Feedback(
                False,
                f"{UNANSWERED}: complete `{name}` (replace `raise NotImplementedError`) and run this cell again.",
            )
        except Exception as exc:  # the student's code failed: name the error, keep the notebook running
            return Feedback(False, f"`{name}` raised {type(exc).__name__}: {exc}")

    return checked


def check_number(answer: object, expected: float, what: str, rel_tol: float = 1e-3, abs_tol: float = 0.0) -> Feedback:
    """Compare a numeric answer with the expected value within a tolerance; explain the difference."""
    if answer is None:
        return Feedback(False, f"{UNANSWERED}: replace `None` with {what}.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return Feedback(False, f"{what} is a number; got {answer!r}.")
    if math.isclose(value, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return Feedback(True, f"{what} is {expected:g}.")
    direction = "too high" if value > expected else "too low"
    return Feedback(False, f"{value:g} is {direction} for {what}. Look again at how it is computed.")


# Chapter 1: the datasets.
RAVDESS_FIELDS: dict[str, int] = {"emotion": 2, "intensity": 3, "statement": 4, "repetition": 5, "actor": 6}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh")


@coding_exercise
def check_ravdess_parser(parse: Callable[[str], dict], clips: pd.DataFrame | None = None) -> Feedback:
    """`parse(file_name)` returns a RAVDESS name's fields as the book's indexer reads them: `emotion` (a name
    of the codebook), `intensity`, `statement`, `repetition` and `actor` (integers). Checked on the real
    RAVDESS clip shipped with the package and on one clip per emotion of the chapter's index `clips`."""
    from fer_utils.assets import ravdess_clip_path
    from fer_utils.data import index_ravdess

    table = index_ravdess(ravdess_clip_path().parent, modalities=("01", "02")).clips
    if clips is not None and set(RAVDESS_FIELDS) <= set(clips.columns):
        table = pd.concat([table, clips.groupby("emotion", sort=False).head(1)], ignore_index=True)
    for row in table.itertuples(index=False):
        name = Path(row.path).name
        got = run_student(parse, name)
        if not isinstance(got, dict):
            return Feedback(False, f"`{parse.__name__}({name!r})` returned {got!r}: return a dict of the fields.")
        for field, position in RAVDESS_FIELDS.items():
            value, code = getattr(row, field), name.split(".")[0].split("-")[position]
            expected = value.item() if isinstance(value, np.generic) else value
            where = f"the {ORDINALS[position]} field, {code!r}"
            if field not in got:
                return Feedback(False, f"for {name} your dict has no `{field}` ({where}).")
            if got[field] != expected:
                hint = "look the code up in RAVDESS_EMOTIONS" if field == "emotion" else f"an integer: int({code!r})"
                return Feedback(
                    False, f"for {name} your `{field}` is {got[field]!r}, but {where} means {expected!r} ({hint})."
                )
    example = Path(table["path"].iloc[0]).name
    return Feedback(True, f"your parser reads all {len(table)} names, e.g. {example} → {parse(example)}.")


def check_clip_count(answer: object, clips: pd.DataFrame, emotion: str) -> Feedback:
    """How many clips of `emotion` the clip index holds."""
    return check_number(answer, int((clips["emotion"] == emotion).sum()), f"the number of {emotion} clips", 0)


# Chapter 2: preprocessing.
def _spacing_problem(indices: object, n_frames: int, k: int) -> str | None:
    """What is wrong with `indices` as k evenly spaced frames from the first to the last of n_frames
    (all of them when k ≥ n_frames); None when nothing is."""
    what = f"for a clip of {n_frames} frames and k={k}, your frames {indices!r}"
    if not isinstance(indices, (list, tuple)) or not all(isinstance(i, (int, np.integer)) for i in indices):
        return f"{what} are not a list of integer frame indices."
    indices = [int(i) for i in indices]
    wanted = min(k, n_frames)
    if len(indices) != wanted:
        return f"{what}: asked for {wanted} frames, you gave {len(indices)}."
    if len(set(indices)) != len(indices):
        return f"{what} repeat a frame."
    if indices != sorted(indices):
        return f"{what} are not in order."
    if indices[0] != 0 or indices[-1] != n_frames - 1:
        return f"{what} must start at the first frame (0) and end at the last ({n_frames - 1})."
    gaps = np.diff(indices)
    if len(gaps) and gaps.max() - gaps.min() > 1:
        at = int(np.argmax(np.abs(gaps - (n_frames - 1) / (k - 1))))
        step = (n_frames - 1) / (k - 1)
        return (
            f"{what}: frames {indices[at]} and {indices[at + 1]} are not evenly spaced (a gap of "
            f"{gaps[at]} where every gap should be {math.floor(step)} or {math.ceil(step)})."
        )
    return None


@coding_exercise
def check_sample_indices(sample: Callable[[int, int], list[int]], clip_paths: Sequence[Path] = ()) -> Feedback:
    """`sample(n_frames, k)`: k evenly spaced frame indices from the first frame to the last (gaps that
    differ by at most one frame), all frames when k ≥ n_frames. Checked on the frame counts of the real
    RAVDESS clip shipped with the package and of `clip_paths`, and on short clips."""
    from fer_utils.assets import ravdess_clip_path
    from fer_utils.video import frame_count

    real = frame_count(ravdess_clip_path())
    counts = [real, *(frame_count(Path(p)) for p in clip_paths)]
    cases = [(n, k) for n in counts for k in (6, 2, 10)] + [(5, 5), (4, 6)]
    for n_frames, k in cases:
        problem = _spacing_problem(run_student(sample, n_frames, k), n_frames, k)
        if problem:
            return Feedback(False, problem)
    return Feedback(
        True,
        f"on the real RAVDESS clip ({real} frames) you sample {sample(real, 6)} for k=6, "
        "first and last frames included; short clips give all their frames.",
    )


# Mean gray-level difference per pixel allowed between two crops of the same square: resizing with another
# interpolation (linear, cubic, area) changes a 48×48 crop of a real still by up to about 4; a wrong
# margin or padding instead of shifting changes it by more than 50.
CROP_TOLERANCE = 8.0


def _inside_square(image: np.ndarray, box: object, size: int, margin: float) -> np.ndarray:
    """The reference answer of `check_crop_inside`: `square_region` shifted inside the image, gray, resized."""
    import cv2

    from fer_utils.crops import square_region
    from fer_utils.faces import to_gray

    gray = to_gray(image)
    height, width = gray.shape
    x0, y0, x1, _ = square_region(box, margin)
    side = x1 - x0
    x0, y0 = min(max(x0, 0), width - side), min(max(y0, 0), height - side)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(gray[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=interpolation)


@coding_exercise
def check_crop_inside(
    crop: Callable[..., np.ndarray], detector: object, size: int = 48, margin: float = 0.25
) -> Feedback:
    """`crop(image, box, size=..., margin=...)`: the size×size gray square of `crop_face`, but shifted to
    stay inside the image instead of repeating its edge pixels. Checked on a real RAVDESS still with the
    box `detector` finds, and on the same still cut so that the face touches the top-left corner."""
    from fer_utils.assets import still_paths
    from fer_utils.crops import crop_face
    from fer_utils.faces import Box
    from fer_utils.video import read_image

    still = read_image(still_paths()[0])
    box = detector.detect(still)[0]  # type: ignore[attr-defined]
    corner = still[box.y - 2 :, box.x - 3 :]
    cases = [
        ("the still", still, box),
        ("the still cut at the face's top-left corner", corner, Box(3, 2, box.w, box.h)),
    ]
    for what, image, face in cases:
        got = np.asarray(run_student(crop, image, face, size=size, margin=margin))
        if got.ndim == 3:
            return Feedback(False, f"on {what} your crop has {got.shape[2]} channels: convert it to gray.")
        if got.shape != (size, size):
            return Feedback(False, f"on {what} your crop is {got.shape[0]}×{got.shape[1]}, not {size}×{size}.")
        expected = _inside_square(image, face, size, margin)
        error = float(np.abs(got.astype(float) - expected).mean())
        if error > CROP_TOLERANCE:
            padded = float(np.abs(got.astype(float) - crop_face(image, face, size=size, margin=margin)).mean())
            hint = (
                "it repeats the edge pixels where the square leaves the image (that is `crop_face`): "
                "shift the square inside instead"
                if padded <= CROP_TOLERANCE
                else "check the square's side (longest box side × (1 + 2·margin)) and its shift into the image"
            )
            return Feedback(
                False,
                f"on {what} your crop differs from the expected one by {error:.1f} gray "
                f"levels per pixel on average: {hint}.",
            )
    return Feedback(True, "your square stays inside the image, on the whole still and on a face in its corner.")


# Chapter 3: the architecture.
def check_conv_params(answer: object, kernel: int, in_channels: int, filters: int) -> Feedback:
    """Parameters of a Conv2D layer: (kernel × kernel × in_channels + 1 bias) × filters."""
    expected = (kernel * kernel * in_channels + 1) * filters
    return check_number(
        answer, expected, f"the parameters of a {kernel}×{kernel} conv, {in_channels} → {filters} channels", 0
    )


def check_dense_params(answer: object, inputs: int, units: int) -> Feedback:
    """Parameters of a Dense layer: (inputs + 1 bias) × units."""
    return check_number(answer, (inputs + 1) * units, f"the parameters of a Dense({units}) on {inputs} inputs", 0)


def _layer_hint(got: object, expected: object, stage: str) -> str:
    """Why a student's layer differs from the paper's one at the same position (shape or parameters)."""
    got_shape, expected_shape = tuple(got.output.shape[1:]), tuple(expected.output.shape[1:])  # type: ignore[attr-defined]
    kind = type(expected).__name__
    if got_shape != expected_shape:
        if kind == "Conv2D" and got_shape[:2] != expected_shape[:2]:
            cause = f"check the padding of {stage} ('same' keeps the map's size)"
        elif kind == "Conv2D" or kind == "Dense":
            cause = f"check the number of {'filters' if kind == 'Conv2D' else 'units'} of {stage}"
        else:
            cause = f"check the pool size of {stage}"
        return f"{stage} outputs {got_shape} where the paper's outputs {expected_shape}: {cause}"
    return (
        f"{stage} has {got.count_params():,} parameters where the paper's has "  # type: ignore[attr-defined]
        f"{expected.count_params():,}: check its kernel size (3×3)"
    )


@coding_exercise
def check_sequential_cnn(build: Callable[..., object]) -> Feedback:
    """`build(num_classes, input_shape)` returns the paper's CNN as a `keras.Sequential`: the same layers
    as `build_paper_cnn`, in the same order, with the same output shapes, parameters and activations.
    Checked at the paper's 180×180×1 with 8 classes, and at 48×48×1 with 7 classes."""
    import keras

    from fer_utils.models import build_paper_cnn

    for num_classes, shape in ((8, (180, 180, 1)), (7, (48, 48, 1))):
        model = run_student(build, num_classes, shape)
        if not isinstance(model, keras.Sequential):
            return Feedback(False, f"`{build.__name__}` returned a {type(model).__name__}, not a keras.Sequential.")
        if not model.inputs:
            return Feedback(
                False, "your model has no input shape yet: start the list with keras.Input(shape=input_shape)."
            )
        paper = build_paper_cnn(num_classes, shape)
        got_types = [type(layer).__name__ for layer in model.layers]
        expected_types = [
            type(layer).__name__ for layer in paper.layers if not isinstance(layer, keras.layers.InputLayer)
        ]
        total, expected_total = model.count_params(), paper.count_params()
        head = (
            f"at {shape[0]}×{shape[1]} with {num_classes} classes your network has {total:,} parameters, "
            f"the paper's has {expected_total:,}"
        )
        if got_types != expected_types:
            at = next(
                (i for i, (g, e) in enumerate(zip(got_types, expected_types)) if g != e),
                min(len(got_types), len(expected_types)),
            )
            found = got_types[at] if at < len(got_types) else "nothing"
            needed = expected_types[at] if at < len(expected_types) else "nothing"
            return Feedback(
                False,
                f"{head}. Its layer {at + 1} is {found} where the paper's is {needed} "
                f"(the paper's layers: {', '.join(expected_types)}).",
            )
        layers = [layer for layer in paper.layers if not isinstance(layer, keras.layers.InputLayer)]
        for got, expected in zip(model.layers, layers):
            different = (
                tuple(got.output.shape[1:]) != tuple(expected.output.shape[1:])
                or got.count_params() != expected.count_params()
            )
            if different:
                return Feedback(False, f"{head}: {_layer_hint(got, expected, expected.name)}.")
            activation = getattr(expected, "activation", None)
            if activation is not None and got.activation.__name__ != activation.__name__:
                return Feedback(
                    False, f"{expected.name} uses {got.activation.__name__}, the paper's {activation.__name__}."
                )
        rescale = model.layers[0]
        if not math.isclose(float(rescale.scale), 1 / 255):
            return Feedback(
                False, f"the Rescaling layer multiplies by {rescale.scale}: the pixels are 0–255, use 1/255."
            )
    return Feedback(
        True,
        f"your Sequential network has the paper's layers, shapes and {paper.count_params():,} "
        f"parameters at 48×48 (7 classes), and {build_paper_cnn().count_params():,} at 180×180 (8 classes).",
    )


# Chapter 4: training and metrics.
def check_accuracy_from_confusion(answer: object, confusion: pd.DataFrame) -> Feedback:
    """Accuracy from a confusion matrix of counts: the diagonal over the total."""
    values = confusion.to_numpy()
    return check_number(answer, float(values.trace() / values.sum()), "the accuracy", 1e-3, 1e-3)


def _majority_by_clip(frames: pd.DataFrame, predicted: Sequence[str]) -> dict[str, str]:
    """The reference answer of `check_majority_vote`: per clip, the most frequent frame prediction; a tie
    goes to the tied label predicted on the clip's latest frame (the fullest expression)."""
    table = frames[["clip_id", "frame_index"]].reset_index(drop=True).assign(predicted=list(predicted))
    table["clip_id"] = table["clip_id"].astype(str)
    counts = table.groupby(["clip_id", "predicted"])["frame_index"].transform("size")
    tied = table[counts == counts.groupby(table["clip_id"]).transform("max")]
    latest = tied.sort_values(["clip_id", "frame_index"], kind="stable").groupby("clip_id")["predicted"].last()
    return {clip: str(label) for clip, label in latest.items()}


def _clip_predictions(frames: pd.DataFrame, predicted: Sequence[str], clip: str) -> pd.DataFrame:
    """The frame index and prediction of each test frame of one clip, in frame order."""
    table = frames.reset_index(drop=True).assign(predicted=list(predicted))
    return table.loc[table["clip_id"].astype(str) == clip, ["frame_index", "predicted"]].sort_values("frame_index")


def _describe_clip(rows: pd.DataFrame) -> str:
    """`frame 3: happy, frame 8: calm` for the rows of `_clip_predictions`."""
    return ", ".join(f"frame {f}: {p}" for f, p in zip(rows["frame_index"], rows["predicted"]))


@coding_exercise
def check_majority_vote(
    vote: Callable[..., object], frames: pd.DataFrame, probabilities: np.ndarray, classes: Sequence[str]
) -> Feedback:
    """`vote(frames, predicted)` returns {clip_id: label}: each clip's most frequent frame prediction, a
    tie going to the tied label of its latest frame. Checked on the chapter's test frames and the frame
    predictions `predicted_labels(probabilities, classes)` of its run; names a clip where the majority
    and the mean vote (`clip_vote`) differ."""
    from fer_utils.evaluation import clip_vote, predicted_labels

    predicted = list(predicted_labels(probabilities, classes))
    answer = run_student(vote, frames.copy(), list(predicted))
    got = {str(k): str(v) for k, v in dict(answer).items()}  # type: ignore[call-overload]
    expected = _majority_by_clip(frames, predicted)
    means = clip_vote(frames, probabilities, classes, "mean")
    mean = dict(zip(means["clip_id"].astype(str), means["predicted"]))
    missing = sorted(set(expected) - set(got))
    if missing or len(got) != len(expected):
        return Feedback(
            False,
            f"your votes cover {len(got)} clips, the test frames come from {len(expected)}"
            + (f" (clip {missing[0]} is missing)." if missing else "."),
        )
    for clip, label in expected.items():
        if got[clip] == label:
            continue
        rows = _clip_predictions(frames, predicted, clip)
        counts = rows["predicted"].value_counts()
        if (counts == counts.max()).sum() > 1:
            why = f"a tie between {', '.join(sorted(counts[counts == counts.max()].index))}: the latest tied frame says {label}"
        else:
            why = f"the majority is {label}"
        if got[clip] == mean[clip] and mean[clip] != label:
            why += f" ({got[clip]} is the mean vote of the probabilities: count the frame predictions instead)"
        return Feedback(False, f"clip {clip} ({_describe_clip(rows)}): you say {got[clip]}, but {why}.")
    differ = [c for c in expected if expected[c] != mean[c]]
    example = (
        f", e.g. clip {differ[0]} ({_describe_clip(_clip_predictions(frames, predicted, differ[0]))}): majority "
        f"{expected[differ[0]]}, mean {mean[differ[0]]}"
        if differ
        else ""
    )
    return Feedback(
        True,
        f"your votes match on all {len(expected)} clips; on {len(differ)} of them the majority "
        f"and the mean vote disagree{example}.",
    )


# Chapter 5: overfitting.
def check_generalization_gap(answer: object, history: pd.DataFrame) -> Feedback:
    """Train minus validation accuracy at the last epoch of a run's history."""
    last = history.iloc[-1]
    return check_number(
        answer, float(last["accuracy"] - last["val_accuracy"]), "the final train−validation accuracy gap", 1e-2, 1e-3
    )


@coding_exercise
def check_l1_on_fc(
    build: Callable[[float], object], images: np.ndarray, classes: int, factors: Sequence[float] = (0.01, 0.001)
) -> Feedback:
    """`build(l1)` must return a two-stage CNN (two Conv2D) whose Dense layer `fc`, and only it, has an L1
    penalty of `l1` on its kernel; checked for each of `factors` on a real batch of crops `images`."""
    import keras

    for factor in factors:
        model = run_student(build, factor)
        if not isinstance(model, keras.Model):
            return Feedback(
                False, f"`{build.__name__}({factor:g})` returned a {type(model).__name__}, not a Keras model."
            )
        convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        if len(convs) != 2:
            return Feedback(
                False,
                f"your model has {len(convs)} convolution(s) ({', '.join(convs) or 'none'}); "
                "the exercise asks for two stages (16 then 64 filters).",
            )
        names = [layer.name for layer in model.layers]
        if "fc" not in names:
            return Feedback(
                False,
                f"your model has no layer named `fc` (its layers: {', '.join(names)}): "
                'pass name="fc" to the Dense(16) layer.',
            )
        feedback = _l1_penalty_feedback(model, factor)
        if feedback is not None:
            return feedback
        probabilities = keras.ops.convert_to_numpy(model(images, training=False))
        if probabilities.shape != (len(images), classes):
            return Feedback(
                False,
                f"on a batch of {len(images)} crops your model outputs shape {probabilities.shape}, "
                f"expected ({len(images)}, {classes}): one probability per class.",
            )
    fc = model.get_layer("fc")
    return Feedback(
        True,
        f"fc, and only fc, carries L1(l1) on its kernel, and the model reads the {len(images)} real crops "
        f"into {classes} probabilities: with l1 = {factors[-1]:g} the penalty adds {_penalty(model):.4g} "
        f"(= {factors[-1]:g} × Σ|W| over fc's {int(np.prod(fc.kernel.shape)):,} weights) to the loss of "
        f"every batch, beside an untrained model's cross-entropy of about ln {classes} = {math.log(classes):.3g}.",
    )


def _penalty(model: object) -> float:
    """The regularization loss a Keras model adds to its training loss (sum of `model.losses`)."""
    import keras

    return float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses))


def _l1_penalty_feedback(model: object, factor: float) -> Feedback | None:
    """What is wrong with the L1 penalty on `fc` (None when it is L1(`factor`) on fc's kernel only)."""
    fc = model.get_layer("fc")
    regularizer = getattr(fc, "kernel_regularizer", None)
    if regularizer is None:
        elsewhere = [layer.name for layer in model.layers if getattr(layer, "kernel_regularizer", None) is not None]
        where = f" (yours is on {', '.join(elsewhere)})" if elsewhere else ""
        return Feedback(
            False, f"fc has no kernel_regularizer{where}: pass kernel_regularizer=keras.regularizers.L1(l1) to fc."
        )
    config = regularizer.get_config()
    l1, l2 = float(config.get("l1", 0.0)), float(config.get("l2", 0.0))
    if l1 == 0 and l2 > 0:
        return Feedback(
            False, "fc's penalty is L2 (squared weights), not L1 (absolute values): use keras.regularizers.L1."
        )
    if not math.isclose(l1, factor, rel_tol=1e-6):
        return Feedback(
            False, f"L1 factor {factor:g} expected, got {l1:g}: use the function's argument `l1`, not a constant."
        )
    penalty, expected = _penalty(model), factor * float(np.abs(_as_numpy(fc.kernel)).sum())
    if not math.isclose(penalty, expected, rel_tol=1e-4, abs_tol=1e-9):
        return Feedback(
            False,
            f"your model adds a penalty of {penalty:.4g} to the loss, but {factor:g} × Σ|W| of fc's kernel "
            f"is {expected:.4g}: is another layer (or fc's bias, or an L2 term) penalised too?",
        )
    return None


def _as_numpy(tensor: object) -> np.ndarray:
    """A Keras variable or tensor as a NumPy array."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor))


# Chapter 6: evaluation protocols.
def check_sibling_share(answer: object, train: pd.DataFrame, test: pd.DataFrame) -> Feedback:
    """The fraction of test frames that have a sibling in training (another frame of their clip there)."""
    expected = float(test["clip_id"].isin(set(train["clip_id"])).mean())
    feedback = check_number(answer, expected, "the share of test frames with a sibling in training", 1e-3, 1e-3)
    shared = len(set(train["clip_id"]) & set(test["clip_id"]))
    if not feedback.ok and isinstance(answer, (int, float, np.number)) and float(answer) == shared != expected:
        return Feedback(
            False,
            f"{shared} is the number of clips on both sides; the question asks for the fraction of "
            "test frames whose clip also has frames in training.",
        )
    return feedback


def _two_sides(result: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of a student's split: a `splits.Split` or a (train, test) pair of tables."""
    if hasattr(result, "train") and hasattr(result, "test"):
        return result.train, result.test
    train, test = result  # type: ignore[misc]
    return train, test


@coding_exercise
def check_subject_split(
    split: Callable[..., object], frames: pd.DataFrame, n_test: int = 2, seeds: Sequence[int] = (0, 1, 2, 3, 4)
) -> Feedback:
    """`split(frames, n_test, seed)` must hold out exactly `n_test` actors, drawn from `seed`, with all their
    frames and nothing else on the test side, and pass `splits.check_leakage`; checked on `frames`."""
    from fer_utils.splits import Split, check_leakage

    held = {}
    for seed in seeds:
        train, test = _two_sides(run_student(split, frames, n_test, seed))
        both = train.index.intersection(test.index)
        if len(both):
            return Feedback(
                False,
                f"frame {frames.loc[both[0], 'image'] if 'image' in frames else both[0]} "
                f"(row {both[0]}) is on both sides: every frame goes to exactly one side.",
            )
        lost = frames.index.difference(train.index.union(test.index))
        if len(lost):
            return Feedback(
                False,
                f"{len(lost)} of {len(frames)} frames are on neither side (e.g. one of clip "
                f"{frames.loc[lost[0], 'clip_id']}): keep the index of `frames` and every row.",
            )
        report = check_leakage(Split(train=train, test=test))
        if report.shared_clips:
            clip = report.shared_clips[0]
            actor = frames.loc[frames["clip_id"].astype(str) == clip, "subject"].iloc[0]
            return Feedback(
                False,
                f"your split (seed {seed}) puts clip {clip} on both sides (some of its frames in "
                f"training, others in the test set), and with it actor {actor}. Hold out whole actors.",
            )
        if report.shared_subjects:
            actor = report.shared_subjects[0]
            in_train = train.loc[train["subject"].astype(str) == actor, "clip_id"].iloc[0]
            in_test = test.loc[test["subject"].astype(str) == actor, "clip_id"].iloc[0]
            return Feedback(
                False,
                f"your split (seed {seed}) puts actor {actor} on both sides: clip {in_train} is in "
                f"training and clip {in_test} in the test set. Hold out whole actors.",
            )
        actors = sorted(map(str, test["subject"].unique()))
        if len(actors) != n_test:
            return Feedback(
                False,
                f"with seed {seed} your test side holds {len(actors)} actor(s) ({', '.join(actors)}), not {n_test}.",
            )
        again = sorted(map(str, _two_sides(run_student(split, frames, n_test, seed))[1]["subject"].unique()))
        if again != actors:
            return Feedback(
                False,
                f"seed {seed} held out {actors} once and {again} the next time: draw the actors "
                "with a generator seeded by `seed` (e.g. np.random.default_rng(seed)).",
            )
        held[seed] = actors
    if len({tuple(a) for a in held.values()}) == 1:
        return Feedback(
            False,
            f"every seed holds out the same actors {next(iter(held.values()))}: draw them at random "
            "from `seed`, so that each seed tests on other people.",
        )
    shown = "; ".join(f"seed {seed}: {', '.join(a)}" for seed, a in list(held.items())[:3])
    return Feedback(
        True,
        f"no clip and no actor is on both sides for any of the seeds {list(seeds)}, and each holds out "
        f"{n_test} whole actors ({shown}, ...).",
    )


# Chapter 7: comparison.
def check_param_ratio(answer: object, big: int, small: int) -> Feedback:
    """How many times more parameters `big` has than `small`."""
    return check_number(answer, big / small, "the parameter ratio", 2e-2)


def _flop_hint(layer: object, got: float, expected: int) -> str:
    """The likely mistake behind a layer's wrong FLOP count, from the ratio of the two."""
    import keras

    out = [int(d) for d in layer.output.shape[1:]]
    positions = int(np.prod(out[:-1] or [1]))
    inp = [int(d) for d in layer.input.shape[1:]]
    if got == 0:
        return "you return 0 for it, but it multiplies and adds."
    if math.isclose(got, expected / 2, rel_tol=1e-9):
        return "you forgot the factor 2 (multiply + add)."
    if math.isclose(got, 2 * expected, rel_tol=1e-9):
        return "you doubled twice: 2 × multiply–accumulates is already the FLOP count."
    if positions > 1 and math.isclose(got * positions, expected, rel_tol=1e-9):
        return f"you counted one output position: multiply by H_out × W_out = {out[0]} × {out[1]}."
    if (
        len(inp) == 3
        and inp[:2] != out[:2]
        and math.isclose(got * out[0] * out[1], expected * inp[0] * inp[1], rel_tol=1e-9)
    ):
        return (
            f"you used the input's size {inp[0]}×{inp[1]}, but the layer has stride {layer.strides[0]}: "
            f"count the output positions, {out[0]}×{out[1]}."
        )
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise = 2 * positions * int(np.prod(layer.depthwise_kernel.shape))
        pointwise = 2 * positions * int(np.prod(layer.pointwise_kernel.shape))
        if math.isclose(got, depthwise, rel_tol=1e-9):
            return "you counted only its depthwise 3×3 part: add the 1×1 pointwise convolution."
        if math.isclose(got, pointwise, rel_tol=1e-9):
            return "you counted only its 1×1 pointwise part: add the depthwise 3×3 convolution."
    if isinstance(layer, keras.layers.DepthwiseConv2D) and math.isclose(got, expected * out[-1], rel_tol=1e-9):
        return "a depthwise convolution has one 3×3 filter per channel: it does not mix the channels."
    return f"yours is {got / expected:.4g} times that."


@coding_exercise
def check_conv_flops(conv_flops: Callable[[object], object], models: dict[str, object]) -> Feedback:
    """`conv_flops(layer)` must give 2 × `models.layer_macs(layer)` for every layer of every model in `models`
    (0 for the layers we do not count); the first layer that differs is named, with the likely mistake."""
    from fer_utils.models import layer_macs

    counted = 0
    for name, model in models.items():
        for layer in model.layers:
            expected = 2 * layer_macs(layer)
            try:
                got = run_student(conv_flops, layer)
            except Unanswered:
                raise
            except Exception as exc:  # name the layer it failed on
                return Feedback(
                    False,
                    f"`{conv_flops.__name__}` raised {type(exc).__name__} on {name}'s layer "
                    f"{layer.name} ({type(layer).__name__}): {exc}",
                )
            try:
                value = float(got)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return Feedback(
                    False, f"{name}'s layer {layer.name}: `{conv_flops.__name__}` returned {got!r}, not a number."
                )
            if value == expected:
                counted += expected > 0
                continue
            where = f"{name}'s layer {layer.name} ({type(layer).__name__}, output {tuple(layer.output.shape[1:])})"
            if expected == 0:
                return Feedback(
                    False,
                    f"{where}: you return {value:,.0f}, but we count only the multiply–accumulates "
                    "of Conv2D, DepthwiseConv2D, SeparableConv2D and Dense layers: return 0 for it.",
                )
            return Feedback(
                False,
                f"{where}: you return {value:,.0f} FLOPs, 2 × layer_macs gives {expected:,}: "
                + _flop_hint(layer, value, expected),
            )
    return Feedback(
        True,
        f"your count agrees with `layer_macs` on all {counted} convolution and dense layers of "
        f"{', '.join(models)}: FLOPs = 2 × output positions × weights of the kernel(s).",
    )


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
        return (
            f"your model's weights are {stored}: did you set converter.optimizations = [tf.lite.Optimize.DEFAULT] "
            "(and leave out target_spec.supported_types = [tf.float16])?"
        )
    if "float32" in kinds:
        return (
            "no representative dataset: the weights are int8 but the activations are not int8 (they stay float32); "
            "set converter.representative_dataset to a function that yields training crops"
        )
    for side, detail in (("input", inp), ("output", out)):
        kind = np.dtype(detail["dtype"]).name
        if kind != "int8":
            return (
                f"your model's {side} is {kind}: this exercise asks for signed int8 in and out "
                f"(converter.inference_{side}_type = tf.int8)"
            )
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
        with (
            open(os.devnull, "w") as null,
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            warnings.catch_warnings(),
        ):
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
def check_int8_model(
    to_int8: Callable[..., object], model: object, representative: object, crops: object, float32_bytes: int
) -> Feedback:
    """`to_int8(model, representative)` must return a full-integer TFLite model (int8 weights and
    activations, int8 input and output) whose probabilities on the real `crops` stay close to Keras's."""
    import numpy as np

    from fer_utils.deploy import tflite_interpreter, tflite_predict

    with _quiet():
        blob = run_student(to_int8, model, representative)
    if not isinstance(blob, (bytes, bytearray)):
        return Feedback(
            False,
            f"`{to_int8.__name__}` returned a {type(blob).__name__}; return what converter.convert() gives (bytes).",
        )
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
        return Feedback(
            False,
            f"your int8 model's probabilities differ from the Keras model's by {change:.3f} on average "
            f"(it agrees on the top class for {agree:.0%} of the {len(images)} crops): calibrate on crops in raw "
            "pixels 0–255, as the model sees them (not divided by 255), one float32 batch of one at a time",
        )
    return Feedback(
        True,
        f"a full-integer int8 model of {len(blob) / 1024:.0f} kB, {float32_bytes / len(blob):.1f}× smaller than "
        f"the float32 one ({float32_bytes / 1024:.0f} kB); on {len(images)} real crops it picks the Keras model's "
        f"class {agree:.0%} of the time, probabilities within {change:.3f} on average.",
    )


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
        covered[k, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = value
    probabilities = np.asarray(model.predict(np.concatenate([image[None], covered]), verbose=0))[:, class_index]
    return (probabilities[0] - probabilities[1:]).reshape(rows, cols)


@coding_exercise
def check_occlusion_map(
    occlusion_map: Callable[..., object], model: object, image: object, class_index: int, patch: int = 8
) -> Feedback:
    """`occlusion_map(model, image, class_index, patch)`: the drop of the class probability when each
    square is covered with the image's mean gray; compared with the drops computed here, and with Grad-CAM."""
    import numpy as np

    from fer_utils.explain import grad_cam

    answer = np.asarray(run_student(occlusion_map, model, image, class_index, patch), dtype=np.float64)
    expected = _occlusion_drops(model, image, class_index, patch)
    height, width = model.input_shape[1:3]
    if answer.shape != expected.shape:
        return Feedback(
            False,
            f"your map is {answer.shape}; with {patch}×{patch} squares on a {height}×{width} face it must be "
            f"{expected.shape} (one value per square, rows first)",
        )
    if np.allclose(answer, expected, atol=1e-4):
        r, c = np.unravel_index(expected.argmax(), expected.shape)
        cam = grad_cam(model, image, class_index)
        cam_r, cam_c = np.unravel_index(cam.argmax(), cam.shape)
        return Feedback(
            True,
            f"covering square (row {r}, column {c}) lowers the probability most, by {expected[r, c]:.3f}; "
            f"Grad-CAM's peak lies in square (row {cam_r // patch}, column {cam_c // patch}).",
        )
    if np.allclose(answer, -expected, atol=1e-4):
        return Feedback(
            False,
            "your map has the wrong sign: the drop is p(original) − p(covered), positive where the square mattered",
        )
    if np.allclose(answer, _occlusion_drops(model, image, class_index, patch, fill=0.0), atol=1e-4):
        return Feedback(
            False,
            "you covered the squares with black (0): use the image's mean gray, so that the cover adds no dark blob of its own",
        )
    r, c = np.unravel_index(np.abs(answer - expected).argmax(), expected.shape)
    return Feedback(
        False,
        f"square (row {r}, column {c}) should drop by {expected[r, c]:.4f}, yours says {answer[r, c]:.4f}: "
        f"cover rows {r * patch}–{(r + 1) * patch - 1} and columns {c * patch}–{(c + 1) * patch - 1} only",
    )


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
    import numpy as np

    answer = run_student(restricted_accuracy, probabilities, classes, truth, allowed)
    scores = np.asarray(probabilities)[:, [list(classes).index(c) for c in allowed]]
    choice = np.asarray(allowed)[scores.argmax(1)]
    expected = float(np.mean(choice == np.asarray(truth)))
    unrestricted = float(np.mean(np.asarray(classes)[np.asarray(probabilities).argmax(1)] == np.asarray(truth)))
    feedback = check_number(answer, expected, f"the accuracy among {list(allowed)}", rel_tol=0, abs_tol=1e-6)
    if not feedback.ok and answer is not None and math.isclose(float(answer), unrestricted, abs_tol=1e-6):  # type: ignore[arg-type]
        return Feedback(
            False,
            f"{float(answer):g} is the accuracy over all the classes (the 8-way accuracy for the book's models): keep only the columns of {list(allowed)} "
            "before taking the arg-max.",
        )
    return feedback
