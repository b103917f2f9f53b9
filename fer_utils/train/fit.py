"""The training loop, `train_run(build, data, config, out)`: checks, the fit, the scores, one run folder written whole.

The run folder (see CONTRACTS.md) is whole or absent: everything is checked before anything is built
(`fer_utils.train.checks`) and the run is written into a temporary sibling folder renamed into place when
complete. A diverged run writes nothing; a collapsed one is flagged in its metrics.

**Determinism.** `keras.utils.set_random_seed` seeds Python, NumPy and TensorFlow; `TrainConfig.deterministic`
(default) also enables op determinism, which is process-wide, cannot be switched off again and costs little on
CPU. The same seed then gives the same weights and metrics on the same machine and TensorFlow build.

**Scale-out.** Any `tf.distribute.Strategy` works (`fer_utils.train.distribute`); results match a single
device up to float summation order. Keras 3.12 under several replicas needs the first batch to split evenly
and every replica to get at least one example, so batch sizes are rounded down to a multiple of the replicas
and too short a last batch is dropped (`pipeline.replica_batching`); the test set is predicted on one device.

Sequence models train through the same `train_run` on a `sequences.ClipData`. What the recipe options cost
and bring: benchmarks/README.md, "A training recipe for expressions in the wild".
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.data.duplicates import write_train_hashes
from fer_utils.data.splits import Split, given_warnings, split_note
from fer_utils.errors import InputError
from fer_utils.evaluate.metrics import evaluate_predictions
from fer_utils.faces.crops import write_crop_spec
from fer_utils.interrupts import Stopped, signal_of, stop_on_signals
from fer_utils.models.networks import MODEL_BUILDERS, ModelBuilder, count_params, load_model
from fer_utils.registry import GIVEN_PROTOCOL, MODEL_OPTIONS, PAPER_MODEL, WILD_MODEL, WILD_OPTIONS
from fer_utils.storage.atomic import atomic_folder
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX, TRAIN_HASHES_FILE, predictions_frame
from fer_utils.train.checks import check_config, check_run_dir, check_split, check_training_frames
from fer_utils.train.config import TrainConfig
from fer_utils.train.diagnosis import check_diverged, collapse_check
from fer_utils.train.pipeline import FaceData, class_indices
from fer_utils.train.recipe import TimeBudget, accuracy, learning_rate, loss
from fer_utils.train.runs import RunFolder

# fit(config, train, val, num_classes, run, strategy, verbose, build=..., class_weight=..., train_eval=...)
# -> (model, history), as fit_model
Fit = Callable[..., tuple[keras.Model, pd.DataFrame]]

# Batches per call of Keras's compiled step: the same weights and history as one at a time, less Python
# between batches (benchmarks/results/train_speed.jsonl, the paper's CNN on 2 cores: an epoch 25.68 / 36.01 s
# at 1, 18.69 / 14.52 s at 16); a signal stops a fit after the call it arrives in.
STEPS_PER_EXECUTION = 16


@contextmanager
def retracing_unlogged() -> Iterator[None]:
    """Drop TensorFlow's "triggered tf.function retracing" warning while the block runs: Keras retraces its
    step of several batches for an epoch's shorter last call, and a kernel that trained many models takes a
    new model's step at a freed one's address for the same function. Every other log line passes."""
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
    """The fields of `config` among MODEL_OPTIONS and WILD_OPTIONS that `build` takes (a `**kwargs` wrapper:
    all of MODEL_OPTIONS and the WILD_OPTIONS set away from their defaults). A knob set away from its default
    for a builder that lacks it is an InputError: it would be recorded but never applied."""
    parameters = inspect.signature(build).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    names = {p.name for p in parameters}
    changed = {
        name for name in (*MODEL_OPTIONS, *WILD_OPTIONS) if getattr(config, name) != getattr(TrainConfig(), name)
    }
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
    """Keras's `class_weight` for `config.class_weights`: None for "none"; for "balanced", n / (classes ×
    count) per class, so that each weighs as if all were equally frequent (FER-2013: 436 disgust of 28,709)."""
    if config.class_weights == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    labels = class_indices(train, classes)
    weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=labels)
    return {i: float(w) for i, w in enumerate(weights)}


class StopBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C (or SIGTERM) during a fit ends it after the call of up to `STEPS_PER_EXECUTION` batches it
    arrives in, as `Stopped` (exit 130 or 143). Python's own handler can raise inside a TensorFlow conversion,
    which then fails with a TypeError instead of stopping. Use it as a context around `fit` and as one of its
    callbacks: `with StopBetweenBatches() as stop: model.fit(..., callbacks=[stop])`."""

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
        self.model.save_weights(self.path)


class AveragedAtStop(keras.callbacks.Callback):
    """Keras's `SwapEMAWeights(swap_on_epoch=True)` prepares the end of fit (the averages written into the
    model) only at the last of `epochs`, so a run stopped earlier would end on its raw weights. Placed after
    the callbacks that stop a run, this prepares it as Keras does at the last epoch."""

    def __init__(self, swap: keras.callbacks.SwapEMAWeights) -> None:
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.stop_training and epoch != self.params["epochs"] - 1 and self.swap._ema_weights_in_model:
            self.swap._finalize_ema_values()


