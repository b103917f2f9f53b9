"""What defines a training run: `TrainConfig` (saved as the run's config.json), its defaults, the named
presets that depart from them on purpose, and how the input pipeline feeds it (`Feed`). Every default is
decided here once. Imports no TensorFlow, so that a cache key or a command line can build a config
cheaply; `fer_utils.train.checks.check_config` says whether one can train.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fer_utils.errors import InputError
from fer_utils.registry import (
    DEFAULT_DROPOUT,
    DEFAULT_VAL_SIZE,
    PAPER_BATCH_SIZE,
    PAPER_DROPOUT,
    PAPER_IMAGE_SIZE,
    PAPER_INIT,
    PAPER_LEARNING_RATE,
    PAPER_MODEL,
    PAPER_TEST_SIZE,
    WILD_BN_MOMENTUM,
    WILD_MODEL,
)

# The book's reference run: the paper's CNN at a reduced input side, so that the whole book executes in
# minutes on 2 CPU cores (the epochs it stops at: benchmarks/README.md). The chapters' IMAGE_SIZE and
# EPOCHS parameters default to these.
REFERENCE_SIZE = 32
REFERENCE_EPOCHS = 50
REFERENCE_PATIENCE = 3

# `--recipe wild`'s length and shift: the epochs that fit in 10 minutes on a FER-2013-sized training side
# (28,709 faces) on 2 CPU cores at 500 images/s, and the largest shift, a fraction of the side (±4 px at 48).
WILD_EPOCHS = 20
WILD_SHIFT = 0.08
# Learning-rate schedules (`recipe.learning_rate`): the paper's constant rate, or warm-up then cosine decay.
SCHEDULES: tuple[str, ...] = ("constant", "one-cycle")
# What a run keeps as its model: the weights of its best epoch (lowest monitored loss) or of its last.
KEEP: tuple[str, ...] = ("best", "last")

# Named presets: what each changes from TrainConfig's defaults (`train --recipe NAME`; explicit options win).
PRESETS: dict[str, dict[str, object]] = {
    # The paper's recipe as published: 180x180 input and dropout 0.3 after every pooling stage.
    "paper": {"image_size": PAPER_IMAGE_SIZE, "dropout": PAPER_DROPOUT},
    # The book's reference run (see REFERENCE_SIZE).
    "reference": {
        "image_size": (REFERENCE_SIZE, REFERENCE_SIZE),
        "epochs": REFERENCE_EPOCHS,
        "patience": REFERENCE_PATIENCE,
    },
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
    # Faces in the wild, fast (FER-2013-like 48-px gray faces): flips and shifts by stateless ops
    # (pipeline.flip_and_shift), warm-up to 3e-3 then cosine decay to 1 % (recipe.WarmupCosine), the last
    # epoch's weights kept: the schedule ends on them (benchmarks/README.md, "The book's network for faces in
    # the wild").
    "wild": {
        "model": WILD_MODEL,
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
    },
}


@dataclass(frozen=True)
class Augmentation:
    """How the training images vary every epoch: a left-right flip, a shift and a zoom of up to ±`shift` and
    ±`zoom` of the side, and a rotation of up to ±`rotation` degrees (0: none). Without rotation or zoom the
    pipeline draws flips and shifts alone, as fast stateless ops (`pipeline.flip_and_shift`)."""

    rotation: float = 0.0
    shift: float = 0.05
    zoom: float = 0.05


@dataclass(frozen=True)
class BatchAugmentation:
    """What changes the training batches beyond flips and shifts (`pipeline.augment_batches`; all off by
    default): intensity jitter of strength `intensity`, a rectangle erased with probability `random_erasing`,
    and each image mixed with another of its batch, label too (`mix`: registry.MIXES)."""

    intensity: float = 0.0
    random_erasing: float = 0.0
    mix: str = "none"

    def active(self) -> bool:
        """True when any of them changes a batch."""
        return bool(self.intensity or self.random_erasing or self.mix != "none")


@dataclass(frozen=True)
class Feed:
    """How an input pipeline feeds crops to a model (`pipeline.make_dataset`, `sequences.make_clip_dataset`):
    `shuffle` reshuffles every epoch from `seed`, `cache` keeps the decoded crops in memory, and `image_size`
    None keeps each crop's own side (the model resizes it itself)."""

    batch_size: int = PAPER_BATCH_SIZE
    shuffle: bool = False
    seed: int = 0
    augment: Augmentation | None = None
    cache: bool = True
    image_size: tuple[int, int] | None = None
    drop_remainder: bool = False
    batch_augment: BatchAugmentation = BatchAugmentation()


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, saved as the run's config.json. `protocol` None takes the
    dataset's own split when its manifest keeps one, else the paper's random split; `augment_rotation` is in
    degrees, `augment_shift` and `augment_zoom` are fractions of the side; `plateau` epochs without progress
    halve the learning rate (0: off).

    Defaults: the paper's model, batch, learning rate (Adam 1e-3), input size and 80/20 split, with
    DEFAULT_DROPOUT, no augmentation, class weights or schedule. 1e-3 beat 3e-4 on real FER-2013; its cost
    (benchmarks/README.md, "Training recipe across seeds"): on the London faces at 96 px it learned for 4 of
    5 seeds where 3e-4 learned for 5 (the collapse check flags such a run).
    """

    model: str = PAPER_MODEL
    epochs: int = 30
    batch_size: int = PAPER_BATCH_SIZE
    learning_rate: float = PAPER_LEARNING_RATE
    dropout: tuple[float, float, float] = DEFAULT_DROPOUT
    l1: float = 0.0
    seed: int = 0
    patience: int = 5
    protocol: str | None = None
    test_size: float = PAPER_TEST_SIZE
    val_size: float = DEFAULT_VAL_SIZE
    image_size: tuple[int, int] = PAPER_IMAGE_SIZE
    augment: bool = False
    deterministic: bool = True
    init: str = PAPER_INIT
    augment_rotation: float = Augmentation.rotation
    augment_shift: float = Augmentation.shift
    augment_zoom: float = Augmentation.zoom
    class_weights: str = "none"
    plateau: int = 0
    clean_test: bool = False  # leave out the test images that copy a training image (duplicates.audited_split)
    schedule: str = "constant"  # or "one-cycle": warm-up then cosine decay over the run (recipe.learning_rate)
    label_smoothing: float = 0.0  # recipe.SmoothedCrossentropy when above 0
    keep: str = "best"  # the weights the run's model holds: its best epoch's or its last (KEEP)
    time_budget: float | None = None  # minutes: the run's length set from its measured epochs (recipe.TimeBudget)
    # score the training side in inference mode every epoch, as the validation side is: the honest gap, at the
    # cost of one more pass over the training side per epoch
    score_train: bool = True
    # Options for generalisation, all off by default, each a `train` flag. `use_ema`: Keras's moving average of
    # the weights, scored every epoch and held by the model at the end; `bn_momentum` and `width` are the wild
    # network's (registry.WILD_OPTIONS); `mix`, `random_erasing` and `intensity` are BatchAugmentation's.
    use_ema: bool = False
    bn_momentum: float = WILD_BN_MOMENTUM
    width: float = 1.0
    mix: str = "none"
    random_erasing: float = 0.0
    intensity: float = 0.0

    def __post_init__(self) -> None:
        """Sequences from JSON or a chapter's parameters (lists) become the tuples the config holds."""
        for name in ("dropout", "image_size"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def augmentation(self) -> Augmentation | None:
        """The augmentation the run trains with (None when `augment` is off)."""
        return Augmentation(self.augment_rotation, self.augment_shift, self.augment_zoom) if self.augment else None

    def feed(self, training: bool, **changes: object) -> Feed:
        """How the run's pipeline feeds a side; the training side is also reshuffled and augmented. `changes`
        override the rest (e.g. the batch split over replicas)."""
        feed = Feed(
            self.batch_size, shuffle=training, seed=self.seed, augment=self.augmentation() if training else None
        )
        if training:
            feed = replace(feed, batch_augment=BatchAugmentation(self.intensity, self.random_erasing, self.mix))
        return replace(feed, **changes)

    @classmethod
    def preset(cls, name: str, **changes: object) -> TrainConfig:
        """The preset `name` of PRESETS, with `changes` applied over it (e.g. `seed=1`)."""
        if name not in PRESETS:
            raise InputError(f"no training preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}")
        return replace(cls(), **{**PRESETS[name], **changes})
