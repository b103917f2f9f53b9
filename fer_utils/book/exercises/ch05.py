"""The checkers of chapter 5, regularization: each computes the expected answer from the real data it is given."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from fer_utils.book.exercises.feedback import Feedback, as_number, check_number, coding_exercise, run_student
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX


def check_generalization_gap(answer: object, history: pd.DataFrame) -> Feedback:
    """Train minus validation accuracy at the last epoch of a run's history, both sides scored the same way, in
    inference mode (`train_eval_accuracy`); the gap with Keras's logged `accuracy` (the epoch's running
    mean, dropout on) is named as the mistake it is."""
    last = history.iloc[-1]
    scored = f"{TRAIN_EVAL_PREFIX}accuracy"
    if scored not in last:
        return Feedback(False, f"this history has no `{scored}` column: train the run again with the package's fit.")
    what = "the final train−validation accuracy gap"
    logged = float(last["accuracy"] - last["val_accuracy"])
    value = as_number(answer)
    feedback = check_number(answer, float(last[scored] - last["val_accuracy"]), what, 1e-2, 1e-3)
    if not feedback and value is not None and math.isclose(value, logged, rel_tol=1e-2, abs_tol=1e-3):
        return Feedback(
            False,
            f"{value:g} is the gap with the training accuracy Keras logs, the epoch's running mean scored with "
            f"dropout on; the validation side is scored in inference mode: compare it with `{scored}`.",
        )
    return feedback


@coding_exercise
def check_l1_on_fc(
    build: Callable[[float], object], images: np.ndarray, classes: int, factors: Sequence[float] = (0.01, 0.001)
) -> Feedback:
    """`build(l1)` must return a two-stage CNN (two Conv2D) whose Dense layer `fc`, and only it, has an L1
    penalty of `l1` on its kernel; checked for each of `factors` on a real batch of crops `images`."""
    import keras

    for factor in factors:
        model = run_student(build, factor)
        if not isinstance(model, keras.Model) or not type(model).__module__.startswith("keras."):
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
    return Feedback(
        True,
        f"fc, and only fc, has L1(l1) on its {int(np.prod(model.get_layer('fc').kernel.shape)):,} weights. At l1 = "
        f"{factors[-1]:g} the penalty adds {_penalty(model):.4g} to each batch's loss, beside an untrained "
        f"cross-entropy of ln {classes} = {math.log(classes):.3g}.",
    )


def _penalty(model: object) -> float:
    """The regularization loss a Keras model adds to its training loss (sum of `model.losses`)."""
    import keras

    return float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses))


def _l1_penalty_feedback(model: object, factor: float) -> Feedback | None:
    """What is wrong with the L1 penalty on `fc` (None when it is L1(`factor`) on fc's kernel only)."""
    import keras

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
    penalty, expected = _penalty(model), factor * float(np.abs(keras.ops.convert_to_numpy(fc.kernel)).sum())
    if not math.isclose(penalty, expected, rel_tol=1e-4, abs_tol=1e-9):
        return Feedback(
            False,
            f"your model adds a penalty of {penalty:.4g} to the loss, but {factor:g} × Σ|W| of fc's kernel "
            f"is {expected:.4g}: is another layer (or fc's bias, or an L2 term) penalised too?",
        )
    return None
