"""The training loop, `train_run(build, data, config, out)`: checks, the fit, the scores, one run folder written whole.

Checked first, a run is written into a temporary sibling renamed into place when complete (CONTRACTS.md); a diverged
run writes nothing, a collapsed one is flagged in metrics.json. What each option costs: benchmarks/README.md.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops

from fer_utils.data.splits import Split, given_warnings, split_note, write_train_hashes
from fer_utils.errors import InputError
from fer_utils.evaluate.metrics import check_tta, evaluate_predictions, predicted_labels, tta_probabilities
from fer_utils.faces.crops import write_crop_spec
from fer_utils.interrupts import Stopped, signal_of, stop_on_signals
from fer_utils.models.networks import MODEL_BUILDERS, ModelBuilder, count_params, load_model
from fer_utils.registry import GIVEN_PROTOCOL, MODEL_OPTIONS, PAPER_MODEL, PAPER_UNITS, WILD_MODEL, WILD_OPTIONS
from fer_utils.storage.atomic import atomic_folder
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX, TRAIN_HASHES_FILE, predictions_frame
from fer_utils.train.config import (
    SCHEDULES,
    TrainConfig,
    changed_options,
    check_config,
    check_run_dir,
    check_split,
    check_training_frames,
)
from fer_utils.train.pipeline import FaceData, class_indices
from fer_utils.train.runs import RunFolder

Fit = Callable[..., tuple[keras.Model, pd.DataFrame]]  # called as fit_model and fit_run are

# Batches per call of Keras's compiled step: the same weights, less Python between batches (the paper's CNN on 2
# cores: an epoch 25.68 / 36.01 s at 1, 18.69 / 14.52 s at 16: benchmarks/results/train_speed.jsonl).
STEPS_PER_EXECUTION = 16


@contextmanager
def retracing_unlogged() -> Iterator[None]:
    """Drop TensorFlow's "triggered tf.function retracing" warning while the block runs (Keras retraces for an
    epoch's shorter last call and for a new model's step at a freed one's address); every other line passes."""
    logger = tf.get_logger()

    def keep(record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TensorFlow ops deterministic."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def model_options(config: TrainConfig, build: ModelBuilder) -> dict[str, object]:
    """The fields of `config` among MODEL_OPTIONS and WILD_OPTIONS that `build` takes (`**kwargs`: MODEL_OPTIONS
    and the changed WILD_OPTIONS); InputError for a changed one it lacks: recorded but never applied."""
    parameters = inspect.signature(build).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    names = {p.name for p in parameters}
    changed = set(changed_options(config, (*MODEL_OPTIONS, *WILD_OPTIONS)))
    taken = [name for name in MODEL_OPTIONS if takes_any or name in names]
    taken += [name for name in WILD_OPTIONS if name in names or (takes_any and name in changed)]
    ignored = [name for name in (*MODEL_OPTIONS, *WILD_OPTIONS) if name not in taken and name in changed]
    if ignored:
        raise InputError(
            f"{config.model}'s builder takes no {', '.join(ignored)}: they would be recorded but never applied; "
            f"leave them at their defaults ({', '.join(MODEL_OPTIONS)} are {PAPER_MODEL}'s, "
            f"{', '.join(WILD_OPTIONS)} {WILD_MODEL}'s)"
        )
    return {name: getattr(config, name) for name in taken}


def compile_model(
    config: TrainConfig,
    num_classes: int,
    build: ModelBuilder | None = None,
    steps_per_epoch: int = 1,
) -> keras.Model:
    """Build the model with `build` (default: the registry's builder of `config.model`)
    with the knobs of `config` it takes, and compile it with Adam (at the config's
    rate or on its schedule) and cross-entropy (label-smoothed when asked). A chapter
    passes the builder its own cell defined, so that an edit there changes the model."""
    build = build or MODEL_BUILDERS[config.model]
    options = model_options(config, build)
    model = build(
        num_classes=num_classes,
        input_shape=(*config.image_size, 1),
        **options,
    )
    rate = learning_rate(
        config.schedule,
        config.learning_rate,
        config.epochs,
        steps_per_epoch,
    )
    ema = {"use_ema": True} if config.use_ema else {}  # Keras's average of the weights
    mixed = config.mix != "none"  # mixed batches' labels are class distributions
    model.compile(
        optimizer=keras.optimizers.Adam(rate, **ema),
        loss=loss(config.label_smoothing, mixed),
        metrics=[accuracy(mixed)],
        # one per call across devices: Keras's loop fails there on a short last call
        steps_per_execution=1 if tf.distribute.has_strategy() else STEPS_PER_EXECUTION,
    )
    return model


def class_weight_map(config: TrainConfig, train: pd.DataFrame, classes: Sequence[str]) -> dict[int, float] | None:
    """Keras's `class_weight` for `config.class_weights`: None, or "balanced"'s n / (classes × count) per class."""
    if config.class_weights == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    labels = class_indices(train, classes)
    weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=labels)
    return {i: float(w) for i, w in enumerate(weights)}


class StopBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C (or SIGTERM) ends a fit as `Stopped` (exit 130 or 143) after the call it arrives in (Python's own
    handler can raise in a TensorFlow conversion). Use: `with StopBetweenBatches() as stop: fit(callbacks=[stop])`."""

    def __init__(self) -> None:
        super().__init__()
        self._held = ExitStack()
        self.stop = threading.Event()

    def __enter__(self) -> StopBetweenBatches:
        self._held.enter_context(stop_on_signals(self.stop))
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._held.close()  # the previous handlers back
        if kind is None and self.stop.is_set():  # the signal came after the last batch
            raise Stopped(signal_of(self.stop), "stopped after the last batch")

    def _check(self, step: int, logs: dict | None = None) -> None:
        if self.stop.is_set():
            raise Stopped(signal_of(self.stop), "stopped between batches")

    on_train_batch_end = on_test_batch_end = on_predict_batch_end = on_epoch_end = _check


class LastEpochWeights(keras.callbacks.Callback):
    """Writes the weights of the last epoch trained to `path` when training ends, before
    early stopping puts the best epoch's weights back (it does so even when it never
    stopped early), so that a run can report the test scores of both."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def on_train_end(self, logs: dict | None = None) -> None:
        save_weights(self.model, self.path)


def save_weights(model: keras.Model, path: Path) -> None:
    """`model.save_weights(path)`; when the write fails (a full disk) the half-written file is emptied and removed,
    which frees the room h5py's objects need to close when freed (else they fail again and the process segfaults
    at exit), and the failure is raised as an OSError naming `path` in one line."""
    try:
        model.save_weights(path)
    except OSError as exc:
        with suppress(OSError):
            os.truncate(path, 0)
        Path(path).unlink(missing_ok=True)
        if exc.errno is None:
            raise
        raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from None


class AveragedAtStop(keras.callbacks.Callback):
    """Keras's `SwapEMAWeights(swap_on_epoch=True)` writes the averages into the model only at the last of `epochs`:
    placed after the callbacks that stop a run, this does it for a run stopped earlier (else on its raw weights)."""

    def __init__(self, swap: keras.callbacks.SwapEMAWeights) -> None:
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.stop_training and epoch != self.params["epochs"] - 1 and self.swap._ema_weights_in_model:
            self.swap._finalize_ema_values()


class InferenceScores(keras.callbacks.Callback):
    """Scores `batches` (training frames, unshuffled, unaugmented) every epoch as the val side, as `train_eval_*`:
    Keras's logged `accuracy`, a running mean with dropout on, misleads (0.602 against 0.655 in chapter 5)."""

    def __init__(self, batches: tf.data.Dataset) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        scores = self.model.evaluate(self.batches, verbose=0, return_dict=True)
        logs.update({f"{TRAIN_EVAL_PREFIX}{name}": float(value) for name, value in scores.items()})


