"""The tf.data input pipeline over a preprocessing manifest and the training loop, one folder per run.

A run folder (its files are named in fer_utils.runs) holds the best model, the classes, the config,
the history, the test metrics and the test predictions. **Nothing is half-written:** the config and
the frames are checked before anything is built (`check_config`, `check_training_frames`: at least two
classes, every crop on disk, sane numbers), an existing non-empty folder is never reused, and the
run is written into a temporary sibling folder that is renamed into place only when complete.

**Collapse.** A run whose Dense(16) ReLU units are all dead on the test images, that predicts one
class for every test frame, or whose training loss never left that of a uniform guess (ln classes)
has learnt nothing, whatever its accuracy says; `collapse_check` records it in metrics.json
(`collapsed`, `collapse`) with advice, and the CLI prints it loudly.

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
import math
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.data import classes_in
from fer_utils.errors import DatasetError, TrainingError
from fer_utils.evaluation import evaluate_predictions, predicted_labels
from fer_utils.manifest import usable_frames
from fer_utils.models import MODEL_BUILDERS, ModelBuilder, check_input_size, count_params, load_model
from fer_utils.outputs import remove_dead_temporaries
from fer_utils.preprocess_folder import crop_settings
from fer_utils.registry import (
    CLASS_WEIGHTS,
    DEFAULT_VAL_SIZE,
    INITS,
    PAPER_BATCH_SIZE,
    PAPER_IMAGE_SIZE,
    PAPER_INIT,
    PAPER_MODEL,
    PAPER_PROTOCOL,
    PAPER_TEST_SIZE,
)
from fer_utils.runs import RunFolder, predictions_frame
from fer_utils.splits import Split, split_frames

# The learning rate and dropout that TrainConfig uses instead of the paper's (registry.PAPER_LEARNING_RATE,
# registry.PAPER_DROPOUT); benchmarks/README.md, "Training recipe across seeds", has the measurement.
DEFAULT_LEARNING_RATE = 3e-4
DEFAULT_DROPOUT = (0.0, 0.0, 0.3)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, saved as the run's config.json: the model, the optimiser
    (Adam with `learning_rate`), the paper CNN's dropout, L1 and initialiser, the split (protocol, sizes,
    seed), the input size, early stopping, augmentation (on/off and its strength: rotation in degrees,
    shift and zoom as fractions of the side, plus a horizontal flip), class weighting ("none" or
    "balanced") and the plateau schedule (`plateau` epochs without progress halve the learning rate; 0
    is off). Defaults: the paper's model, batch, input size and random 80/20 split, with
    DEFAULT_LEARNING_RATE and DEFAULT_DROPOUT, no augmentation, no class weights, no schedule.
    """

    model: str = PAPER_MODEL
    epochs: int = 30
    batch_size: int = PAPER_BATCH_SIZE
    learning_rate: float = DEFAULT_LEARNING_RATE
    dropout: tuple[float, float, float] = DEFAULT_DROPOUT
    l1: float = 0.0
    seed: int = 0
    patience: int = 5
    protocol: str = PAPER_PROTOCOL
    test_size: float = PAPER_TEST_SIZE
    val_size: float = DEFAULT_VAL_SIZE
    image_size: tuple[int, int] = PAPER_IMAGE_SIZE
    augment: bool = False
    deterministic: bool = True
    init: str = PAPER_INIT
    augment_rotation: float = 0.0
    augment_shift: float = 0.05
    augment_zoom: float = 0.05
    class_weights: str = "none"
    plateau: int = 0


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


