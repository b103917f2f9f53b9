"""What defines a training run: `TrainConfig`, saved as the run's config.json, and the defaults it
uses where the book departs from the paper. Imports no TensorFlow, so that a cache key or a command
line can build a config cheaply; `fer_utils.train_checks.check_config` says whether one can train.
"""

from __future__ import annotations

from dataclasses import dataclass

from fer_utils.registry import (
    DEFAULT_VAL_SIZE,
    PAPER_BATCH_SIZE,
    PAPER_IMAGE_SIZE,
    PAPER_INIT,
    PAPER_MODEL,
    PAPER_PROTOCOL,
    PAPER_TEST_SIZE,
)

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
    clean_test: bool = False  # leave out the test images that copy a training image (duplicates.audited_split)