def run_callbacks(
    run: RunFolder,
    monitor: str,
    patience: int,
    plateau: int = 0,
    train_eval: tf.data.Dataset | None = None,
) -> list[keras.callbacks.Callback]:
    """Score `train_eval` in inference mode after every epoch (`InferenceScores`), stop
    at a NaN loss or when `monitor` has not improved for `patience` epochs, keep the
    best epoch's weights in memory (a model file written at every improvement cost a
    sixth of a small run) and put them back at the end, after writing the last epoch's
    weights, optionally halve the learning rate after `plateau` epochs without
    progress (0: off), and log every epoch to the run's history file."""
    halve = keras.callbacks.ReduceLROnPlateau(
        monitor=monitor,
        factor=0.5,
        patience=plateau,
        min_lr=1e-6,
    )
    schedule = [halve] if plateau else []
    scores = [InferenceScores(train_eval)] if train_eval is not None else []
    return [
        # first: every later callback and the history see the inference scores
        *scores,
        LastEpochWeights(run.last_weights_file),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(
            monitor=monitor,
            patience=patience,
            restore_best_weights=True,
        ),
        *schedule,  # before the logger, which then writes the epoch's learning rate
        keras.callbacks.CSVLogger(run.history_file),
    ]


def fit_model(
    config: TrainConfig,
    train: tf.data.Dataset,
    val: tf.data.Dataset | None,
    num_classes: int,
    run: RunFolder,
    build: ModelBuilder | None = None,
    class_weight: dict[int, float] | None = None,
    train_eval: tf.data.Dataset | None = None,
    verbose: int | str = 2,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, pd.DataFrame]:
    """Compile the configured model and fit it for up to `config.epochs`, with early
    stopping on the validation loss (the training loss without `val`), and save the
    run's model. Returns that model and the history, one row per epoch."""
    if callbacks is None:  # fit_run passes its own: the long-run options
        check_plain(config)
        monitor = "val_loss" if val is not None else "loss"
        callbacks = run_callbacks(
            run,
            monitor,
            config.patience,
            config.plateau,
            train_eval,
        )
    model = compile_model(config, num_classes, build, batches_per_epoch(train))
    fit = model.fit(
        train,
        validation_data=val,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
        class_weight=class_weight,
    )
    model.save(run.model_file)
    return model, pd.DataFrame(fit.history).rename_axis("epoch").reset_index()


def check_plain(config: TrainConfig) -> None:
    """InputError for an option of `config` that only `fit_run` applies (`fit_model` alone would leave it out)."""
    long = changed_options(config, ("use_ema", "time_budget", "keep"))
    if long:
        raise InputError(f"fit_model is the plain loop: {', '.join(long)} need fit_run (what fer.train uses)")


def fit_run(
    config: TrainConfig, train: tf.data.Dataset, val: tf.data.Dataset | None, num_classes: int, run: RunFolder, **fit
) -> tuple[keras.Model, pd.DataFrame]:
    """`fit_model` (given `fit`, its other arguments) with the long-run options: weight averaging (`use_ema`), a time
    budget, the last epoch kept (`long_run`, `save_fitted`), and Ctrl-C ending the fit between two batches."""
    steps = batches_per_epoch(train)
    monitor = "val_loss" if val is not None else "loss"
    plain = run_callbacks(run, monitor, config.patience, config.plateau, fit.get("train_eval"))
    callbacks, budget = long_run(config, steps, plain)
    with StopBetweenBatches() as stop:
        fitted = fit_model(config, train, val, num_classes, run, **fit, callbacks=[stop, *callbacks])
    save_fitted(fitted[0], config, run, budget)
    return fitted


def long_run(
    config: TrainConfig, steps: int, callbacks: list[keras.callbacks.Callback]
) -> tuple[list[keras.callbacks.Callback], list[TimeBudget]]:
    """`callbacks` with the config's weight averaging (`use_ema`) and time budget around them (returned too)."""
    budget = [TimeBudget(config.time_budget, config.epochs, steps)] if config.time_budget else []
    if not config.use_ema:
        return [*callbacks, *budget], budget
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    return [swap, *callbacks, *budget, AveragedAtStop(swap)], budget