class InferenceScores(keras.callbacks.Callback):
    """After every epoch, scores `batches` (the training frames, neither shuffled nor augmented) as Keras
    scores the validation side, and logs each metric as `train_eval_<metric>`. Keras's logged `accuracy` is a
    running mean with dropout on and changing weights, so its gap to `val_accuracy` misleads (0.602 logged
    against 0.655 in inference mode for chapter 5's remedy)."""

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
    strategy: tf.distribute.Strategy | None = None,
    verbose: int | str = 2,
    build: ModelBuilder | None = None,
    class_weight: dict[int, float] | None = None,
    train_eval: tf.data.Dataset | None = None,
) -> tuple[keras.Model, pd.DataFrame]:
    """Compile the configured model and fit it for up to `config.epochs`, with early
    stopping on the validation loss (the training loss without `val`), and save the
    run's model. Returns that model and the history, one row per epoch."""
    steps = batches_per_epoch(train)
    with (strategy or tf.distribute.get_strategy()).scope():
        model = compile_model(config, num_classes, build, steps)
    monitor = "val_loss" if val is not None else "loss"
    callbacks = run_callbacks(run, monitor, config.patience, config.plateau, train_eval)
    callbacks, budget = long_run(config, steps, callbacks)
    # Ctrl-C ends the fit between two batches
    with StopBetweenBatches() as stop, retracing_unlogged():
        fit = model.fit(
            train,
            validation_data=val,
            epochs=config.epochs,
            callbacks=[stop, *callbacks],
            verbose=verbose,
            class_weight=class_weight,
        )
    save_fitted(model, config, run, budget)
    return model, pd.DataFrame(fit.history).rename_axis("epoch").reset_index()


def long_run(
    config: TrainConfig, steps: int, callbacks: list[keras.callbacks.Callback]
) -> tuple[list[keras.callbacks.Callback], list[TimeBudget]]:
    """`callbacks` with what the config asks of a long run around them: Keras's average of the weights
    (`use_ema`, also when a run stops early: `AveragedAtStop`) and a time budget, returned too."""
    budget = [TimeBudget(config.time_budget, config.epochs, steps)] if config.time_budget else []
    if not config.use_ema:
        return [*callbacks, *budget], budget
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    return [swap, *callbacks, *budget, AveragedAtStop(swap)], budget


def save_fitted(model: keras.Model, config: TrainConfig, run: RunFolder, budget: list[TimeBudget]) -> None:
    """Save the fitted model in `run`: the best epoch's (early stopping put its weights back), or the last
    epoch's with `config.keep == "last"` (the best's weights beside it); and the time budget's record."""
    if config.keep == "last":
        model.save_weights(run.best_weights_file)
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
    """Median seconds per image of one training pass of each compiled model over `images` held in memory:
    an epoch's cost on this machine, without the input pipeline. The models take turns, pass after pass, so
    that a load that changes meanwhile slows them all alike."""
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
    """Class probabilities for every image of `dataset` ((images, labels) batches), in order, averaged over
    the views of test-time augmentation `tta` (`evaluate.tta`). Batch by batch, not `model.predict`, which
    retraces per model and prints warnings into a page that trains many runs."""
    from fer_utils.evaluate.tta import check_tta, tta_probabilities

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
    """Train the network `build` makes (None: the registry's builder of `config.model`) on `data` as `config`
    says, test it, and write the run folder `out`; returns it. `fit` compiles and fits the model (default
    `fit_model`; a chapter passes the one it shows). Everything is checked first (InputError); `out` then
    holds a whole run or is left as it was. The dataset's own split is said in one line, with a WARNING per
    class its tested side lacks. `distribution` (`distribute.distribution_record`) goes into config.json.
    """
    check_config(config)
    check_run_dir(out)
    build = build or MODEL_BUILDERS[config.model]
    model_options(config, build)  # a knob the builder lacks fails now, before any work
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
        _fit_and_test(
            RunFolder(tmp),
            build,
            data,
            config,
            split,
            classes,
            fit or fit_model,
            strategy or tf.distribute.get_strategy(),
            verbose,
            distribution,
        )
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
    fit: Fit,
    strategy: tf.distribute.Strategy,
    verbose: int | str,
    distribution: Mapping[str, object] | None = None,
) -> None:
    """Train with `fit`, test the best epoch's and the last epoch's weights and write every run file into
    `run` (a fresh folder)."""
    seed_everything(config.seed, config.deterministic)
    replicas = strategy.num_replicas_in_sync
    has_val = split.val is not None and len(split.val) > 0
    train_batches = data.batches(split.train, classes, config, training=True, replicas=replicas)
    val_batches = data.batches(split.val, classes, config, replicas=replicas) if has_val else None
    # the training side scored as the val side is (off in the wild recipe, for time)
    train_eval = data.batches(split.train, classes, config, replicas=replicas) if config.score_train else None
    run.classes_file.write_text(json.dumps(list(classes)), encoding="utf-8")
    start = time.perf_counter()
    weights = class_weight_map(config, split.train, classes)
    model, history = fit(
        config,
        train_batches,
        val_batches,
        len(classes),
        run,
        strategy,
        verbose,
        build=build,
        class_weight=weights,
        train_eval=train_eval,
    )
    seconds = time.perf_counter() - start
    check_diverged(history, config)
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
            "duplicates": split.duplicates,  # the crops' duplicate audit on this split (duplicates.audited_split)
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
    train_accuracy = float(history["accuracy"].max()) if "accuracy" in history else None
    collapse = collapse_check(
        best, test_batches, probabilities, classes, split.test, float(history["loss"].min()), train_accuracy
    )
    best.load_weights(run.last_weights_file)  # the last epoch's weights, as they were before the restore
    last = evaluate_predictions(split.test, predict_batches(best, test_batches), classes)
    scores = {}
    if run.best_weights_file.is_file():  # the model holds the last epoch's: score the best epoch's too
        best.load_weights(run.best_weights_file)
        scores["test_best_epoch"] = evaluate_predictions(split.test, predict_batches(best, test_batches), classes)
    metrics = {
        "test": evaluate_predictions(split.test, probabilities, classes),
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


def _write_json(path: Path, value: object) -> None:
    """Write `value` as indented JSON."""
    path.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
