"""The checkers of chapter 2, preprocessing: each computes the expected answer from the real data it is given."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fer_utils.book.exercises.feedback import Feedback, coding_exercise, run_student


def _spacing_problem(indices: object, n_frames: int, k: int) -> str | None:
    """What is wrong with `indices` as k evenly spaced frames from first to last of n_frames (all if k ≥ n_frames)."""
    what = f"for a clip of {n_frames} frames and k={k}, your frames {indices!r}"
    if not isinstance(indices, (list, tuple)) or not all(isinstance(i, (int, np.integer)) for i in indices):
        return f"{what} are not a list of integer frame indices."
    indices = [int(i) for i in indices]
    wanted = min(k, n_frames)
    if len(indices) != wanted:
        return f"{what}: asked for {wanted} frames, you gave {len(indices)}."
    if len(set(indices)) != len(indices):
        return f"{what} repeat a frame."
    if indices != sorted(indices):
        return f"{what} are not in order."
    if indices[0] != 0 or indices[-1] != n_frames - 1:
        return f"{what} must start at the first frame (0) and end at the last ({n_frames - 1})."
    gaps = np.diff(indices)
    if len(gaps) and gaps.max() - gaps.min() > 1:
        at = int(np.argmax(np.abs(gaps - (n_frames - 1) / (k - 1))))
        step = (n_frames - 1) / (k - 1)
        return (
            f"{what}: frames {indices[at]} and {indices[at + 1]} are not evenly spaced (a gap of "
            f"{gaps[at]} where every gap should be {math.floor(step)} or {math.ceil(step)})."
        )
    return None


@coding_exercise
def check_sample_indices(sample: Callable[[int, int], list[int]], clip_paths: Sequence[Path] = ()) -> Feedback:
    """`sample(n_frames, k)`: k evenly spaced frame indices from the first frame to the last (gaps that differ by
    at most one frame), all frames when k ≥ n_frames."""
    from fer_utils.assets import ravdess_clip_path
    from fer_utils.data.media import frame_count

    real = frame_count(ravdess_clip_path())
    counts = [real, *(frame_count(Path(p)) for p in clip_paths)]
    cases = [(n, k) for n in counts for k in (6, 2, 10)] + [(5, 5), (4, 6)]
    for n_frames, k in cases:
        problem = _spacing_problem(run_student(sample, n_frames, k), n_frames, k)
        if problem:
            return Feedback(False, problem)
    return Feedback(
        True,
        f"on the real RAVDESS clip ({real} frames) you sample {sample(real, 6)} for k=6, "
        "first and last frames included; short clips give all their frames.",
    )


# Mean gray-level difference per pixel allowed between two crops of one square: another interpolation
# changes a 48×48 crop of a real still by up to about 4, a wrong margin or padding by more than 50.
CROP_TOLERANCE = 8.0


def _inside_square(image: np.ndarray, box: object, side: int, margin: float) -> np.ndarray:
    """The reference answer of `check_crop_inside`: `square_region` shifted inside the image, gray, resized."""
    import cv2

    from fer_utils.data.media import to_gray
    from fer_utils.faces.crops import square_region

    gray = to_gray(image)
    height, width = gray.shape
    x0, y0, x1, _ = square_region(box, margin)
    square = x1 - x0
    x0, y0 = min(max(x0, 0), width - square), min(max(y0, 0), height - square)
    interpolation = cv2.INTER_AREA if square > side else cv2.INTER_LINEAR
    return cv2.resize(gray[y0 : y0 + square, x0 : x0 + square], (side, side), interpolation=interpolation)


@coding_exercise
def check_crop_inside(
    crop: Callable[..., np.ndarray], detector: object, side: int = 48, margin: float = 0.25
) -> Feedback:
    """`crop(image, box, side=..., margin=...)`: the side×side gray square of `crop_face`, but shifted to stay
    inside the image instead of repeating its edge pixels."""
    from fer_utils.assets import still_paths
    from fer_utils.data.media import read_image
    from fer_utils.faces.crops import Box, crop_face

    still = read_image(still_paths()[0])
    box = detector.detect(still)[0]  # type: ignore[attr-defined]
    cases = [
        ("the still", still, box),
        ("the still cut at the face's top-left corner", still[box.y - 2 :, box.x - 3 :], Box(3, 2, box.w, box.h)),
    ]
    for what, image, face in cases:
        got = np.asarray(run_student(crop, image, face, side=side, margin=margin))
        if got.ndim == 3:
            return Feedback(False, f"on {what} your crop has {got.shape[2]} channels: convert it to gray.")
        if got.shape != (side, side):
            return Feedback(False, f"on {what} your crop is {got.shape[0]}×{got.shape[1]}, not {side}×{side}.")
        error = float(np.abs(got.astype(float) - _inside_square(image, face, side, margin)).mean())
        if error > CROP_TOLERANCE:
            padded = float(np.abs(got.astype(float) - crop_face(image, face, side=side, margin=margin)).mean())
            hint = (
                "it repeats the edge pixels where the square leaves the image (that is `crop_face`): "
                "shift the square inside instead"
                if padded <= CROP_TOLERANCE
                else "check the square's side (longest box side × (1 + 2·margin)) and its shift into the image"
            )
            return Feedback(
                False,
                f"on {what} your crop differs from the expected one by {error:.1f} gray "
                f"levels per pixel on average: {hint}.",
            )
    return Feedback(True, "your square stays inside the image, on the whole still and on a face in its corner.")