def save_fitted(model: keras.Model, config: TrainConfig, run: RunFolder, budget: list[TimeBudget]) -> None:
    """After `fit_model` saved the best epoch's model (early stopping put its weights back): with `config.keep ==
    "last"` the last epoch's instead (the best's weights beside it); and the time budget's record."""
    if config.keep == "last":
        save_weights(model, run.best_weights_file)
        model.load_weights(run.last_weights_file)
        model.save(run.model_file)
    for timer in budget:
        run.time_budget_file.write_text(json.dumps(timer.record, indent=2), encoding="utf-8")


def batches_per_epoch(dataset: tf.data.Dataset) -> int:
    """The batches `dataset` gives per epoch (counted by reading it when tf.data cannot tell)."""
    known = int(dataset.cardinality())
    return known if known >= 0 else sum(1 for _ in dataset)


def training_seconds_per_image(
    models: Mapping[str, keras.Model], images: np.ndarray, labels: np.ndarray, batch_size: int, repeats: int = 3
) -> dict[str, float]:
    """Median seconds per image of one training pass of each compiled model over `images` in memory (no input
    pipeline); the models take turns, pass after pass, so that a changing load slows them all alike."""
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).cache()
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(repeats + 1):
        for name, model in models.items():
            start = time.perf_counter()
            with retracing_unlogged():
                model.fit(batches, epochs=1, verbose=0)
            if round_:  # the first round traces
                seconds[name].append(time.perf_counter() - start)
    return {name: float(np.median(times)) / len(images) for name, times in seconds.items()}


def predict_batches(model: keras.Model, dataset: tf.data.Dataset, tta: str = "none") -> np.ndarray:
    """Class probabilities of every image of `dataset` ((images, labels) batches), in order, averaged over the views
    of test-time augmentation `tta`; not `model.predict`, which retraces per model and logs into the page."""
    check_tta(tta)

    def predict(images: object) -> np.ndarray:
        return model(images, training=False).numpy()

    batches = [tta_probabilities(predict, images if tta == "none" else images.numpy(), tta) for images, _ in dataset]
    return np.concatenate(batches) if batches else np.zeros((0, model.output_shape[-1]), dtype="float32")


def train_run(
    build: ModelBuilder | None,
    data: FaceData,
    config: TrainConfig,
    out: Path,
    *,
    fit: Fit | None = None,
    strategy: tf.distribute.Strategy | None = None,
    verbose: int | str = 2,
    distribution: Mapping[str, object] | None = None,
) -> RunFolder:
    """Train `build`'s network (None: `config.model`'s) on `data` with `fit` (default `fit_run`), test it and write
    the run folder `out` whole or not at all; all checked first (InputError). `distribution` goes into config.json."""
    check_config(config)
    check_run_dir(out)
    build = build or MODEL_BUILDERS[config.model]
    model_options(config, build)  # a knob the builder lacks fails now, before any work
    data.check_feed(config)  # so does one the data's pipeline never applies
    frames = data.frames()
    classes = check_training_frames(frames, data.crops, data.spec)
    protocol = data.protocol(config, frames)
    if protocol == GIVEN_PROTOCOL:  # chosen or by default: which sides, and what the tested side lacks
        print(split_note(frames))
        for line in given_warnings(frames):
            print(f"WARNING: {line}", file=sys.stderr)
    config = replace(config, protocol=protocol)
    split = data.split_for(config, frames)
    check_split(split, classes, config)  # the crops were checked with all the frames
    final = Path(out)
    with atomic_folder(final) as tmp:  # also sweeps what killed runs left beside it
        _fit_and_test(RunFolder(tmp), build, data, config, split, classes, fit, strategy, verbose, distribution)
        check_run_dir(final)  # nothing appeared there while we trained
        if final.is_dir():
            final.rmdir()  # empty: replaced by the complete run
    return RunFolder(final)


