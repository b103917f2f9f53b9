"""Test-time augmentation: a crop's class probabilities averaged over views of it (registry.TTA_MODES).

The one place the views are made and averaged (the live page copies `tta_views` in JavaScript). A view is the
crop mirrored left-right, or shifted by `registry.TTA_SHIFT` pixels with its edge filled by mirroring (as
`pipeline.flip_and_shift` pads in training), so every view has the crop's own size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fer_utils.errors import InputError
from fer_utils.registry import TTA_MODES, TTA_SHIFT

# The (rows, columns) each shifted view of "flip-shift" moves the crop by: down, up, right, left.
SHIFTS: tuple[tuple[int, int], ...] = ((TTA_SHIFT, 0), (-TTA_SHIFT, 0), (0, TTA_SHIFT), (0, -TTA_SHIFT))


def check_tta(mode: str) -> str:
    """`mode` when it is one of TTA_MODES, else an InputError naming them."""
    if mode not in TTA_MODES:
        raise InputError(f"unknown test-time augmentation {mode!r}; choose one of {', '.join(TTA_MODES)}")
    return mode


def shifted(images: np.ndarray, rows: int, columns: int, pad: int = TTA_SHIFT) -> np.ndarray:
    """`images` (N, H, W, C) moved by `rows` down and `columns` right, the uncovered edge mirrored in."""
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    height, width = images.shape[1:3]
    top, left = pad - rows, pad - columns
    return np.ascontiguousarray(padded[:, top : top + height, left : left + width])


def tta_views(images: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views of a batch `images` (N, H, W, C) that `mode` averages: the batch itself first, then its
    mirror ("flip"), then its four shifts ("flip-shift")."""
    check_tta(mode)
    if mode == "none":
        return [images]
    images = np.asarray(images)
    views = [images, np.ascontiguousarray(images[:, :, ::-1])]
    if mode == "flip-shift":
        views += [shifted(images, rows, columns) for rows, columns in SHIFTS]
    return views


def tta_probabilities(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, mode: str) -> np.ndarray:
    """The mean over `mode`'s views of `predict`'s class probabilities for `images`, one call per view (a
    TFLite copy of fixed batch takes each view as it takes the images); "none" is `predict(images)` itself."""
    views = tta_views(images, mode)
    if len(views) == 1:
        return np.asarray(predict(views[0]))
    return np.mean([np.asarray(predict(view)) for view in views], axis=0)
