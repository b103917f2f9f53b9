"""The tf.data input pipeline over a preprocessing manifest and the training loop, one folder per run.

A run folder (its files are named in fer_utils.runs) holds the best model, the classes, the config
(fer_utils.train_config.TrainConfig), the history, the test metrics and the test predictions.
**Nothing is half-written:** the config and the frames are checked before anything is built
(fer_utils.train_checks: at least two classes, every crop on disk, sane numbers), an existing non-empty
folder is never reused, and the run is written into a temporary sibling folder that is renamed into
place only when complete (`fer_utils.atomic.atomic_folder`). A diverged run writes nothing, and a
collapsed one is flagged in its metrics (fer_utils.diagnosis).

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
set is always predicted whole, on one device.

**Recipe options** (all off by default, so a run without them is the run it always was): augmentation
with a configurable strength (`augment_rotation`, `augment_shift`, `augment_zoom`; the default strength
is the first, light preset, registry.TRAINING_RECIPES["wild"] holds the stronger one of Arriaga et al.
2017), class weights from scikit-learn's `compute_class_weight` (`class_weights="balanced"`: rare
classes such as disgust count more in the loss) and a plateau schedule (`plateau` epochs without
progress halve Adam's learning rate, recorded per epoch in history.csv). benchmarks/README.md,
"A training recipe for expressions in the wild", has what they cost and bring.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.atomic import atomic_folder
from fer_utils.crop_spec import write_crop_spec
from fer_utils.diagnosis import check_diverged, collapse_check
from fer_utils.errors import DatasetError, TrainingError
from fer_utils.evaluation import evaluate_predictions
from fer_utils.manifest import usable_frames
from fer_utils.models import MODEL_BUILDERS, ModelBuilder, count_params, load_model
from fer_utils.preprocess_folder import folder_crop_spec
from fer_utils.registry import PAPER_BATCH_SIZE, PAPER_MODEL
from fer_utils.run_files import predictions_frame
from fer_utils.runs import RunFolder
from fer_utils.splits import Split, split_frames
from fer_utils.train_checks import check_config, check_crops, check_run_dir, check_split_classes, check_training_frames
from fer_utils.train_config import TrainConfig


@dataclass
class RunResult:
    """What a run produced: its folder, the best model, the classes, the history and the test metrics."""

    run_dir: Path
    model: keras.Model
    classes: list[str]
    history: pd.DataFrame
    metrics: dict = field(default_factory=dict)


def class_indices(frames: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """Each frame's emotion as an index into `classes`; an emotion not in `classes` is a DatasetError."""
    unknown = sorted(set(frames["emotion"]) - set(classes))
    if unknown:
        raise DatasetError(f"emotions {unknown} are not among the model's classes {list(classes)}")
    lookup = {name: i for i, name in enumerate(classes)}
    return frames["emotion"].map(lookup).to_numpy(dtype=np.int32)


def _decoder(image_size: tuple[int, int] | None = None):
    """A tf.data map function: PNG path → (H, W, 1) raw pixels: the crop as preprocessing cut it, uint8 at its
    own side (the model resizes it itself: `models._inputs`), or float32 resized to `image_size` (bilinear, the
    model's own resizer) for crops that share no side or a model that takes one side only."""

    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_png(tf.io.read_file(path), channels=1)
        if image_size is not None:
            image = tf.image.resize(image, tuple(image_size))  # float32; a no-op copy at the same size
            image.set_shape((*image_size, 1))
        return image, label

    return decode


def _augmenter(seed: int, rotation: float = 0.0, shift: float = 0.05, zoom: float = 0.05) -> keras.Sequential:
    """Augmentation (off by default: the paper uses none): horizontal flip, ±`shift` translation, ±`zoom`
    zoom (fractions of the side; the light default 5 %), and a rotation of ±`rotation` degrees when given
    (its layer is left out at 0, so the light preset draws exactly the transforms it always drew)."""
    rotate = [keras.layers.RandomRotation(rotation / 360, seed=seed + 3)] if rotation else []
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            *rotate,
            keras.layers.RandomTranslation(shift, shift, seed=seed + 1),
            keras.layers.RandomZoom(zoom, seed=seed + 2),
        ],
        name="augment",
    )


