"""What defines a training run: `TrainConfig` (saved as the run's config.json), its named presets, how the input
pipeline feeds it (`Feed`), and the checks before a run builds anything, each an InputError saying what to do.
Imports no TensorFlow, so that a cache key or a command line can build and check a config cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fer_utils import registry
from fer_utils.data.corpora import classes_in
from fer_utils.errors import InputError, OutputError
from fer_utils.faces.crops import CROP_SPEC_FILE

if TYPE_CHECKING:  # pandas and the run folder are imported where checked: `--help` stays light
    import pandas as pd

    from fer_utils.data.splits import Split
    from fer_utils.faces.crops import CropSpec


# The book's reference run, the default of the chapters' IMAGE_SIZE and EPOCHS: the paper's CNN at a reduced side,
# so that the whole book executes in minutes on 2 CPU cores (the epochs it stops at: benchmarks/README.md).
REFERENCE_SIZE = 32
REFERENCE_EPOCHS = 50
REFERENCE_PATIENCE = 3

# `--recipe wild`'s length and shift: the epochs that fit in 10 minutes on a FER-2013-sized training side
# (28,709 faces) on 2 CPU cores at 500 images/s, and the largest shift, a fraction of the side (±4 px at 48).
WILD_EPOCHS = 20
WILD_SHIFT = 0.08
WILD_30_EPOCHS = 30
SCHEDULES: tuple[str, ...] = ("constant", "one-cycle")  # the paper's constant rate, or warm-up then cosine decay
KEEP: tuple[str, ...] = ("best", "last")  # the weights a run keeps: its best epoch's (lowest loss) or its last's

# Named presets: what each changes from TrainConfig's defaults (`train --recipe NAME`; explicit options win).
PRESETS: dict[str, dict[str, object]] = {
    # The paper's recipe as published: 180x180 input and dropout 0.3 after every pooling stage.
    "paper": {"image_size": registry.PAPER_IMAGE_SIZE, "dropout": registry.PAPER_DROPOUT},
    "reference": {"image_size": (REFERENCE_SIZE,) * 2, "epochs": REFERENCE_EPOCHS, "patience": REFERENCE_PATIENCE},
    # Arriaga et al. (2017)'s recipe for mini-Xception on FER-2013: 0.598 on PrivateTest in 52 epochs, 54 min on
    # 2 cores (benchmarks/README.md, "A recipe chosen on real FER-2013").
    "arriaga": {
        "model": "mini-xception",
        "augment": True,
        "augment_rotation": 10.0,
        "augment_shift": 0.1,
        "augment_zoom": 0.1,
        "learning_rate": 1e-3,
        "epochs": 60,
        "patience": 12,
        "plateau": 4,
        "class_weights": "none",
    },
    # Faces in the wild, fast (FER-2013-like 48-px gray faces): stateless flips and shifts, one-cycle to 3e-3, the
    # last epoch's weights kept: the schedule ends on them (benchmarks/README.md, "The book's network for faces...").
    "wild": {
        "model": registry.WILD_MODEL,
        "image_size": registry.WILD_INPUT_SHAPE[:2],  # the side it is shaped for (TrainConfig's default is 180)
        "augment": True,
        "augment_rotation": 0.0,
        "augment_shift": WILD_SHIFT,
        "augment_zoom": 0.0,
        "batch_size": 128,
        "learning_rate": 3e-3,
        "schedule": "one-cycle",
        "label_smoothing": 0.1,
        "epochs": WILD_EPOCHS,
        "patience": WILD_EPOCHS,  # no early stop: the schedule's length is the run's
        "keep": "last",
        "class_weights": "none",
        "score_train": False,  # a quarter more time per epoch on 28,709 faces; the validation side is scored
        "tta": "flip",  # the mirror averaged in: +1 point on FER-2013's PublicTest (assets/recipe_runs.jsonl)
    },
}
# The 30-minute recipe, the pretrained model's: 1.4x the width (429,930 parameters, under 2 MB shipped) and 30 epochs,
# about 1,300 s at 500 images/s on FER-2013's 28,709 faces (benchmarks/README.md, "The wild presets chosen on real
# FER-2013").
PRESETS["wild-30"] = {**PRESETS["wild"], "width": 1.4, "epochs": WILD_30_EPOCHS, "patience": WILD_30_EPOCHS}


@dataclass(frozen=True)
class Augmentation:
    """How training images vary every epoch: a left-right flip, a shift and zoom of up to ±`shift`/±`zoom` of the
    side, a rotation of up to ±`rotation` degrees (0: none); flips and shifts alone run as fast stateless ops."""

    rotation: float = 0.0
    shift: float = 0.05
    zoom: float = 0.05


@dataclass(frozen=True)
class BatchAugmentation:
    """What changes training batches beyond flips and shifts (all off by default): intensity jitter, a rectangle
    erased with probability `random_erasing`, each image mixed with another of its batch (`mix`: registry.MIXES)."""

    intensity: float = 0.0
    random_erasing: float = 0.0
    mix: str = "none"

    def active(self) -> bool:
        """True when any of them changes a batch."""
        return bool(self.intensity or self.random_erasing or self.mix != "none")


@dataclass(frozen=True)
class Feed:
    """How a pipeline feeds crops to a model: `shuffle` reshuffles every epoch from `seed`, `cache` keeps decoded
    crops in memory, `image_size` None keeps each crop's own side (the model resizes it itself)."""

    batch_size: int = registry.PAPER_BATCH_SIZE
    shuffle: bool = False
    seed: int = 0
    augment: Augmentation | None = None
    cache: bool = True
    image_size: tuple[int, int] | None = None
    drop_remainder: bool = False
    batch_augment: BatchAugmentation = BatchAugmentation()


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, saved as config.json; defaults: the paper's recipe, but for its dropout
    (DEFAULT_DROPOUT, after the last pooling only; the `paper` preset has the paper's). `protocol` None:
    the dataset's own split if its manifest keeps one, else random; `plateau` epochs halve the rate (0: off)."""

    model: str = registry.PAPER_MODEL
    epochs: int = 30
    batch_size: int = registry.PAPER_BATCH_SIZE
    # 1e-3 beat 3e-4 on real FER-2013; on the London faces at 96 px it learned for 4 of 5 seeds where 3e-4 did for 5
    # (the collapse check flags such a run; benchmarks/README.md, "Training recipe across seeds")
    learning_rate: float = registry.PAPER_LEARNING_RATE
    dropout: tuple[float, float, float] = registry.DEFAULT_DROPOUT
    l1: float = 0.0
    seed: int = 0
    patience: int = 5
    protocol: str | None = None
    test_size: float = registry.PAPER_TEST_SIZE
    val_size: float = registry.DEFAULT_VAL_SIZE
    image_size: tuple[int, int] = registry.PAPER_IMAGE_SIZE
    augment: bool = False
    deterministic: bool = True
    init: str = registry.PAPER_INIT
    augment_rotation: float = Augmentation.rotation
    augment_shift: float = Augmentation.shift
    augment_zoom: float = Augmentation.zoom
    class_weights: str = "none"
    plateau: int = 0
    clean_test: bool = False  # leave out the test images that copy a training image (splits.audited_split)
    schedule: str = "constant"  # or "one-cycle": warm-up then cosine decay over the run (fit.learning_rate)
    label_smoothing: float = 0.0  # fit.SmoothedCrossentropy when above 0
    keep: str = "best"  # the weights the run's model holds: its best epoch's or its last (KEEP)
    time_budget: float | None = None  # minutes: the run's length set from its measured epochs (fit.TimeBudget)
    score_train: bool = True  # the training side scored in inference mode every epoch: the honest gap, one more pass
    # Generalisation options, all off by default, each a `train` flag: `use_ema` (Keras's moving average of the
    # weights), the wild network's `bn_momentum` and `width`, and BatchAugmentation's.
    use_ema: bool = False
    bn_momentum: float = registry.WILD_BN_MOMENTUM
    width: float = 1.0
    mix: str = "none"
    random_erasing: float = 0.0
    intensity: float = 0.0
    tta: str = "none"  # the test-time augmentation its model is served with by predict, evaluate and export

    def __post_init__(self) -> None:
        """Sequences from JSON or a chapter's parameters (lists) become the tuples the config holds."""
        for name in ("dropout", "image_size"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def augmentation(self) -> Augmentation | None:
        """The augmentation the run trains with (None when `augment` is off)."""
        return Augmentation(self.augment_rotation, self.augment_shift, self.augment_zoom) if self.augment else None

    def feed(self, training: bool, **changes: object) -> Feed:
        """How the run's pipeline feeds a side (training: reshuffled and augmented), with `changes` over the rest."""
        batch = BatchAugmentation(self.intensity, self.random_erasing, self.mix) if training else BatchAugmentation()
        augment = self.augmentation() if training else None
        feed = Feed(self.batch_size, shuffle=training, seed=self.seed, augment=augment, batch_augment=batch)
        return replace(feed, **changes)

    @classmethod
    def preset(cls, name: str, **changes: object) -> TrainConfig:
        """The preset `name` of PRESETS, with `changes` applied over it (e.g. `seed=1`)."""
        if name not in PRESETS:
            raise InputError(f"no training preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}")
        return replace(cls(), **{**PRESETS[name], **changes})


def changed_options(config: TrainConfig, names: Sequence[str]) -> list[str]:
    """The options among `names` that `config` sets away from TrainConfig's defaults, in the order given."""
    default = TrainConfig()
    return [name for name in names if getattr(config, name) != getattr(default, name)]


def check_config(config: TrainConfig) -> None:
    """InputError naming the first field of `config` that cannot train (checked before anything is built)."""
    from fer_utils.models.networks import MODEL_BUILDERS, check_input_size  # TensorFlow: only when checking

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
            config.protocol is None or config.protocol in registry.PROTOCOLS,
            f"protocol {config.protocol!r} is not one of {registry.PROTOCOLS} "
            "(or None: the dataset's own split if it has one)",
        ),
        (
            0 < config.test_size < 1 and 0 <= config.val_size < 1 and config.test_size + config.val_size < 1,
            f"test size {config.test_size} and val size {config.val_size} must be fractions summing below 1",
        ),
        (config.init in registry.INITS, f"initialiser {config.init!r} is not one of {registry.INITS}"),
        (
            config.model not in registry.SEQUENCE_MODELS or config.protocol != registry.PAPER_PROTOCOL,
            f"{config.model} reads whole clips, and the {registry.PAPER_PROTOCOL} protocol draws single frames, which "
            f"would put frames of one clip on both sides: use --protocol {', '.join(registry.SEQUENCE_PROTOCOLS[:-1])} "
            f"or {registry.SEQUENCE_PROTOCOLS[-1]}",
        ),
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
        (
            config.class_weights in registry.CLASS_WEIGHTS,
            f"class weights {config.class_weights!r} are not one of {registry.CLASS_WEIGHTS}",
        ),
        (config.plateau >= 0, f"plateau must be 0 (off) or a number of epochs, got {config.plateau}"),
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
            config.time_budget is None or (math.isfinite(config.time_budget) and config.time_budget > 0),
            f"the time budget must be a positive number of minutes, got {config.time_budget}",
        ),
        (0 <= config.bn_momentum < 1, f"batch-norm momentum must be in [0, 1), got {config.bn_momentum}"),
        (
            math.isfinite(config.width) and config.width > 0,
            f"the width multiplier must be a number above 0, got {config.width}",
        ),
        (config.mix in registry.MIXES, f"mix {config.mix!r} is not one of {registry.MIXES}"),
        (0 <= config.random_erasing <= 1, f"random erasing is a probability in [0, 1], got {config.random_erasing}"),
        (0 <= config.intensity <= 1, f"the intensity strength must be in [0, 1] (0: off), got {config.intensity}"),
        (config.tta in registry.TTA_MODES, f"tta {config.tta!r} is not one of {registry.TTA_MODES}"),
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
    """The classes of `frames` (usable rows); InputError for fewer than two or a crop `check_crops` refuses."""
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
    """InputError when the split leaves its train or test side empty, or a class out of training (never predicted)."""
    import pandas as pd

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
    """OutputError if `run_dir` already holds files: a run is never written over another one."""
    from fer_utils.train.runs import RunFolder

    folder = RunFolder(run_dir)
    if folder.path.exists() and not folder.path.is_dir():
        raise OutputError(f"{run_dir} exists and is not a folder")
    if folder.path.is_dir() and any(folder.path.iterdir()):
        kind = "a complete run" if folder.is_complete() else "files"
        raise OutputError(f"{run_dir} already holds {kind}; choose another run folder or delete it first")
