"""The checks before a training run builds anything, each an InputError that says what is wrong and
what to do: the config, the frames and their crops on disk, the classes a split leaves out of training
and the run folder, which is never written over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fer_utils.data.corpora import classes_in
from fer_utils.data.splits import Split
from fer_utils.errors import InputError
from fer_utils.faces.crops import CROP_SPEC_FILE, CropSpec
from fer_utils.models.networks import MODEL_BUILDERS, check_input_size
from fer_utils.registry import (
    CLASS_WEIGHTS,
    INITS,
    MIXES,
    PAPER_PROTOCOL,
    PROTOCOLS,
    SEQUENCE_MODELS,
    SEQUENCE_PROTOCOLS,
)
from fer_utils.train.config import KEEP, SCHEDULES, TrainConfig
from fer_utils.train.runs import RunFolder


def check_config(config: TrainConfig) -> None:
    """InputError naming the first field of `config` that cannot train (checked before anything is built)."""
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
            config.protocol is None or config.protocol in PROTOCOLS,
            f"protocol {config.protocol!r} is not one of {PROTOCOLS} (or None: the dataset's own split if it has one)",
        ),
        (
            0 < config.test_size < 1 and 0 <= config.val_size < 1 and config.test_size + config.val_size < 1,
            f"test size {config.test_size} and val size {config.val_size} must be fractions summing below 1",
        ),
        (config.init in INITS, f"initialiser {config.init!r} is not one of {INITS}"),
        (
            config.model not in SEQUENCE_MODELS or config.protocol != PAPER_PROTOCOL,
            f"{config.model} reads whole clips, and the {PAPER_PROTOCOL} protocol draws single frames, which would "
            f"put frames of one clip on both sides: use --protocol {', '.join(SEQUENCE_PROTOCOLS[:-1])} or "
            f"{SEQUENCE_PROTOCOLS[-1]}",
        ),
        *augment_problems(config),
        (
            config.class_weights in CLASS_WEIGHTS,
            f"class weights {config.class_weights!r} are not one of {CLASS_WEIGHTS}",
        ),
        (config.plateau >= 0, f"plateau must be 0 (off) or a number of epochs, got {config.plateau}"),
        *recipe_problems(config),
        *generalisation_problems(config),
        (
            config.plateau == 0 or config.plateau < config.patience,
            f"plateau {config.plateau} must be shorter than patience {config.patience}: early stopping would end "
            "the run before the learning rate is ever lowered; lower --plateau or raise --patience",
        ),
    ]
    for ok, message in problems:
        if not ok:
            raise InputError(message)
    check_input_size(config.model, config.image_size)


def generalisation_problems(config: TrainConfig) -> list[tuple[bool, str]]:
    """(ok, message) pairs for batch-norm momentum, width, mixing, erasing and intensity jitter."""
    return [
        (0 <= config.bn_momentum < 1, f"batch-norm momentum must be in [0, 1), got {config.bn_momentum}"),
        (
            math.isfinite(config.width) and config.width > 0,
            f"the width multiplier must be a number above 0, got {config.width}",
        ),
        (config.mix in MIXES, f"mix {config.mix!r} is not one of {MIXES}"),
        (
            0 <= config.random_erasing <= 1,
            f"random erasing is a probability in [0, 1], got {config.random_erasing}",
        ),
        (0 <= config.intensity <= 1, f"the intensity strength must be in [0, 1] (0: off), got {config.intensity}"),
    ]


def recipe_problems(config: TrainConfig) -> list[tuple[bool, str]]:
    """(ok, message) pairs for the schedule, label smoothing, the weights kept and the time budget."""
    budget = config.time_budget
    return [
        (config.schedule in SCHEDULES, f"schedule {config.schedule!r} is not one of {SCHEDULES}"),
        (
            config.schedule == "constant" or config.plateau == 0,
            f"the {config.schedule} schedule sets the learning rate at every step: leave the plateau at 0",
        ),
        (
            math.isfinite(config.label_smoothing) and 0 <= config.label_smoothing < 1,
            f"label smoothing must be in [0, 1), got {config.label_smoothing}",
        ),
        (config.keep in KEEP, f"keep {config.keep!r} is not one of {KEEP}"),
        (
            budget is None or (math.isfinite(budget) and budget > 0),
            f"the time budget must be a positive number of minutes, got {budget}",
        ),
    ]


def augment_problems(config: TrainConfig) -> list[tuple[bool, str]]:
    """(ok, message) pairs for the augmentation's strength (a zoom of 1 would shrink a face to nothing)."""
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