def _decoder(image_size: tuple[int, int]):
    """A tf.data map function: PNG path → (H, W, 1) float32 raw pixels at `image_size`."""
    height, width = image_size

    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_png(tf.io.read_file(path), channels=1)
        image = tf.image.resize(image, (height, width))  # float32; a no-op copy at the same size
        image.set_shape((height, width, 1))
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
    image_size: tuple[int, int] = PAPER_IMAGE_SIZE,
    drop_remainder: bool = False,
    rotation: float = 0.0,
    shift: float = 0.05,
    zoom: float = 0.05,
) -> tf.data.Dataset:
    """Batches of (raw pixels, class index) from the crops of `frames` (paths relative to `root`).

    Decode in parallel (order kept), cache the decoded images in memory, reshuffle every epoch from
    `seed`, batch, optionally augment (`rotation`, `shift`, `zoom`: see `_augmenter`), and prefetch so
    the model never waits for input.
    """
    missing = [p for p in frames["image"].head(1) if not (Path(root) / p).is_file()]
    if missing:
        raise DatasetError(f"crop {Path(root) / missing[0]} does not exist; is {root} the crops folder?")
    paths = [str(Path(root) / p) for p in frames["image"]]
    ds = tf.data.Dataset.from_tensor_slices((paths, class_indices(frames, classes)))
    ds = ds.map(_decoder(tuple(image_size)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment:
        augmenter = _augmenter(seed, rotation, shift, zoom)
        ds = ds.map(lambda x, y: (augmenter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_images(frames: pd.DataFrame, root: Path, image_size: tuple[int, int] = PAPER_IMAGE_SIZE) -> np.ndarray:
    """All crops of `frames` as one (N, H, W, 1) float32 array of raw pixels (for in-memory use)."""
    ds = make_dataset(frames, root, sorted(set(frames["emotion"])), batch_size=256, cache=False, image_size=image_size)
    return np.concatenate([x.numpy() for x, _ in ds]) if len(frames) else np.zeros((0, *image_size, 1), "float32")


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


def check_config(config: TrainConfig) -> None:
    """TrainingError naming the first field of `config` that cannot train (checked before anything is built)."""
    problems = [
        (config.model in MODEL_BUILDERS, f"model {config.model!r} is not one of {sorted(MODEL_BUILDERS)}"),
        (config.epochs >= 1, f"epochs must be at least 1, got {config.epochs}"),
        (config.batch_size >= 1, f"batch size must be at least 1, got {config.batch_size}"),
        (
            len(config.image_size) == 2 and min(config.image_size) >= 1,
            f"image size must be two sides of at least 1 pixel, got {config.image_size}",
        ),
        (
            math.isfinite(config.learning_rate) and config.learning_rate > 0,
            f"learning rate must be a finite number above 0, got {config.learning_rate}",
        ),
        (config.l1 >= 0, f"the L1 factor must be 0 (off) or positive, got {config.l1}"),
        (
            len(config.dropout) == 3 and all(0 <= r < 1 for r in config.dropout),
            f"dropout needs three rates in [0, 1), got {config.dropout}",
        ),
        (config.patience >= 0, f"patience must be 0 or more epochs, got {config.patience}"),
        (
            0 < config.test_size < 1 and 0 <= config.val_size < 1 and config.test_size + config.val_size < 1,
            f"test size {config.test_size} and val size {config.val_size} must be fractions summing below 1",
        ),
        (config.init in INITS, f"initialiser {config.init!r} is not one of {INITS}"),
        *augment_problems(config),
        (
            config.class_weights in CLASS_WEIGHTS,
            f"class weights {config.class_weights!r} are not one of {CLASS_WEIGHTS}",
        ),
        (config.plateau >= 0, f"plateau must be 0 (off) or a number of epochs, got {config.plateau}"),
        (
            config.plateau == 0 or config.plateau < config.patience,
            f"plateau {config.plateau} must be shorter than patience {config.patience}: early stopping would end "
            "the run before the learning rate is ever lowered; lower --plateau or raise --patience",
        ),
    ]
    for ok, message in problems:
        if not ok:
            raise TrainingError(message)
    check_input_size(config.model, config.image_size)


def augment_problems(config: TrainConfig) -> list[tuple[bool, str]]:
    """(ok, message) pairs for the augmentation strength: a rotation within ±180 degrees, shift and zoom
    fractions in [0, 1) (a zoom of 1 would shrink a face to nothing)."""
    return [
        (
            math.isfinite(config.augment_rotation) and 0 <= config.augment_rotation <= 180,
            f"augment_rotation must be 0 to 180 degrees, got {config.augment_rotation}",
        ),
        (
            math.isfinite(config.augment_shift) and 0 <= config.augment_shift < 1,
            f"augment_shift must be a fraction of the side in [0, 1), got {config.augment_shift}",
        ),
        (
            math.isfinite(config.augment_zoom) and 0 <= config.augment_zoom < 1,
            f"augment_zoom must be a fraction of the side in [0, 1), got {config.augment_zoom}",
        ),
    ]


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


def check_crops(frames: pd.DataFrame, root: Path) -> None:
    """TrainingError naming the crops of `frames` that are not on disk under `root` (every row is checked)."""
    missing = [p for p in frames["image"] if not (Path(root) / p).is_file()]
    if missing:
        raise TrainingError(
            f"{len(missing)} of {len(frames)} crops listed in the manifest are missing under "
            f"{root}, e.g. {missing[:3]}: re-run preprocess, or is {root} the crops folder?"
        )
    damaged = damaged_crops(Path(root) / p for p in frames["image"])
    if damaged:
        raise TrainingError(
            f"{len(damaged)} of {len(frames)} crops under {root} are damaged (not a whole PNG), e.g. "
            f"{[str(p) for p in damaged[:3]]}: delete them and re-run preprocess, which makes them again"
        )


def damaged_crops(paths: Iterable[Path]) -> list[Path]:
    """The crops among `paths` that are not whole, intact PNG files. Pillow's verify() reads every chunk
    and checks its CRC without decoding pixels, so a damaged crop is named before TensorFlow meets it
    mid-training with a graph error that names no file."""
    from PIL import Image

    damaged = []
    for path in paths:
        try:
            with Image.open(path, formats=["PNG"]) as image:
                image.verify()
        except (OSError, SyntaxError, ValueError):
            damaged.append(Path(path))
    return damaged


def check_training_frames(frames: pd.DataFrame, root: Path) -> list[str]:
    """The classes of `frames` (usable rows) after checking that there are at least two and that every
    crop exists under `root`; a TrainingError says what is wrong before anything is built."""
    if frames.empty:
        raise TrainingError(f"no usable crops (status ok) in the manifest of {root}")
    classes = classes_in(frames)
    if len(classes) < 2:
        raise TrainingError(
            f"training needs at least 2 classes, the frames hold only {classes} "
            f"({len(frames)} crops): a 1-class model would score 1.0 and mean nothing"
        )
    check_crops(frames, root)
    return classes


def check_split_classes(split: Split, classes: Sequence[str], config: TrainConfig) -> None:
    """TrainingError naming each class the split leaves out of training (with the protocol and seed): the
    model could never predict it, so its test accuracy would mean nothing."""
    missing = [name for name in classes if name not in set(split.train["emotion"])]
    if not missing:
        return
    if config.protocol == "given":  # the dataset's own split: its train folder (or Usage) lacks the class
        held_out = {side: df for side, df in split.sides().items() if side != "train"}
        where = "; ".join(
            f"{name}: " + ", ".join(f"{int((df['emotion'] == name).sum())} in {side}" for side, df in held_out.items())
            for name in missing
        )
        raise TrainingError(
            f"the dataset's own split (protocol given) has no training image of {missing} ({where}): the model "
            "could never predict it. Add images of that class to the train side, use --protocol random, clip or "
            "subject to split all the rows, or leave the class out"
        )
    everything = pd.concat(list(split.sides().values()))
    held = {name: everything.loc[everything["emotion"] == name, "subject"].nunique() for name in missing}
    raise TrainingError(
        f"the {config.protocol} split with seed {config.seed} leaves {missing} out of training "
        f"({', '.join(f'{name}: {n} subject(s) in all' for name, n in held.items())}): the model could never "
        "predict it. Add images of that class from more subjects, use --protocol random or clip, or leave "
        "the class out of the crops folder's manifest"
    )


def check_run_dir(run_dir: Path) -> None:
    """TrainingError if `run_dir` already holds files: a run is never written over another one."""
    folder = RunFolder(Path(run_dir))
    if folder.path.exists() and not folder.path.is_dir():
        raise TrainingError(f"{run_dir} exists and is not a folder")
    if folder.holds_anything():
        kind = "a complete run" if folder.is_complete() else "files"
        raise TrainingError(f"{run_dir} already holds {kind}; choose another run folder or delete it first")


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


def check_diverged(history: pd.DataFrame, config: TrainConfig) -> None:
    """TrainingError (status "diverged") when the training loss became NaN or infinite: Keras stopped the run
    (TerminateOnNaN) and no epoch is worth keeping; the message names the epoch and the learning rate."""
    finite = np.isfinite(history["loss"].to_numpy(dtype=np.float64))
    if finite.all():
        return
    epoch = int(np.argmin(finite)) + 1
    raise TrainingError(
        f"diverged: the training loss became {history['loss'].iloc[epoch - 1]} in epoch {epoch} with learning "
        f"rate {config.learning_rate:g} ({config.model}); nothing was written. Train again with a smaller "
        f"--learning-rate (the default is {DEFAULT_LEARNING_RATE:g})"
    )


def _write_json(path: Path, value: object) -> None:
    """Write `value` as indented JSON."""
    path.write_text(json.dumps(value, indent=2, default=str))


COLLAPSE_ADVICE = (
    "the model has learnt nothing. Try another --seed, the defaults if you changed them (Adam 3e-4 and "
    "only the last dropout, --dropout 0,0,0.3: they learnt for 5 of 5 seeds on real faces where the "
    "paper's 1e-3 and 0.3 after every stage learnt for 1), a smaller learning rate (--learning-rate) with "
    "more --epochs, or more training images; He initialisation collapsed more often, not less. "
    "Measurements: benchmarks/README.md, 'Training recipe across seeds'."
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


def predict_batches(model: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """Class probabilities for every image of `dataset` ((images, labels) batches), in order.

    Calls the model batch by batch instead of `model.predict`: a chapter that trains many runs in one
    kernel would otherwise make TensorFlow retrace a new predict function per model and print
    warnings into the page."""
    batches = [model(images, training=False).numpy() for images, _ in dataset]
    return np.concatenate(batches) if batches else np.zeros((0, model.output_shape[-1]), dtype="float32")


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
    or a lowest training loss `train_loss` still at chance (≥ CHANCE_LOSS_FRACTION × ln(classes)).

    Returns {"collapsed": bool, "alive_units": int | None, "predicted_classes": int, "true_classes": int,
    "train_loss_vs_chance": float | None, "advice": str} (advice empty when healthy; for a run whose best
    training accuracy `train_accuracy` reached OVERFIT_ACCURACY it says the run overfitted instead).
    """
    from fer_utils.explain import alive_units

    names = {layer.name for layer in model.layers}
    alive = alive_units(model, images) if "fc" in names else None
    predicted = len(set(predicted_labels(probabilities, classes))) if len(probabilities) else 0
    true = int(frames["emotion"].nunique())
    ratio = None if train_loss is None else round(float(train_loss) / float(np.log(len(classes))), 4)
    collapsed = (alive == 0) or (true > 1 and predicted <= 1) or (ratio is not None and ratio >= CHANCE_LOSS_FRACTION)
    return {
        "collapsed": bool(collapsed),
        "alive_units": alive,
        "predicted_classes": predicted,
        "true_classes": true,
        "train_loss_vs_chance": ratio,
        "train_accuracy": None if train_accuracy is None else round(float(train_accuracy), 4),
        "advice": collapse_advice(train_accuracy) if collapsed else "",
    }


def collapse_advice(train_accuracy: float | None) -> str:
    """What to try after a collapse: an overfitted run (training accuracy ≥ OVERFIT_ACCURACY) needs more
    data or regularisation; otherwise the run learnt nothing (COLLAPSE_ADVICE)."""
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


def _fit_and_test(
    config: TrainConfig,
    split: Split,
    root: Path,
    run: RunFolder,
    classes: Sequence[str],
    strategy: tf.distribute.Strategy,
    verbose: int | str,
    build: ModelBuilder | None,
) -> RunResult:
    """Train, test and write every run file into `run` (a fresh folder)."""
    seed_everything(config.seed, config.deterministic)
    replicas = strategy.num_replicas_in_sync

    def dataset(frames: pd.DataFrame, **options: object) -> tf.data.Dataset:
        size, drop = replica_batching(len(frames), config.batch_size, replicas)
        return make_dataset(
            frames, root, classes, batch_size=size, drop_remainder=drop, image_size=config.image_size, **options
        )

    strength = {"rotation": config.augment_rotation, "shift": config.augment_shift, "zoom": config.augment_zoom}
    train_ds = dataset(split.train, shuffle=True, seed=config.seed, augment=config.augment, **strength)
    has_val = split.val is not None and len(split.val) > 0
    val_ds = dataset(split.val) if has_val else None
    run.classes_file.write_text(json.dumps(list(classes)))
    start = time.perf_counter()
    weights = class_weight_map(config, split.train, classes)
    model, history = fit_model(config, train_ds, val_ds, len(classes), run, strategy, verbose, build, weights)
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
            "crops": crop_settings(root),  # how the faces were cropped (inference.Recognizer.from_run)
        },
    )
    monitor = "val_loss" if has_val else "loss"
    best = load_model(run.model)
    test_ds = make_dataset(split.test, root, classes, batch_size=config.batch_size, image_size=config.image_size)
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
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(final.parent)  # what killed runs left beside it
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        result = _fit_and_test(
            config, split, root, RunFolder(tmp), classes, strategy or tf.distribute.get_strategy(), verbose, build
        )
        check_run_dir(final)  # nothing appeared there while we trained
        if final.is_dir():
            final.rmdir()  # empty: replaced by the complete run
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
) -> RunResult:
    """Check the config, the frames and the run folder, split the usable frames with the configured
    protocol and seed, then train and test (see `train_on_split`); `build` makes the network
    (default: the registry's builder of `config.model`)."""
    check_config(config)
    check_run_dir(run_dir)
    frames = usable_frames(frames)
    classes = check_training_frames(frames, root)
    split = split_frames(frames, config.protocol, config.test_size, config.val_size, config.seed)
    return train_on_split(config, split, root, run_dir, classes, strategy=strategy, verbose=verbose, build=build)
