"""Diagnosing a trained run that learnt nothing.

A run whose training loss became NaN or infinite has diverged and writes nothing (`check_diverged`). A run
whose Dense(16) ReLU units are all dead on the test images, that predicts one class for every test frame,
or whose training loss (less its L1 penalty) never left a uniform guess's (ln classes) has collapsed,
whatever its accuracy says: `collapse_check` records it in metrics.json, with advice.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.errors import InputError
from fer_utils.evaluate.metrics import predicted_labels
from fer_utils.train.config import TrainConfig

COLLAPSE_ADVICE = (
    "the model has learnt nothing. Try another --seed; keep only the last dropout (--dropout 0,0,0.3, the "
    "default: with the paper's 0.3 after every stage the model learnt for 1 of 5 seeds on real faces); a "
    "smaller learning rate (--learning-rate 3e-4, which learnt for 5 of 5 seeds there where the default 1e-3 "
    "learnt for 4) with more --epochs; or more training images. He initialisation collapsed more often, "
    "not less. Measurements: benchmarks/README.md, 'Training recipe across seeds'."
)


OVERFIT_ADVICE = (
    "the model fits its training images (training accuracy {accuracy:.2f}) but does not carry that to the "
    "test images: it overfitted, it did not fail to learn. Give it more training images (more subjects), "
    "stronger regularisation (--dropout, --l1), or fewer --epochs / a smaller --patience."
)
# Training accuracy from which a collapsed run counts as overfitted rather than as having learnt nothing.
OVERFIT_ACCURACY = 0.99

# A run whose lowest training loss stays above this fraction of ln(classes), the loss of a uniform guess,
# has not even fitted its training images.
CHANCE_LOSS_FRACTION = 0.97


def alive_units(model: keras.Model, images: np.ndarray | tf.data.Dataset, layer: str = "fc") -> int:
    """How many units of a ReLU layer are non-zero for at least one of `images` (raw pixels, N×H×W×1,
    or a tf.data.Dataset of such batches or of (images, labels) pairs). A dead unit gets no gradient and
    never recovers; with all 16 of the paper CNN's Dense(16) dead, the output is constant: a collapse."""
    probe = keras.Model(model.input, model.get_layer(layer).output)  # one input: called with one tensor
    if not isinstance(images, tf.data.Dataset):
        images = tf.data.Dataset.from_tensor_slices(np.asarray(images)).batch(256)
    peak = None
    for element in images:
        batch = np.asarray(element[0] if isinstance(element, (tuple, list)) else element)
        if len(batch) == 0:
            continue
        # a direct call, not predict: a new model's predict makes TensorFlow retrace and log into the page
        outputs = probe(batch, training=False).numpy().reshape(len(batch), -1).max(axis=0)
        peak = outputs if peak is None else np.maximum(peak, outputs)
    return 0 if peak is None else int((peak > 0).sum())


def check_diverged(history: pd.DataFrame, config: TrainConfig) -> None:
    """InputError when the training loss became NaN or infinite: Keras stopped the run (TerminateOnNaN)
    and no epoch is worth keeping; the message suggests a smaller learning rate."""
    finite = np.isfinite(history["loss"].to_numpy(dtype=np.float64))
    if finite.all():
        return
    epoch = int(np.argmin(finite)) + 1
    raise InputError(
        f"diverged: the training loss became {history['loss'].iloc[epoch - 1]} in epoch {epoch} with learning "
        f"rate {config.learning_rate:g} ({config.model}); nothing was written. Train again with a smaller "
        f"--learning-rate, e.g. {config.learning_rate / 3:.1g}"
    )


def collapse_check(
    model: keras.Model,
    images: tf.data.Dataset | np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    frames: pd.DataFrame,
    train_loss: float | None = None,
    train_accuracy: float | None = None,
) -> dict:
    """Whether a trained model has collapsed: no live unit in its Dense(16) ReLU layer (`fc`, when it
    has one) on the test images, one predicted class for every test frame although the truth has more,
    or a lowest training loss `train_loss`, less the model's `penalty`, still at chance
    (≥ CHANCE_LOSS_FRACTION × ln(classes)). "advice" is empty for a healthy run (`collapse_advice`).
    """
    alive = alive_units(model, images) if any(layer.name == "fc" for layer in model.layers) else None
    predicted = len(set(predicted_labels(probabilities, classes))) if len(probabilities) else 0
    true = int(frames["emotion"].nunique())
    extra = penalty(model)
    ratio = None if train_loss is None else round((float(train_loss) - extra) / float(np.log(len(classes))), 4)
    collapsed = (alive == 0) or (true > 1 and predicted <= 1) or (ratio is not None and ratio >= CHANCE_LOSS_FRACTION)
    return {
        "collapsed": bool(collapsed),
        "alive_units": alive,
        "predicted_classes": predicted,
        "true_classes": true,
        "train_loss_vs_chance": ratio,
        "regularization_penalty": round(extra, 4),
        "train_accuracy": None if train_accuracy is None else round(float(train_accuracy), 4),
        "advice": collapse_advice(train_accuracy) if collapsed else "",
    }


def penalty(model: keras.Model) -> float:
    """The regularisation penalty (L1, L2) of `model`'s weights: Keras adds it to the loss it logs, so a
    loss compared with chance (a uniform guess's cross-entropy) must have it taken out."""
    return float(sum(float(loss) for loss in model.losses))


def collapse_advice(train_accuracy: float | None) -> str:
    """What to try after a collapse: more data or regularisation for an overfitted run, else COLLAPSE_ADVICE."""
    if train_accuracy is not None and train_accuracy >= OVERFIT_ACCURACY:
        return OVERFIT_ADVICE.format(accuracy=train_accuracy)
    return COLLAPSE_ADVICE


def collapse_message(metrics: dict) -> str:
    """A loud, multi-line warning for a collapsed run's metrics (empty for a healthy run)."""
    report = metrics.get("collapse", {})
    if not metrics.get("collapsed"):
        return ""
    alive = report.get("alive_units")
    units = "" if alive is None else f"{alive} of 16 Dense units alive; "
    ratio = report.get("train_loss_vs_chance")
    loss = "" if ratio is None else f"; lowest training loss {ratio:.2f} × that of a uniform guess"
    return (
        "!" * 72 + f"\nCOLLAPSED RUN: {units}{report.get('predicted_classes')} predicted class(es) "
        f"for {report.get('true_classes')} true ones{loss}.\n{report.get('advice')}\n" + "!" * 72
    )
