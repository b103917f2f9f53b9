"""argparse types: the one place for the bounds of the command line's numbers (issue 18, item 15), and
the arguments several commands share (`add_model_argument`).

Each parses one argument and raises argparse.ArgumentTypeError with the bound it broke, so argparse
prints `argument --size: must be …` and exits 2 before anything is read or loaded.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from fer_utils.registry import MAX_SIDE  # the largest crop or input side (a crop spec's bound too)


def _number(text: str, kind: type) -> int | float:
    """`text` as `kind`, or ArgumentTypeError naming what was expected."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    """An integer ≥ 1 (epochs, batch size, every K-th frame, samples, workers)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer ≥ 0 (seeds, patience)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def side(text: str) -> int:
    """An image side in pixels, 1..MAX_SIDE (a model's own minimum is checked when it is built)."""
    value = _number(text, int)
    if not 1 <= value <= MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_SIDE} pixels, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates): inf and nan are refused."""
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0 (penalties, margins)."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of 0 or more, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A fraction in [0, 1) (a validation share: 0 means none)."""
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction of at least 0 and below 1, got {text!r}")
    return value


def add_model_argument(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, required: bool) -> None:
    """Add `--model`, a saved .keras model with its classes.json beside it (evaluate, predict)."""
    parser.add_argument("--model", type=Path, required=required, help="a .keras model file (classes.json beside it)")