def _fit_and_test(
    run: RunFolder,
    build: ModelBuilder,
    data: FaceData,
    config: TrainConfig,
    split: Split,
    classes: Sequence[str],
    fit: Fit | None,
    strategy: tf.distribute.Strategy | None,
    verbose: int | str,
    distribution: Mapping[str, object] | None,
) -> None:
    """Train with `fit`, test the best and the last epoch's weights and write every run file into the fresh `run`."""
    seed_everything(config.seed, config.deterministic)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    has_val = split.val is not None and len(split.val) > 0
    train_batches = data.batches(split.train, classes, config, training=True, replicas=replicas)
    val_batches = data.batches(split.val, classes, config, replicas=replicas) if has_val else None
    # the training side scored as the val side is (off in the wild recipe, for time)
    train_eval = data.batches(split.train, classes, config, replicas=replicas) if config.score_train else None
    run.classes_file.write_text(json.dumps(list(classes)), encoding="utf-8")
    start = time.perf_counter()
    weights = class_weight_map(config, split.train, classes)
    with strategy.scope(), retracing_unlogged():  # the model's variables made in the strategy's scope
        model, history = (fit or fit_run)(
            config,
            train_batches,
            val_batches,
            len(classes),
            run,
            build=build,
            class_weight=weights,
            train_eval=train_eval,
            verbose=verbose,
        )
    seconds = time.perf_counter() - start
    check_diverged(history, config)
    config = replace(config, epochs=planned_epochs(run, config))  # config.json: the run's length, as planned
    _write_json(
        run.config_file,
        {
            **asdict(config),
            "classes": list(classes),
            "class_weight_values": None if weights is None else {classes[i]: round(w, 6) for i, w in weights.items()},
            "params": count_params(model),
            "strategy": type(strategy).__name__,
            "replicas": replicas,
            "sizes": {"train": len(split.train), "val": len(split.val) if has_val else 0, "test": len(split.test)},
            "subjects": {side: sorted(map(str, df["subject"].unique())) for side, df in split.sides().items()},
            "split_notes": split.notes,
            "duplicates": split.duplicates,  # the crops' duplicate audit on this split (splits.audited_split)
            **({"distribution": dict(distribution)} if distribution else {}),
        },
    )
    write_train_hashes(split, run.path / TRAIN_HASHES_FILE)  # for `evaluate`'s overlap check, by content
    if data.spec is not None:  # how the faces were cropped (runs.RunFolder.crop_spec, its recognizer)
        write_crop_spec(run.path, data.spec)
    monitor = "val_loss" if has_val else "loss"
    best = load_model(run.model_file)
    test_batches = data.batches(split.test, classes, config)
    probabilities = predict_batches(best, test_batches)
    served = {}  # the kept model as it is served, over its recipe's test-time augmentation
    if config.tta != "none":
        tta = predict_batches(best, test_batches, config.tta)
        served["test_served"] = {"tta": config.tta, **evaluate_predictions(split.test, tta, classes)}
    train_accuracy = float(history["accuracy"].max()) if "accuracy" in history else None
    lowest = float(history["loss"].min())
    collapse = collapse_check(
        best, test_batches, probabilities, classes, split.test, lowest, train_accuracy, config.model
    )
    best.load_weights(run.last_weights_file)  # the last epoch's weights, as they were before the restore
    last = evaluate_predictions(split.test, predict_batches(best, test_batches), classes)
    scores = {}
    if run.best_weights_file.is_file():  # the model holds the last epoch's: score the best epoch's too
        best.load_weights(run.best_weights_file)
        scores["test_best_epoch"] = evaluate_predictions(split.test, predict_batches(best, test_batches), classes)
    metrics = {
        "test": evaluate_predictions(split.test, probabilities, classes),
        **served,
        "test_last_epoch": last,
        **scores,
        "kept": config.keep,
        "collapsed": collapse.pop("collapsed"),
        "collapse": collapse,
        "best_epoch": int(history[monitor].idxmin()) + 1,  # counted from 1, as epochs are said
        "epochs_run": int(len(history)),
        "monitor": monitor,
        "train_seconds": round(seconds, 2),
    }
    predictions_frame(split.test, probabilities, classes).to_csv(run.predictions_file, index=False)
    _write_json(run.metrics_file, metrics)


