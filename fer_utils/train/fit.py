"""The training loop, `train_run(build, data, config, out)`: checks, the fit, the scores, one run folder written whole.

A run folder (its files are named in fer_utils.train.runs) holds the best model, the classes, the config
(fer_utils.train.config.TrainConfig), the history, the test metrics and the test predictions.
**Nothing is half-written:** the config and the frames are checked before anything is built
(fer_utils.train.checks: at least two classes, every crop on disk, sane numbers), an existing non-empty
folder is never reused, and the run is written into a temporary sibling folder that is renamed into
place only when complete (`fer_utils.storage.atomic.atomic_folder`). A diverged run writes nothing, and a
collapsed one is flagged in its metrics (fer_utils.train.diagnosis).

**Determinism.** `keras.utils.set_random_seed(seed)` seeds Python, NumPy and TensorFlow (weights,
dropout, shuffling); with `TrainConfig.deterministic` (default) we also call
`tf.config.experimental.enable_op_determinism()`, which makes TensorFlow pick deterministic kernels
and run tf.data deterministically. It is process-wide and cannot be switched off again; on CPU it
costs little. The same seed then gives the same weights and metrics on the same machine and
TensorFlow build (not across different hardware).

**Scale-out.** `strategy` takes any `tf.distribute.Strategy` (e.g. MirroredStrategy over several
GPUs or logical CPU devices): the model is built and compiled in its scope and Keras splits each
global batch across the replicas. Results match a single-device run up to float summation order.
Keras 3.12 under a multi-replica strategy needs the first batch to split evenly and every replica
to get at least one example, so there batch sizes are rounded down to a multiple of the replica
count and a last batch with fewer frames than replicas is dropped (`replica_batching`); the test
set is always predicted whole, on one device. `train --strategy` makes the strategy from the command line
(fer_utils.train.distribute) and records how it spread the run (`distribution`).

**Sequence models** (`registry.SEQUENCE_MODELS`, the CNN-LSTM) train through the same `train_run` on a
`sequences.ClipData`: it splits the frames as any `FaceData` does (the clip, subject or given protocol keeps a
clip on one side; it refuses the random one), then makes each side one row per clip fed N frames at a time;
the test predictions, the metrics and the sizes in config.json are then per clip.

**Recipe options** (all off by default, so a run without them is the run it always was): augmentation
with a configurable strength (`augment_rotation`, `augment_shift`, `augment_zoom`, fed to the pipeline as the
config's `Augmentation`; the default strength is the first, light one, the preset "arriaga" holds the
stronger one of Arriaga et al. 2017), class weights from scikit-learn's `compute_class_weight` (`class_weights="balanced"`: rare
classes such as disgust count more in the loss) and a plateau schedule (`plateau` epochs without
progress halve Adam's learning rate, recorded per epoch in history.csv). benchmarks/README.md,
"A training recipe for expressions in the wild", has what they cost and bring.
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

# Batches Keras runs per call of its compiled step: the same weights and history as one at a time, with less
# Python between the batches (a 45-epoch run at 32x32 on 2 cores: 20.9 s at 1, 19.1 s at 32); a signal stops a
# fit after the call it arrives in (`StopBetweenBatches`).
STEPS_PER_EXECUTION = 16


@contextmanager
def retracing_unlogged() -> Iterator[None]:
    """Drop TensorFlow's warning that a function "triggered tf.function retracing" while the block runs: Keras's
    step of several batches is traced again for an epoch's shorter last call, and in a kernel that has trained
    many models TensorFlow counts a new model's step at a freed one's address as the same function (chapter 7's
    page showed the warning). Every other log line passes."""
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
    """The fields of `config` among MODEL_OPTIONS and WILD_OPTIONS that `build` takes (all of MODEL_OPTIONS when
    it takes `**kwargs`, e.g. a wrapper around a builder, and the WILD_OPTIONS set away from their defaults): each
    builder gets the knobs it has. A knob set away from its default for a builder that lacks it is a
    InputError: it would be recorded but never applied."""
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
    for `num_classes`, with the knobs of `config` it takes (`model_options`), and
    compile it with Adam (at the config's rate, or on its schedule over epochs of
    `steps_per_epoch` steps) and cross-entropy (label-smoothed when asked: `recipe`). A
    chapter passes the builder its own cell defined, so that an edit there changes the
    model trained."""
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
    """Keras's `class_weight` (class index → weight) for `config.class_weights`: None for "none"; for
    "balanced", scikit-learn's n / (classes × count) per class of the training side, so that every class
    weighs as much in the loss as if the classes were equally frequent (FER-2013: 436 disgust faces of
    28,709)."""
    if config.class_weights == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    labels = class_indices(train, classes)
    weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=labels)
    return {i: float(w) for i, w in enumerate(weights)}


class StopBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C (or SIGTERM) during a fit ends it at the next batch boundary (after the call of up to
    `STEPS_PER_EXECUTION` batches it arrives in), as KeyboardInterrupt (`Stopped`, which
    knows the signal: the command exits 130 or 143). Python's own handler raises wherever the main thread is, and
    inside Keras's loop that can be a TensorFlow conversion, which then fails with a TypeError instead of
    stopping (a CI run of `train` ended so). Use it as a context
    around `fit` and as one of its callbacks: `with StopBetweenBatches() as stop: model.fit(..., callbacks=[stop])`
    (`interrupts.stop_on_signals` holds the signal meanwhile)."""

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
    """Keras's `SwapEMAWeights(swap_on_epoch=True)` leaves the averaged weights in the model at the end of every
    epoch and prepares the end of fit (which writes the optimizer's averages into the model) only at the last
    epoch of `epochs`; a run stopped earlier (early stopping, a time budget) would end on its raw weights. Placed
    after the callbacks that stop a run, this prepares it as Keras does at the last epoch."""

    def __init__(self, swap: keras.callbacks.SwapEMAWeights) -> None:
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.stop_training and epoch != self.params["epochs"] - 1 and self.swap._ema_weights_in_model:
            self.swap._finalize_ema_values()


class InferenceScores(keras.callbacks.Callback):
    """After every epoch, scores `batches` (the training frames, neither shuffled nor augmented) with
    `model.evaluate`, as Keras scores the validation side, and logs each metric as `train_eval_<metric>`.

    Keras logs a training epoch's `accuracy` as the running mean over batches scored with dropout on by
    changing weights; `val_accuracy` is scored once, with dropout off. Their difference is then not the
    generalisation gap (issue 46: 0.602 logged against 0.655 in inference mode for chapter 5's remedy).
    Placed before the history logger, the scores land in history.csv."""

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
    """Score `train_eval` (the training frames, unshuffled) in inference mode after
    every epoch, as the validation side is scored
    (`InferenceScores`: `train_eval_accuracy` in the history),
    stop at a NaN loss (a diverged run) or when `monitor` has not improved for
    `patience` epochs, keep the best epoch's weights and put them back at the end (in
    memory: a model file written at every improvement cost a sixth of a small run),
    after writing the last epoch's weights to the run (first in the list after the
    scores, so before that restore), optionally halve the learning rate (down to 1e-6)
    after `plateau` epochs without progress (0: off; the rate of each epoch then lands
    in the history), and log every epoch to the run's history file."""
    halve = keras.callbacks.ReduceLROnPlateau(
        monitor=monitor,
        factor=0.5,
        patience=plateau,
        min_lr=1e-6,
    )
    schedule = [halve] if plateau else []
    scores = [InferenceScores(train_eval)] if train_eval is not None else []
    return [
        # first: every later callback and the history see the training side's
        # inference scores
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
    stopping on the validation loss (the training loss without `val`), scoring the
    training frames `train_eval` in inference mode after every epoch (`run_callbacks`),
    and save the run's model (`save_fitted`). Returns that model and the history, one
    row per epoch. What a long run needs besides (a time budget, Keras's weight
    average, Ctrl-C between batches, several devices) is `long_run` and
    `StopBetweenBatches`."""
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
    """`callbacks` with what a long run asks of its config around them: Keras's average of the weights
    (`use_ema`: every epoch is scored, and its weights kept, with the averaged weights, also when a run stops
    before its last epoch: `AveragedAtStop`) and a time budget (`recipe.TimeBudget`), returned too."""
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
        run.time_budget_file.write_text(json.dumps(timer.record, indent=2))


def batches_per_epoch(dataset: tf.data.Dataset) -> int:
    """The batches `dataset` gives per epoch (counted by reading it when tf.data cannot tell)."""
    known = int(dataset.cardinality())
    return known if known >= 0 else sum(1 for _ in dataset)


def training_seconds_per_image(
    models: Mapping[str, keras.Model], images: np.ndarray, labels: np.ndarray, batch_size: int, repeats: int = 3
) -> dict[str, float]:
    """Median seconds per image of one training pass of each compiled model over `images` held in memory: what
    an epoch costs per image on this machine, without the input pipeline. The models take turns, pass after
    pass (after a first pass each that traces its graph), so that a machine whose load changes meanwhile slows
    them all alike. Parameters and FLOPs are not speed; this is (chapter 7 times its models with it)."""
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
    the views of test-time augmentation `tta` (`evaluate.tta`; "none": the image alone).

    Calls the model batch by batch instead of `model.predict`: a chapter that trains many runs in one
    kernel would otherwise make TensorFlow retrace a new predict function per model and print
    warnings into the page."""
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
    """Train the network `build` makes (None: the registry's builder of `config.model`) on `data` (its
    frames, split and input pipeline: `pipeline.FaceData`) as `config` says, test it, and write the run
    folder `out`; returns it (`runs.RunFolder`). `fit` compiles and fits the model (default `fit_model`; a
    chapter passes the one it shows).

    Everything is checked first (InputError): the config, the frames and their crops on disk, the
    split's classes, that `out` holds nothing. A dataset with its own split is trained on it unless the
    config names a protocol (`splits.resolve_protocol`); the dataset's split is said in one printed line, with
    a WARNING for each class its tested side lacks (`splits.given_warnings`); the protocol used is the one
    config.json records. The split goes through the crops' duplicate audit (`FaceData.split_for`): copies of
    one image on one side, the test copies of training crops marked (left out with `config.clean_test`). The run is written into a temporary sibling folder renamed to `out` when
    complete, so `out` either holds a whole run or is left as it was. `distribution` (how `train --strategy`
    spread the run: `fer_utils.train.distribute.distribution_record`) is recorded as config.json's "distribution".
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
    # the training side scored as the val side is (config.score_train; off in the wild recipe, for time)
    train_eval = data.batches(split.train, classes, config, replicas=replicas) if config.score_train else None
    run.classes_file.write_text(json.dumps(list(classes)))
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
    if run.best_weights_file.is_file():  # the model holds the last epoch's: score the best epoch's too
        best.load_weights(run.best_weights_file)
        scores = {"test_best_epoch": evaluate_predictions(split.test, predict_batches(best, test_batches), classes)}
    else:
        scores = {}
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
    path.write_text(json.dumps(value, indent=2, default=str))
