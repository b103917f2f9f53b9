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

import numpy as np
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


@coding_exercise
def check_l1_on_fc(build: Callable[[float], object], images: np.ndarray, classes: int,
                   factors: Sequence[float] = (0.01, 0.001)) -> Feedback:
    """`build(l1)` must return a two-stage CNN (two Conv2D) whose Dense layer `fc`, and only it, has an L1
    penalty of `l1` on its kernel; checked for each of `factors` on a real batch of crops `images`."""
    import keras

    for factor in factors:
        model = run_student(build, factor)
        if not isinstance(model, keras.Model):
            return Feedback(False, f"`{build.__name__}({factor:g})` returned a {type(model).__name__}, not a Keras model.")
        convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        if len(convs) != 2:
            return Feedback(False, f"your model has {len(convs)} convolution(s) ({', '.join(convs) or 'none'}); "
                                   "the exercise asks for two stages (16 then 64 filters).")
        names = [layer.name for layer in model.layers]
        if "fc" not in names:
            return Feedback(False, f"your model has no layer named `fc` (its layers: {', '.join(names)}): "
                                   "pass name=\"fc\" to the Dense(16) layer.")
        feedback = _l1_penalty_feedback(model, factor)
        if feedback is not None:
            return feedback
        probabilities = keras.ops.convert_to_numpy(model(images, training=False))
        if probabilities.shape != (len(images), classes):
            return Feedback(False, f"on a batch of {len(images)} crops your model outputs shape {probabilities.shape}, "
                                   f"expected ({len(images)}, {classes}): one probability per class.")
    fc = model.get_layer("fc")
    return Feedback(True, f"fc, and only fc, carries L1(l1) on its kernel, and the model reads the {len(images)} real crops "
                          f"into {classes} probabilities: with l1 = {factors[-1]:g} the penalty adds {_penalty(model):.4g} "
                          f"(= {factors[-1]:g} × Σ|W| over fc's {int(np.prod(fc.kernel.shape)):,} weights) to the loss of "
                          f"every batch, beside an untrained model's cross-entropy of about ln {classes} = {math.log(classes):.3g}.")


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
        return Feedback(False, f"fc has no kernel_regularizer{where}: pass kernel_regularizer=keras.regularizers.L1(l1) to fc.")
    config = regularizer.get_config()
    l1, l2 = float(config.get("l1", 0.0)), float(config.get("l2", 0.0))
    if l1 == 0 and l2 > 0:
        return Feedback(False, "fc's penalty is L2 (squared weights), not L1 (absolute values): use keras.regularizers.L1.")
    if not math.isclose(l1, factor, rel_tol=1e-6):
        return Feedback(False, f"L1 factor {factor:g} expected, got {l1:g}: use the function's argument `l1`, not a constant.")
    penalty, expected = _penalty(model), factor * float(np.abs(_as_numpy(fc.kernel)).sum())
    if not math.isclose(penalty, expected, rel_tol=1e-4, abs_tol=1e-9):
        return Feedback(False, f"your model adds a penalty of {penalty:.4g} to the loss, but {factor:g} × Σ|W| of fc's kernel "
                               f"is {expected:.4g}: is another layer (or fc's bias, or an L2 term) penalised too?")
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
        return Feedback(False, f"{shared} is the number of clips on both sides; the question asks for the fraction of "
                               "test frames whose clip also has frames in training.")
    return feedback


