"""Crop geometry, shared by preprocessing and inference: the square around a face box, the crop, the
largest face of an image, and eye-line alignment (dlib's 68 landmarks → a rotation about the eyes).

`crop_face` is the paper's crop: a square around the detector's box with a margin on every side,
gray, resized to size×size (OpenCV's INTER_AREA when the square is larger, INTER_LINEAR when it is not).
`fer_utils.faces.preprocess` writes these crops for a dataset as its `crop_spec.CropSpec` says, and
`fer_utils.deploy.inference.Recognizer` makes the same crop of every face it classifies from the model's spec, so a
model sees at inference what it saw in training; the demo page's `book/_demo/crop.js` repeats `crop_face`'s
arithmetic. OpenCV is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fer_utils.data.images import to_gray
from fer_utils.errors import InputError
from fer_utils.faces.crop_spec import CropSpec
from fer_utils.faces.detectors import Box, FaceDetector, Landmarker, boxes_to_full
from fer_utils.registry import DEFAULT_MARGIN, PAPER_SIDE

# The side and margin `crop_face` takes when called without them (chapter 2's shown code reads these names);
# every entry point (preprocessing, inference, export, calibration) passes the side and margin of a `CropSpec`.
DEFAULT_SIZE = PAPER_SIDE  # the crop's side (px): the paper's 180
# dlib 68-point indices of the two eyes (image-left eye first).
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


@dataclass(frozen=True)
class FaceCrop:
    """The largest face of an image: its size×size gray crop, its box (full resolution) and how many faces were seen."""

    crop: np.ndarray
    box: Box
    n_faces: int


def square_region(box: Box, margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the square around `box`'s centre, side = longest box side ×
    (1 + 2·margin)."""
    side = max(1, int(round(max(box.w, box.h) * (1.0 + 2.0 * margin))))
    cx, cy = box.center
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    return x0, y0, x0 + side, y0 + side


def crop_face(
    image: np.ndarray,
    box: Box,
    *,
    size: int | None = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """The face in `box` as a size×size uint8 gray crop: square around the box with
    `margin` (fraction of the box side) on every side, edge pixels repeated where it
    leaves the image (size None: the square at its own resolution, for a model that
    resizes its input itself). Accepts 1, 3 or 4 channels and 8 or 16 bits."""
    import cv2

    gray = to_gray(image)
    height, width = gray.shape
    x0, y0, x1, y1 = square_region(box, margin)
    inside = gray[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
    if inside.size == 0:
        raise InputError(f"box {box} lies outside the {width}×{height} image")
    padded = cv2.copyMakeBorder(
        inside,
        max(0, -y0),
        max(0, y1 - height),
        max(0, -x0),
        max(0, x1 - width),
        cv2.BORDER_REPLICATE,
    )
    if size is None:
        return padded
    interpolation = cv2.INTER_AREA if padded.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(padded, (size, size), interpolation=interpolation)


# crop(image, box, *, size, margin) -> gray uint8 crop, as `crop_face`
CropFunction = Callable[..., np.ndarray]


def spec_crop(image: np.ndarray, box: Box, spec: CropSpec, crop: CropFunction = crop_face) -> np.ndarray:
    """The crop of the face in `box` that `spec` describes (its margin and side; gray), cut by `crop`
    (`crop_face`, or chapter 2's edit of it)."""
    return crop(image, box, size=spec.side, margin=spec.margin)


def largest_face_crop(
    image: np.ndarray,
    detector: FaceDetector,
    spec: CropSpec | None = None,
    landmarker: Landmarker | None = None,
    crop: CropFunction = crop_face,
) -> FaceCrop | None:
    """Detect faces in `image`, keep the largest and crop it as `spec` says (default: `CropSpec()`; rotated so
    the eyes are level first when `spec.align`, which needs a `landmarker`) with `crop` (chapter 2's `crop_face`,
    or a reader's edit of it); None when no face is found."""
    spec = spec or CropSpec()
    if spec.align and landmarker is None:
        raise InputError("align=True needs a landmarker: pass landmarker=make_landmarker()")
    boxes = detector.detect(image)
    if not boxes:
        return None
    box = boxes[0]
    if spec.align:
        assert landmarker is not None
        points = landmarker.landmarks(image, box)
        image, _ = align_face(image, points)
        box = rotate_box(box, alignment_matrix(points), image.shape)
    return FaceCrop(crop=spec_crop(image, box, spec, crop), box=box, n_faces=len(boxes))


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle in degrees of the line from the image-left eye centre to the image-right eye centre."""
    left = landmarks[LEFT_EYE].mean(axis=0)
    right = landmarks[RIGHT_EYE].mean(axis=0)
    return math.degrees(math.atan2(float(right[1] - left[1]), float(right[0] - left[0])))


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray:
    """The 2×3 affine matrix that rotates about the eyes' midpoint so the eye line becomes horizontal."""
    import cv2

    centre = (landmarks[LEFT_EYE].mean(axis=0) + landmarks[RIGHT_EYE].mean(axis=0)) / 2.0
    return cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), eye_angle(landmarks), 1.0)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine `matrix` to (N, 2) points; float32 result."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align_face(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate `image` so the eyes are level; returns (rotated image, landmarks in the rotated image)."""
    import cv2

    matrix = alignment_matrix(landmarks)
    rotated = cv2.warpAffine(
        image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return rotated, transform_points(landmarks, matrix)


def rotate_box(box: Box, matrix: np.ndarray, shape: tuple[int, ...]) -> Box:
    """`box` moved so its centre follows `matrix` (same size), clipped to an image of `shape`."""
    cx, cy = transform_points(np.array([box.center]), matrix)[0]
    moved = boxes_to_full([(cx - box.w / 2, cy - box.h / 2, cx + box.w / 2, cy + box.h / 2)], 1.0, shape)
    return moved[0] if moved else box