def check_crops(frames: pd.DataFrame, root: Path, spec: CropSpec | None) -> None:
    """InputError naming the crops of `frames` under `root` that are missing, damaged or not of `spec`'s side
    (None: crops made by hand, which the pipeline resizes to one side); every row is checked."""
    missing = [p for p in frames["image"] if not (Path(root) / p).is_file()]
    if missing:
        raise InputError(
            f"{len(missing)} of {len(frames)} crops listed in the manifest are missing under "
            f"{root}, e.g. {missing[:3]}: re-run preprocess, or is {root} the crops folder?"
        )
    sizes = [(Path(root) / p, png_size(Path(root) / p)) for p in frames["image"]]
    damaged = [path for path, size in sizes if size is None]
    if damaged:
        raise InputError(
            f"{len(damaged)} of {len(frames)} crops under {root} are damaged (not a whole PNG), e.g. "
            f"{[str(p) for p in damaged[:3]]}: delete them and re-run preprocess, which makes them again"
        )
    wrong = {path: size for path, size in sizes if spec and size != (spec.side, spec.side)}
    if wrong:
        named = ", ".join(f"{path} ({w}×{h} px)" for path, (w, h) in list(wrong.items())[:3])
        raise InputError(
            f"{len(wrong)} of {len(frames)} crops under {root} are not {spec.side}×{spec.side} px as its crop spec "
            f"({CROP_SPEC_FILE}) says: {named}{', ...' if len(wrong) > 3 else ''}; crops of two sides cannot be "
            f"batched together. Remove them, or preprocess them again into a folder of {spec.side} px crops"
        )


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an intact PNG file; None for a damaged one. verify() checks every chunk's CRC without
    decoding, so a damaged crop is named before TensorFlow fails on it mid-training naming no file."""
    from PIL import Image

    try:
        with Image.open(path, formats=["PNG"]) as image:
            size = image.size
            image.verify()
        return size
    except (OSError, SyntaxError, ValueError):
        return None


def check_training_frames(frames: pd.DataFrame, root: Path, spec: CropSpec | None) -> list[str]:
    """The classes of `frames` (usable rows), after checking that there are at least two and that every
    crop under `root` is whole and of `spec`'s side (`check_crops`); InputError otherwise."""
    if frames.empty:
        raise InputError(f"no usable crops (status ok) in the manifest of {root}")
    classes = classes_in(frames)
    if len(classes) < 2:
        raise InputError(
            f"training needs at least 2 classes, the frames hold only {classes} "
            f"({len(frames)} crops): a 1-class model would score 1.0 and mean nothing"
        )
    check_crops(frames, root, spec)
    return classes


def check_sides(split: Split) -> None:
    """InputError when the split leaves its train or test side empty."""
    if split.train.empty or split.test.empty:
        raise InputError(f"the split left {len(split.train)} training and {len(split.test)} test frames")


def check_split(split: Split, classes: Sequence[str], config: TrainConfig) -> None:
    """InputError when the split leaves its train or test side empty, or a class out of training: the model
    could never predict it, so its test accuracy would mean nothing."""
    check_sides(split)
    missing = [name for name in classes if name not in set(split.train["emotion"])]
    if not missing:
        return
    if config.protocol == "given":  # the dataset's own split: its train folder (or Usage) lacks the class
        held_out = {side: df for side, df in split.sides().items() if side != "train"}
        where = "; ".join(
            f"{name}: " + ", ".join(f"{int((df['emotion'] == name).sum())} in {side}" for side, df in held_out.items())
            for name in missing
        )
        raise InputError(
            f"the dataset's own split (protocol given) has no training image of {missing} ({where}): the model "
            "could never predict it. Add images of that class to the train side, use --protocol random, clip or "
            "subject to split all the rows, or leave the class out"
        )
    everything = pd.concat(list(split.sides().values()))
    held = {name: everything.loc[everything["emotion"] == name, "subject"].nunique() for name in missing}
    raise InputError(
        f"the {config.protocol} split with seed {config.seed} leaves {missing} out of training "
        f"({', '.join(f'{name}: {n} subject(s) in all' for name, n in held.items())}): the model could never "
        "predict it. Add images of that class from more subjects, use --protocol random or clip, or leave "
        "the class out of the crops folder's manifest"
    )


def check_run_dir(run_dir: Path) -> None:
    """InputError if `run_dir` already holds files: a run is never written over another one."""
    folder = RunFolder(run_dir)
    if folder.path.exists() and not folder.path.is_dir():
        raise InputError(f"{run_dir} exists and is not a folder")
    if folder.path.is_dir() and any(folder.path.iterdir()):
        kind = "a complete run" if folder.is_complete() else "files"
        raise InputError(f"{run_dir} already holds {kind}; choose another run folder or delete it first")