def _two_sides(result: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of a student's split: a `splits.Split` or a (train, test) pair of tables."""
    if hasattr(result, "train") and hasattr(result, "test"):
        return result.train, result.test
    train, test = result  # type: ignore[misc]
    return train, test


@coding_exercise
def check_subject_split(split: Callable[..., object], frames: pd.DataFrame, n_test: int = 2,
                        seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> Feedback:
    """`split(frames, n_test, seed)` must hold out exactly `n_test` actors, drawn from `seed`, with all their
    frames and nothing else on the test side, and pass `splits.check_leakage`; checked on `frames`."""
    from fer_utils.splits import Split, check_leakage

    held = {}
    for seed in seeds:
        train, test = _two_sides(run_student(split, frames, n_test, seed))
        both = train.index.intersection(test.index)
        if len(both):
            return Feedback(False, f"frame {frames.loc[both[0], 'image'] if 'image' in frames else both[0]} "
                                   f"(row {both[0]}) is on both sides: every frame goes to exactly one side.")
        lost = frames.index.difference(train.index.union(test.index))
        if len(lost):
            return Feedback(False, f"{len(lost)} of {len(frames)} frames are on neither side (e.g. one of clip "
                                   f"{frames.loc[lost[0], 'clip_id']}): keep the index of `frames` and every row.")
        report = check_leakage(Split(train=train, test=test))
        if report.shared_clips:
            clip = report.shared_clips[0]
            actor = frames.loc[frames["clip_id"].astype(str) == clip, "subject"].iloc[0]
            return Feedback(False, f"your split (seed {seed}) puts clip {clip} on both sides (some of its frames in "
                                   f"training, others in the test set), and with it actor {actor}. Hold out whole actors.")
        if report.shared_subjects:
            actor = report.shared_subjects[0]
            in_train = train.loc[train["subject"].astype(str) == actor, "clip_id"].iloc[0]
            in_test = test.loc[test["subject"].astype(str) == actor, "clip_id"].iloc[0]
            return Feedback(False, f"your split (seed {seed}) puts actor {actor} on both sides: clip {in_train} is in "
                                   f"training and clip {in_test} in the test set. Hold out whole actors.")
        actors = sorted(map(str, test["subject"].unique()))
        if len(actors) != n_test:
            return Feedback(False, f"with seed {seed} your test side holds {len(actors)} actor(s) ({', '.join(actors)}), "
                                   f"not {n_test}.")
        again = sorted(map(str, _two_sides(run_student(split, frames, n_test, seed))[1]["subject"].unique()))
        if again != actors:
            return Feedback(False, f"seed {seed} held out {actors} once and {again} the next time: draw the actors "
                                   "with a generator seeded by `seed` (e.g. np.random.default_rng(seed)).")
        held[seed] = actors
    if len({tuple(a) for a in held.values()}) == 1:
        return Feedback(False, f"every seed holds out the same actors {next(iter(held.values()))}: draw them at random "
                               "from `seed`, so that each seed tests on other people.")
    shown = "; ".join(f"seed {seed}: {', '.join(a)}" for seed, a in list(held.items())[:3])
    return Feedback(True, f"no clip and no actor is on both sides for any of the seeds {list(seeds)}, and each holds out "
                          f"{n_test} whole actors ({shown}, ...).")


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
    if len(inp) == 3 and inp[:2] != out[:2] and math.isclose(got * out[0] * out[1], expected * inp[0] * inp[1], rel_tol=1e-9):
        return (f"you used the input's size {inp[0]}×{inp[1]}, but the layer has stride {layer.strides[0]}: "
                f"count the output positions, {out[0]}×{out[1]}.")
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
                return Feedback(False, f"`{conv_flops.__name__}` raised {type(exc).__name__} on {name}'s layer "
                                       f"{layer.name} ({type(layer).__name__}): {exc}")
            try:
                value = float(got)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return Feedback(False, f"{name}'s layer {layer.name}: `{conv_flops.__name__}` returned {got!r}, not a number.")
            if value == expected:
                counted += expected > 0
                continue
            where = f"{name}'s layer {layer.name} ({type(layer).__name__}, output {tuple(layer.output.shape[1:])})"
            if expected == 0:
                return Feedback(False, f"{where}: you return {value:,.0f}, but we count only the multiply–accumulates "
                                       "of Conv2D, DepthwiseConv2D, SeparableConv2D and Dense layers: return 0 for it.")
            return Feedback(False, f"{where}: you return {value:,.0f} FLOPs, 2 × layer_macs gives {expected:,}: "
                                   + _flop_hint(layer, value, expected))
    return Feedback(True, f"your count agrees with `layer_macs` on all {counted} convolution and dense layers of "
                          f"{', '.join(models)}: FLOPs = 2 × output positions × weights of the kernel(s).")


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
