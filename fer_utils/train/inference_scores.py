"""The training side scored as the validation side is: in inference mode, after every epoch.

Keras logs a training epoch's `accuracy` and `loss` as the running mean over its batches, each batch scored
in training mode (dropout on) by weights that changed after every batch, while `val_accuracy` and `val_loss`
are scored once, at the end of the epoch, in inference mode (dropout off). Their difference is then not the
generalisation gap: with dropout, the logged training accuracy understates what the network does on its own
training faces (issue 46: 0.602 logged against 0.655 in inference mode for chapter 5's remedy).
`InferenceScores` evaluates the training side with `model.evaluate`, the very call that scores the validation
side, on the training frames without shuffling or augmentation, and logs it as `train_eval_accuracy` and
`train_eval_loss` (every compiled metric, prefixed `train_eval_`) in the history.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX


class InferenceScores(keras.callbacks.Callback):
    """After every epoch, scores `batches` (the training frames, neither shuffled nor augmented) in inference
    mode with `model.evaluate`, as Keras scores the validation side, and adds each metric to the epoch's logs
    as `train_eval_<metric>`; placed before the history logger, it lands in history.csv."""

    def __init__(self, batches: tf.data.Dataset) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        scores = self.model.evaluate(self.batches, verbose=0, return_dict=True)
        logs.update({f"{TRAIN_EVAL_PREFIX}{name}": float(value) for name, value in scores.items()})