def planned_epochs(run: RunFolder, config: TrainConfig) -> int:
    """The epochs the run was planned for: its time budget's plan (`TimeBudget`, time_budget.json), else config's."""
    if not run.time_budget_file.is_file():
        return config.epochs
    return int(json.loads(run.time_budget_file.read_text(encoding="utf-8"))["epochs_planned"])


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")


# "one-cycle": WARMUP_EPOCHS of linear warm-up, then cosine decay to SCHEDULE_FLOOR of the rate at the last step.
SCHEDULE_FLOOR = 0.01
WARMUP_EPOCHS = 1
# Epochs a time budget times before it fixes the run's length (the first also decodes and caches the crops).
BUDGET_TIMED_EPOCHS = 2


@keras.saving.register_keras_serializable(package="fer_utils")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear from `peak`/warmup_steps up to `peak` over `warmup_steps`, then cosine down to `floor`·peak at
    `total_steps` and after: a variable, which a `TimeBudget` sets after timing the first epochs."""

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
    """Keras's sparse cross-entropy, or `SmoothedCrossentropy` for smoothing or `mixed` labels (class distributions)."""
    if label_smoothing > 0 or mixed:
        return SmoothedCrossentropy(label_smoothing)
    return "sparse_categorical_crossentropy"


def accuracy(mixed: bool = False) -> str | keras.metrics.Metric:
    """Keras's accuracy, or `label_accuracy` (logged as `accuracy` too) for `mixed` training labels."""
    return keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy") if mixed else "accuracy"


class TimeBudget(keras.callbacks.Callback):
    """Ends training within `minutes`: times the first BUDGET_TIMED_EPOCHS epochs, fixes how many fit (at most `most`)
    and ends a `WarmupCosine` there. Says an ETA every epoch, keeps the plan in `record`, warns of an overrun."""

    def __init__(self, minutes: float, most: int, steps_per_epoch: int, say=print) -> None:
        super().__init__()
        self.budget_s = float(minutes) * 60.0
        self.most = int(most)
        self.steps_per_epoch = int(steps_per_epoch)
        self.say = say
        self.record: dict[str, object] = {
            "time_budget_minutes": float(minutes),
            "epochs_asked": self.most,  # config.json records the epochs planned
            "epoch_seconds": [],
        }
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
        if done <= BUDGET_TIMED_EPOCHS:  # the done epochs and as many more as the rest of the budget holds
            more = math.floor(max(self.budget_s - elapsed, 0.0) / max(seconds[-1], 1e-9))
            self.planned = int(min(done + more, self.most))
            schedule = getattr(self.model.optimizer, "_learning_rate", None)
            if isinstance(schedule, WarmupCosine):  # its decay then ends at the planned last epoch
                schedule.set_total_steps(self.planned * self.steps_per_epoch)
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


COLLAPSE_ADVICE = (
    "the model has learnt nothing. Try another --seed; keep only the last dropout (--dropout 0,0,0.3, the "
    "default: with the paper's 0.3 after every stage the model learnt for 1 of 5 seeds on real faces); a "
    "smaller learning rate (--learning-rate 3e-4, which learnt for 5 of 5 seeds there where the default 1e-3 "
    "learnt for 4) with more --epochs; or more training images. He initialisation collapsed more often, "
    "not less. Measurements: benchmarks/README.md, 'Training recipe across seeds'."
)
# The advice for a model other than the paper's CNN, whose options (--dropout, --l1, --init) it lacks.
OTHER_COLLAPSE_ADVICE = (
    "the model has learnt nothing. Try another --seed; a smaller --learning-rate with more --epochs; or more "
    "training images."
)
OVERFIT_ADVICE = (
    "the model fits its training images (training accuracy {accuracy:.2f}) but does not carry that to the "
    "test images: it overfitted, it did not fail to learn. Give it more training images (more subjects), "
    "{regularise}, or fewer --epochs / a smaller --patience."
)
OVERFIT_ACCURACY = 0.99  # training accuracy from which a collapsed run counts as overfitted, not as learning nothing
# A lowest training loss above this fraction of ln(classes), a uniform guess's loss, has not fitted the training set.
CHANCE_LOSS_FRACTION = 0.97


