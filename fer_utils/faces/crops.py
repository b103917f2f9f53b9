"""Crops and the crop spec: how a face in a frame becomes a model's input, said once (`CropSpec`) and cut one
way (`crop_face`), by preprocessing and inference alike.

The spec travels as `crop_spec.json` beside crops, run folders and exported models; the demo page's
`book/_demo/crop.js` reproduces `crop_face` pixel for pixel. See CONTRACTS.md, "One crop, one resizer".
OpenCV is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from fer_utils.data.images import to_gray
from fer_utils.errors import InputError
from fer_utils.faces.detectors import Box, FaceDetector, Landmarker, boxes_to_full
from fer_utils.registry import DEFAULT_DETECTOR, DEFAULT_MARGIN, DETECTORS, MAX_SIDE, NO_DETECTOR, PAPER_SIDE
from fer_utils.storage.atomic import atomic_write_bytes

CROP_SPEC_FILE = "crop_spec.json"  # beside a folder's crops, in a run folder, beside an exported model
GRAY = "gray"
COLOURS: tuple[str, ...] = (GRAY,)
MIN_SIDE = 8  # the smallest crop any of the book's models can take (three 2×2 poolings)


@dataclass(frozen=True)
class CropSpec:
    """How a face becomes a model's input: the square around `detector`'s box with `margin` (a fraction of
    the box's longest side) on every side, eyes levelled first when `align`, in `colour`, `side`×`side` px."""

    detector: str = DEFAULT_DETECTOR
    margin: float = None  # type: ignore[assignment]  # None: the detector's default, set in __post_init__
    side: int = PAPER_SIDE
    align: bool = False
    colour: str = GRAY

    def __post_init__(self) -> None:
        """A missing margin becomes the detector's default (`default_margin`), so that no caller decides it."""
        if self.margin is None:
            object.__setattr__(self, "margin", default_margin(self.detector))

    def to_dict(self) -> dict:
        """The spec as plain JSON values (what `crop_spec.json` and the page's `models.json` hold)."""
        return asdict(self)

    def served_with(self, detector: str) -> CropSpec:
        """This spec with `detector`; crops of whole images (detector "none") get the default margin, since
        how much of a whole image lies around its face is not known."""
        whole = self.detector == NO_DETECTOR and detector != NO_DETECTOR
        return replace(self, detector=detector, margin=default_margin(detector) if whole else self.margin)


def served_spec(spec: CropSpec) -> CropSpec:
    """The spec faces found in a frame are cut with when served: `spec`, or for crops of whole images
    (detector "none") the default detector's with its default margin (`CropSpec.served_with`)."""
    return spec.served_with(DEFAULT_DETECTOR if spec.detector == NO_DETECTOR else spec.detector)


def check_crop_spec(spec: CropSpec) -> CropSpec:
    """`spec` if every field can work, else an InputError naming the field."""
    if spec.detector not in DETECTORS:
        raise InputError(f"unknown detector {spec.detector!r} in the crop spec; choose one of: {', '.join(DETECTORS)}")
    if isinstance(spec.margin, bool) or not isinstance(spec.margin, (int, float)) or not 0.0 <= spec.margin <= 1.0:
        raise InputError(f"margin must be between 0 and 1 (fraction of the box size), got {spec.margin!r}")
    if isinstance(spec.side, bool) or not isinstance(spec.side, int) or spec.side < MIN_SIDE:
        raise InputError(f"crop size must be at least {MIN_SIDE} pixels, got {spec.side!r}")
    if spec.side > MAX_SIDE:
        raise InputError(
            f"crop size must be at most {MAX_SIDE} pixels (a crop's memory grows with its square), got {spec.side}"
        )
    if not isinstance(spec.align, bool):
        raise InputError(f"align must be true or false, got {spec.align!r}")
    if spec.colour not in COLOURS:
        raise InputError(f"unknown crop colour {spec.colour!r}; the book's crops are {', '.join(COLOURS)}")
    return spec


def default_margin(detector: str) -> float:
    """The margin when none is asked for: none around a whole image (detector "none"), else DEFAULT_MARGIN."""
    return 0.0 if detector == NO_DETECTOR else DEFAULT_MARGIN


def spec_with(**fields: object) -> CropSpec:
    """The spec of the fields given, a field given as None taking the spec's default, so that no caller
    decides a default of its own. Unchecked: whoever cuts with it checks it (`check_crop_spec`)."""
    return CropSpec(**{name: value for name, value in fields.items() if value is not None})


def spec_from_dict(record: Mapping[str, object], source: Path | str) -> CropSpec:
    """The spec a `crop_spec.json` (or a `models.json` entry) holds; an InputError naming `source` when it is
    not one."""
    fields = set(CropSpec.__dataclass_fields__)
    if not isinstance(record, Mapping) or set(record) != fields:
        raise InputError(f"{source}: a crop spec must have exactly the fields {sorted(fields)}, got {record!r}")
    try:
        return check_crop_spec(CropSpec(**record))
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def read_crop_spec(folder: Path) -> CropSpec | None:
    """The spec in `folder`'s `crop_spec.json`, None when it has none (InputError when it is not a spec)."""
    path = Path(folder) / CROP_SPEC_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    return spec_from_dict(record, path)


def spec_bytes(spec: CropSpec) -> bytes:
    """The bytes of `crop_spec.json` for `spec` (the same spec, the same bytes)."""
    return (json.dumps(check_crop_spec(spec).to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_crop_spec(folder: Path, spec: CropSpec) -> Path:
    """Write `spec` as `folder`'s `crop_spec.json` (atomically; left alone when it already holds these bytes)."""
    path = Path(folder) / CROP_SPEC_FILE
    atomic_write_bytes(path, spec_bytes(spec))
    return path


# `crop_face`'s defaults (chapter 2's shown code reads these names); every entry point passes a `CropSpec`'s.
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
    """The crop of the face in `box` that `spec` describes, cut by `crop` (`crop_face` or chapter 2's edit)."""
    return crop(image, box, size=spec.side, margin=spec.margin)


def largest_face_crop(
    image: np.ndarray,
    detector: FaceDetector,
    spec: CropSpec | None = None,
    landmarker: Landmarker | None = None,
    crop: CropFunction = crop_face,
) -> FaceCrop | None:
    """The largest face in `image`, cut by `crop` as `spec` says (default `CropSpec()`; eyes levelled first
    when `spec.align`, which needs a `landmarker`); None when no face is found."""
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
