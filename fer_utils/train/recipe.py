"""What a fast-converging recipe adds to a fit: a learning-rate schedule whose length is known in advance
(one epoch of linear warm-up, then cosine decay), a label-smoothed loss, and a time budget that sets that
length from the measured seconds per epoch.

Why: on 2 CPU cores a reader can afford about twenty epochs of FER-2013, and a schedule that decays to 1 %
of its peak by the last one ends on settled weights where a constant rate with early stopping keeps bouncing
(benchmarks/README.md, "The book's network for faces in the wild"). Label smoothing (Szegedy et al. 2016)
keeps the logits from growing without bound on FER-2013's noisy labels.
"""

from __future__ import annotations

import math
import time

import keras
from keras import ops

from fer_utils.errors import InputError
from fer_utils.train.config import SCHEDULES

# "one-cycle": WARMUP_EPOCHS of linear warm-up to the learning rate, then cosine decay to SCHEDULE_FLOOR of
# it at the run's last step.
SCHEDULE_FLOOR = 0.01
WARMUP_EPOCHS = 1
# Epochs a time budget times before it fixes the run's length (the first also decodes and caches the crops).
BUDGET_TIMED_EPOCHS = 2


@keras.saving.register_keras_serializable(package="fer_utils")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate at a step: linear from `peak`/warmup_steps up to `peak` over `warmup_steps`, then
    cosine from `peak` down to `floor`·peak at `total_steps` (and there after). `total_steps` is a variable,
    so that a time budget can set the run's length after timing its first epochs (`TimeBudget`)."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, floor: float = SCHEDULE_FLOOR) -> None:
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.floor = float(floor)
        self.total_steps = keras.Variable(float(total_steps), trainable=False, name="schedule_total_steps")

    def __call__(self, step: object) -> object:
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        rising = self.peak * (step + 1.0) / warmup
        span = ops.maximum(self.total_steps - warmup, 1.0)
        progress = ops.clip((step - warmup) / span, 0.0, 1.0)
        falling = self.peak * (self.floor + (1.0 - self.floor) * 0.5 * (1.0 + ops.cos(math.pi * progress)))
        return ops.where(step < warmup, rising, falling)

    def set_total_steps(self, total_steps: int) -> None:
        """Make the decay end at `total_steps` (a time budget's decision)."""
        self.total_steps.assign(float(total_steps))

    def get_config(self) -> dict[str, object]:
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": int(float(self.total_steps.numpy())),
            "floor": self.floor,
        }


def learning_rate(
    schedule: str, rate: float, epochs: int, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate for `schedule`: `rate` itself ("constant"), or `WarmupCosine` peaking at `rate`
    after WARMUP_EPOCHS and ending at the last of `epochs` epochs of `steps_per_epoch` steps ("one-cycle")."""
    if schedule == "constant":
        return rate
    if schedule == "one-cycle":
        steps = max(int(steps_per_epoch), 1)
        return WarmupCosine(rate, WARMUP_EPOCHS * steps, epochs * steps)
    raise InputError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")


@keras.saving.register_keras_serializable(package="fer_utils")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of softmax outputs with label smoothing. Keras's sparse cross-entropy has no smoothing,
    so class indices are made one-hot here; class distributions (mixed batches) are taken as they are."""

    def __init__(self, smoothing: float = 0.1, name: str = "smoothed_crossentropy", **kwargs: object) -> None:
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true: object, y_pred: object) -> object:
        return keras.losses.categorical_crossentropy(target_of(y_true, y_pred), y_pred, label_smoothing=self.smoothing)

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "smoothing": self.smoothing}


def target_of(y_true: object, y_pred: object) -> object:
    """The labels as class distributions: class indices made one-hot, distributions (N, classes) as they are."""
    if len(y_true.shape) == 2 and y_true.shape[-1] == y_pred.shape[-1] and y_true.shape[-1] not in (None, 1):
        return ops.cast(y_true, y_pred.dtype)
    return ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(y_pred)[-1])


