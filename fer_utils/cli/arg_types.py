"""argparse types: the bounds of the command line's numbers (an ArgumentTypeError naming the bound, exit 2 before
anything loads), and the arguments several commands share (`add_model_argument`, `add_tta_argument`,
`add_overwrite_argument`)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from fer_utils.registry import MAX_SIDE, TTA_MODES


def _bounded(kind: type, ok: Callable[[float], bool], bound: str) -> Callable[[str], int | float]:
    """An argparse type: the text as `kind` (int or float), refused with `bound` in the message unless `ok`."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value if kind is int else repr(text)}")
        return value

    return parse


positive_int = _bounded(int, lambda v: v >= 1, "at least 1")  # epochs, batch size, every K-th frame, samples, workers
non_negative_int = _bounded(int, lambda v: v >= 0, "0 or more")  # seeds, patience
# an image side in pixels (a model's own minimum is checked when it is built)
side = _bounded(int, lambda v: 1 <= v <= MAX_SIDE, f"between 1 and {MAX_SIDE} pixels")
positive_float = _bounded(float, lambda v: math.isfinite(v) and v > 0, "a finite number above 0")  # learning rates
non_negative_float = _bounded(float, lambda v: math.isfinite(v) and v >= 0, "a finite number of 0 or more")  # penalties
fraction = _bounded(float, lambda v: 0 <= v < 1, "a fraction of at least 0 and below 1")  # a validation share (0: none)


def existing(text: str) -> Path:
    """The path `text`, refused by name when nothing is there (before anything loads)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path


def model_file(text: str) -> Path:
    """`--model`: a .keras file as given, or the run folder holding one (its model.keras); a folder without one is
    refused by name (it was "no such model file", as if the folder did not exist)."""
    from fer_utils.storage.run_files import MODEL_FILE

    path = existing(text)
    if not path.is_dir():
        return path
    if not (path / MODEL_FILE).is_file():
        raise argparse.ArgumentTypeError(
            f"{text} is a folder without a {MODEL_FILE}: give a .keras file or a run folder"
        )
    return path / MODEL_FILE


def run_folder(text: str) -> Path:
    """`--run`: a folder that exists, refused by name at the door (it was "not a finished run folder" or "no such
    model file" of a folder that is not there)."""
    path = existing(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a run folder")
    return path


def add_model_argument(
    parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, required: bool, default: str = ""
) -> None:
    """Add `--model`, a saved .keras model with its classes.json beside it; `default` says what its absence means."""
    parser.add_argument(
        "--model",
        type=model_file,
        required=required,
        help=f"a .keras model file (classes.json beside it), or the run folder holding it{default}",
    )


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """Add `--overwrite`: without it, an output file already there is refused (`storage.outputs.check_outputs`)."""
    parser.add_argument(
        "--overwrite", action="store_true", help="replace output files already there (refused otherwise)"
    )


def add_tta_argument(parser: argparse.ArgumentParser, where: str) -> None:
    """Add `--tta` (`evaluate.metrics`); `where`, put into its help, says where it applies and what records it."""
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        help=f"test-time augmentation{where}: each face's probabilities averaged over its crop and its mirror "
        "(flip), and four 2-px shifts too (flip-shift), or none, the crop alone; default: the model's own, the TTA its "
        "recipe ships with (config.json's tta, as the pretrained model's), else none",
    )