def alive_units(model: keras.Model, images: np.ndarray | tf.data.Dataset, layer: str = "fc") -> int:
    """How many units of a ReLU layer are non-zero for one of `images` (N×H×W×1 raw pixels, or a dataset of them or
    of (images, labels)). A dead unit never recovers; all 16 of the paper CNN's Dense(16) dead is a collapse."""
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
    """InputError when the training loss became NaN or infinite: no epoch is worth keeping."""
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
    model_name: str = PAPER_MODEL,
) -> dict:
    """Whether a trained model collapsed: no live unit in its `fc` ReLU layer on the test images, one predicted class
    for several true ones, or a lowest `train_loss` less the penalty ≥ CHANCE_LOSS_FRACTION × ln(classes); with
    advice that fits `model_name` (the config's model)."""
    fc = next((layer for layer in model.layers if layer.name == "fc"), None)
    alive = alive_units(model, images) if fc is not None else None
    predicted = len(set(predicted_labels(probabilities, classes))) if len(probabilities) else 0
    true = int(frames["emotion"].nunique())
    extra = penalty(model)
    ratio = None if train_loss is None else round((float(train_loss) - extra) / float(np.log(len(classes))), 4)
    collapsed = (alive == 0) or (true > 1 and predicted <= 1) or (ratio is not None and ratio >= CHANCE_LOSS_FRACTION)
    return {
        "collapsed": bool(collapsed),
        "alive_units": alive,
        "fc_units": None if fc is None else fc.units,
        "predicted_classes": predicted,
        "true_classes": true,
        "train_loss_vs_chance": ratio,
        "regularization_penalty": round(extra, 4),
        "train_accuracy": None if train_accuracy is None else round(float(train_accuracy), 4),
        "advice": collapse_advice(train_accuracy, model_name) if collapsed else "",
    }


def penalty(model: keras.Model) -> float:
    """The L1/L2 penalty of `model`'s weights: Keras adds it to the logged loss; taken out to compare with chance."""
    return float(sum(float(loss) for loss in model.losses))


def collapse_advice(train_accuracy: float | None, model_name: str = PAPER_MODEL) -> str:
    """What to try after a collapse: more data or regularisation for an overfitted run, else COLLAPSE_ADVICE; only
    the paper's CNN is told of its own options (--dropout, --l1), which `train` refuses for every other model."""
    paper = model_name == PAPER_MODEL
    if train_accuracy is not None and train_accuracy >= OVERFIT_ACCURACY:
        regularise = "stronger regularisation (--dropout, --l1)" if paper else "stronger augmentation (--augment)"
        return OVERFIT_ADVICE.format(accuracy=train_accuracy, regularise=regularise)
    return COLLAPSE_ADVICE if paper else OTHER_COLLAPSE_ADVICE


def collapse_message(metrics: dict) -> str:
    """A loud, multi-line warning for a collapsed run's metrics (empty for a healthy run)."""
    report = metrics.get("collapse", {})
    if not metrics.get("collapsed"):
        return ""
    alive = report.get("alive_units")
    of = report.get("fc_units") or PAPER_UNITS  # a run written before fc_units was recorded: the paper's 16
    units = "" if alive is None else f"{alive} of {of} Dense units alive; "
    ratio = report.get("train_loss_vs_chance")
    loss = "" if ratio is None else f"; lowest training loss {ratio:.2f} × that of a uniform guess"
    return (
        "!" * 72 + f"\nCOLLAPSED RUN: {units}{report.get('predicted_classes')} predicted class(es) "
        f"for {report.get('true_classes')} true ones{loss}.\n{report.get('advice')}\n" + "!" * 72
    )