def make_dataset(
    frames: pd.DataFrame,
    root: Path,
    classes: Sequence[str],
    *,
    batch_size: int = PAPER_BATCH_SIZE,
    shuffle: bool = False,
    seed: int = 0,
    augment: bool = False,
    cache: bool = True,
    image_size: tuple[int, int] | None = None,
    drop_remainder: bool = False,
    rotation: float = 0.0,
    shift: float = 0.05,
    zoom: float = 0.05,
) -> tf.data.Dataset:
    """Batches of (raw pixels, class index) from the crops of `frames` (paths relative to `root`).

    Decode in parallel (order kept), cache the decoded crops in memory (uint8, at their own side: the
    model resizes them itself; `image_size` resizes them here instead, see `_decoder`), reshuffle every
    epoch from `seed`, batch as float32, optionally augment (`rotation`, `shift`, `zoom`: see
    `_augmenter`), and prefetch so the model never waits for input.
    """
    missing = [p for p in frames["image"].head(1) if not (Path(root) / p).is_file()]
    if missing:
        raise DatasetError(f"crop {Path(root) / missing[0]} does not exist; is {root} the crops folder?")
    paths = [str(Path(root) / p) for p in frames["image"]]
    ds = tf.data.Dataset.from_tensor_slices((paths, class_indices(frames, classes)))
    ds = ds.map(_decoder(image_size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment:
        augmenter = _augmenter(seed, rotation, shift, zoom)
        ds = ds.map(lambda x, y: (augmenter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_images(frames: pd.DataFrame, root: Path, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """All crops of `frames` as one (N, H, W, 1) float32 array of raw pixels (for in-memory use): at their
    own side, or resized to `image_size` (see `_decoder`)."""
    if not len(frames):
        spec = folder_crop_spec(root)
        side = tuple(image_size) if image_size is not None else (spec.side,) * 2 if spec else (0, 0)
        return np.zeros((0, *side, 1), "float32")
    ds = make_dataset(frames, root, sorted(set(frames["emotion"])), batch_size=256, cache=False, image_size=image_size)
    return np.concatenate([x.numpy() for x, _ in ds])


def replica_batching(n: int, batch_size: int, replicas: int) -> tuple[int, bool]:
    """(batch size, drop_remainder) for `n` frames so that Keras can split every batch over `replicas`."""
    if replicas <= 1:
        return batch_size, False
    size = max(replicas, min(batch_size, n) // replicas * replicas)
    return size, 0 < n % size < replicas


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TensorFlow ops deterministic."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def compile_model(config: TrainConfig, num_classes: int, build: ModelBuilder | None = None) -> keras.Model:
    """Build the model with `build` (default: the registry's builder of `config.model`) for
    `num_classes`, and compile it with Adam and cross-entropy. A chapter passes the builder its own
    cell defined, so that an edit there changes the model trained."""
    options = (
        {"dropout": tuple(config.dropout), "l1": config.l1, "init": config.init} if config.model == PAPER_MODEL else {}
    )
    build = build or MODEL_BUILDERS[config.model]
    model = build(num_classes=num_classes, input_shape=(*config.image_size, 1), **options)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
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


def run_callbacks(run: RunFolder, monitor: str, patience: int, plateau: int = 0) -> list[keras.callbacks.Callback]:
    """Stop at a NaN loss (a diverged run) or when `monitor` has not improved for `patience` epochs, keep
    the best epoch's weights and put them back at the end (in memory: a model file written at every
    improvement cost a sixth of a small run), optionally halve the learning rate (down to 1e-6) after
    `plateau` epochs without progress (0: off; the rate of each epoch then lands in the history), and
    log every epoch to the run's history file."""
    halve = keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=plateau, min_lr=1e-6)
    schedule = [halve] if plateau else []
    return [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True),
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
) -> tuple[keras.Model, pd.DataFrame]:
    """Compile the configured model (in `strategy`'s scope) and fit it for up to `config.epochs`, with
    early stopping on the validation loss (the training loss without `val`) and the configured plateau
    schedule, weighting each class's loss by `class_weight` (see `class_weight_map`), and save the best
    epoch's model in `run`. `build` makes the network (see `compile_model`). Returns that model and the
    history, one row per epoch."""
    with (strategy or tf.distribute.get_strategy()).scope():
        model = compile_model(config, num_classes, build)
    monitor = "val_loss" if val is not None else "loss"
    fit = model.fit(
        train,
        validation_data=val,
        epochs=config.epochs,
        callbacks=run_callbacks(run, monitor, config.patience, config.plateau),
        verbose=verbose,
        class_weight=class_weight,
    )
    model.save(run.model)
    return model, pd.DataFrame(fit.history).rename_axis("epoch").reset_index()


def _write_json(path: Path, value: object) -> None:
    """Write `value` as indented JSON."""
    path.write_text(json.dumps(value, indent=2, default=str))


def predict_batches(model: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """Class probabilities for every image of `dataset` ((images, labels) batches), in order.

    Calls the model batch by batch instead of `model.predict`: a chapter that trains many runs in one
    kernel would otherwise make TensorFlow retrace a new predict function per model and print
    warnings into the page."""
    batches = [model(images, training=False).numpy() for images, _ in dataset]
    return np.concatenate(batches) if batches else np.zeros((0, model.output_shape[-1]), dtype="float32")


def _fit_and_test(
    config: TrainConfig,
    split: Split,
    root: Path,
    run: RunFolder,
    classes: Sequence[str],
    strategy: tf.distribute.Strategy,
    verbose: int | str,
    build: ModelBuilder | None,
    fit: Callable[..., tuple[keras.Model, pd.DataFrame]] | None = None,
) -> RunResult:
    """Train (with `fit`, default `fit_model`), test and write every run file into `run` (a fresh folder)."""
    seed_everything(config.seed, config.deterministic)
    replicas = strategy.num_replicas_in_sync
    spec = folder_crop_spec(root)  # how the crops were cut; the model resizes them itself
    sized = None if spec else config.image_size  # crops without a spec (made by hand) are sized as before

    def dataset(frames: pd.DataFrame, **options: object) -> tf.data.Dataset:
        size, drop = replica_batching(len(frames), config.batch_size, replicas)
        return make_dataset(frames, root, classes, batch_size=size, drop_remainder=drop, image_size=sized, **options)

    strength = {"rotation": config.augment_rotation, "shift": config.augment_shift, "zoom": config.augment_zoom}
    train_ds = dataset(split.train, shuffle=True, seed=config.seed, augment=config.augment, **strength)
    has_val = split.val is not None and len(split.val) > 0
    val_ds = dataset(split.val) if has_val else None
    run.classes_file.write_text(json.dumps(list(classes)))
    start = time.perf_counter()
    weights = class_weight_map(config, split.train, classes)
    model, history = (fit or fit_model)(config, train_ds, val_ds, len(classes), run, strategy, verbose, build, weights)
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
        },
    )
    if spec is not None:  # how the faces were cropped (runs.RunFolder.crop_spec, its recognizer)
        write_crop_spec(run.path, spec)
    monitor = "val_loss" if has_val else "loss"
    best = load_model(run.model)
    test_ds = make_dataset(split.test, root, classes, batch_size=config.batch_size, image_size=sized)
    probabilities = predict_batches(best, test_ds)
    train_accuracy = float(history["accuracy"].max()) if "accuracy" in history else None
    collapse = collapse_check(
        best, test_ds, probabilities, classes, split.test, float(history["loss"].min()), train_accuracy
    )
    metrics = {
        "test": evaluate_predictions(split.test, probabilities, classes),
        "collapsed": collapse.pop("collapsed"),
        "collapse": collapse,
        "best_epoch": int(history[monitor].idxmin()),
        "epochs_run": int(len(history)),
        "monitor": monitor,
        "train_seconds": round(seconds, 2),
    }
    predictions_frame(split.test, probabilities, classes).to_csv(run.predictions_file, index=False)
    _write_json(run.metrics_file, metrics)
    return RunResult(run_dir=run.path, model=best, classes=list(classes), history=history, metrics=metrics)


def train_on_split(
    config: TrainConfig,
    split: Split,
    root: Path,
    run_dir: Path,
    classes: Sequence[str],
    strategy: tf.distribute.Strategy | None = None,
    verbose: int | str = 2,
    build: ModelBuilder | None = None,
    fit: Callable[..., tuple[keras.Model, pd.DataFrame]] | None = None,
) -> RunResult:
    """Train on `split.train`, pick the best epoch on `split.val` (or training loss), test on `split.test`.

    Everything is checked first (TrainingError); the run is written into a temporary sibling folder
    renamed to `run_dir` when complete, so `run_dir` either holds a whole run or is left as it was.
    """
    check_config(config)
    check_run_dir(run_dir)
    if len(classes) < 2:
        raise TrainingError(f"training needs at least 2 classes, got {list(classes)}")
    for part in (split.train, split.test, *([split.val] if split.val is not None else [])):
        check_crops(part, root)
    if split.train.empty or split.test.empty:
        raise TrainingError(f"the split left {len(split.train)} training and {len(split.test)} test frames")
    check_split_classes(split, classes, config)
    final = Path(run_dir)
    with atomic_folder(final) as tmp:  # also sweeps what killed runs left beside it
        result = _fit_and_test(
            config, split, root, RunFolder(tmp), classes, strategy or tf.distribute.get_strategy(), verbose, build, fit
        )
        check_run_dir(final)  # nothing appeared there while we trained
        if final.is_dir():
            final.rmdir()  # empty: replaced by the complete run
    result.run_dir = final
    return result


def train_run(
    config: TrainConfig,
    frames: pd.DataFrame,
    root: Path,
    run_dir: Path,
    strategy: tf.distribute.Strategy | None = None,
    verbose: int | str = 2,
    build: ModelBuilder | None = None,
    fit: Callable[..., tuple[keras.Model, pd.DataFrame]] | None = None,
) -> RunResult:
    """Check the config, the frames and the run folder, split the usable frames with the configured
    protocol and seed, then train and test (see `train_on_split`); `build` makes the network
    (default: the registry's builder of `config.model`), `fit` compiles and fits it (default: `fit_model`;
    a chapter passes the one its cell shows)."""
    check_config(config)
    check_run_dir(run_dir)
    frames = usable_frames(frames)
    classes = check_training_frames(frames, root)
    split = split_frames(frames, config.protocol, config.test_size, config.val_size, config.seed)
    return train_on_split(
        config, split, root, run_dir, classes, strategy=strategy, verbose=verbose, build=build, fit=fit
    )