@keras.saving.register_keras_serializable(package="fer_utils")
def label_accuracy(y_true: object, y_pred: object) -> object:
    """1 where the predicted class is the label's (its largest share for a mixed label), else 0."""
    truth = ops.argmax(target_of(y_true, y_pred), axis=-1)
    return ops.cast(ops.equal(truth, ops.argmax(y_pred, axis=-1)), "float32")


def loss(label_smoothing: float, mixed: bool = False) -> str | keras.losses.Loss:
    """The training loss: Keras's sparse cross-entropy, or `SmoothedCrossentropy` when smoothing is asked or
    the training labels are `mixed` (class distributions)."""
    if label_smoothing > 0 or mixed:
        return SmoothedCrossentropy(label_smoothing)
    return "sparse_categorical_crossentropy"


def accuracy(mixed: bool = False) -> str | keras.metrics.Metric:
    """The accuracy metric: Keras's, or `label_accuracy` (logged as `accuracy` too) when the training labels are
    `mixed` (class distributions) while the other sides' are class indices."""
    return keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy") if mixed else "accuracy"


def planned_epochs(budget_s: float, elapsed_s: float, epoch_s: float, done: int, most: int) -> int:
    """How many epochs fit in `budget_s`: the `done` ones (which took `elapsed_s`) plus as many more of
    `epoch_s` each as the rest of the budget holds, at least `done` and at most `most`."""
    more = math.floor(max(budget_s - elapsed_s, 0.0) / max(epoch_s, 1e-9))
    return int(min(done + more, most))


class TimeBudget(keras.callbacks.Callback):
    """Ends training within `minutes`: times the first BUDGET_TIMED_EPOCHS epochs, then fixes how many fit
    (at most `most`), ends a `WarmupCosine` schedule's decay there and stops after them. Says an ETA every
    epoch and keeps the plan in `record`; an overrun (a budget shorter than one epoch still trains one) is
    said in a WARNING."""

    def __init__(self, minutes: float, most: int, steps_per_epoch: int, say=print) -> None:
        super().__init__()
        self.budget_s = float(minutes) * 60.0
        self.most = int(most)
        self.steps_per_epoch = int(steps_per_epoch)
        self.say = say
        self.record: dict[str, object] = {"time_budget_minutes": float(minutes), "epoch_seconds": []}
        self.planned = self.most

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        seconds = self.record["epoch_seconds"]
        seconds.append(round(now - self.epoch_start, 3))
        done, elapsed = epoch + 1, now - self.start
        if done <= BUDGET_TIMED_EPOCHS:
            self.planned = planned_epochs(self.budget_s, elapsed, seconds[-1], done, self.most)
            self._set_schedule_length()
            self.record |= {"epochs_planned": self.planned, "planned_from_epoch_seconds": seconds[-1]}
        left = (self.planned - done) * seconds[-1]
        self.say(
            f"time budget {self.budget_s / 60:g} min: epoch {done}/{self.planned} took {seconds[-1]:.1f} s, "
            f"{elapsed:.0f} s so far, ETA {left:.0f} s"
        )
        if done >= self.planned:
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self.start
        self.record |= {"epochs_run": len(self.record["epoch_seconds"]), "seconds": round(seconds, 2)}
        over = seconds - self.budget_s
        self.record["over_budget_seconds"] = round(max(over, 0.0), 2)
        if over > 0:  # at least one epoch always runs, however short the budget
            self.say(
                f"WARNING: time budget {self.budget_s / 60:g} min ({self.budget_s:g} s) overrun by {over:.1f} s: "
                f"{self.record['epochs_run']} epoch(s) took {seconds:.1f} s (a run trains at least one epoch); "
                "recorded in time_budget.json"
            )

    def _set_schedule_length(self) -> None:
        """Make a `WarmupCosine` schedule decay to its floor at the planned last epoch."""
        schedule = getattr(self.model.optimizer, "_learning_rate", None)
        if isinstance(schedule, WarmupCosine):
            schedule.set_total_steps(self.planned * self.steps_per_epoch)
