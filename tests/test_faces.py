"""Face detectors, landmarks and alignment on the 24 real RAVDESS stills."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_utils.faces.crops import (
    FACE_DETECTORS,
    MIN_DETECTION_SIDE,
    NO_DETECTOR,
    Box,
    align_face,
    boxes_to_full,
    crop_face,
    eye_angle,
    face_scale_side,
    make_detector,
    make_landmarker,
    measure_detectors,
    no_face_reason,
    to_gray,
    with_max_side,
)
from fer_utils.registry import DETECTORS


@pytest.fixture(scope="module")
def landmarker():
    return make_landmarker()


@pytest.fixture(scope="module")
def still(stills: list[Path]) -> np.ndarray:
    return cv2.imread(str(stills[0]))


def _two_faces(stills: list[Path]) -> np.ndarray:
    """Two real stills side by side, the right one at 80 %, so there are two faces of different size."""
    big = cv2.imread(str(stills[2]))
    small = cv2.resize(cv2.imread(str(stills[5])), None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    canvas = np.full((big.shape[0], big.shape[1] + small.shape[1], 3), 255, np.uint8)
    canvas[:, : big.shape[1]] = big
    canvas[: small.shape[0], big.shape[1] :] = small
    return canvas


@pytest.mark.parametrize(
    "name", [pytest.param(d, marks=pytest.mark.slow) if d == "dlib-cnn" else d for d in FACE_DETECTORS]
)
def test_every_detector_finds_exactly_one_face_in_each_still(name: str, stills: list[Path]) -> None:
    detector = make_detector(name)
    assert detector.name == name
    for path in stills:
        image = cv2.imread(str(path))
        boxes = detector.detect(image)
        assert len(boxes) == 1, f"{name} found {len(boxes)} faces in {path.name}"
        box = boxes[0]
        assert box.x >= 0 and box.y >= 0 and box.x + box.w <= image.shape[1] and box.y + box.h <= image.shape[0]
        assert 60 <= box.w <= 200 and 60 <= box.h <= 200, f"implausible face size {box} in {path.name}"


def test_gray_bgr_bgra_and_16bit_inputs_give_the_same_face(still: np.ndarray) -> None:
    detector = make_detector("dlib-hog")
    reference = detector.detect(still)
    assert len(reference) == 1
    variants = {
        "gray": cv2.cvtColor(still, cv2.COLOR_BGR2GRAY),
        "gray-hxwx1": cv2.cvtColor(still, cv2.COLOR_BGR2GRAY)[:, :, None],
        "bgra": cv2.cvtColor(still, cv2.COLOR_BGR2BGRA),
        "16-bit": still.astype(np.uint16) * 257,
    }
    for label, image in variants.items():
        assert detector.detect(image) == reference, label


def test_detection_on_a_downscaled_copy_maps_boxes_back_to_full_resolution(still: np.ndarray) -> None:
    small_box = make_detector("dlib-hog").detect(still)[0]
    big = cv2.resize(still, (1280, 720), interpolation=cv2.INTER_CUBIC)
    fx, fy = 1280 / still.shape[1], 720 / still.shape[0]
    for max_side in (400, 640, None):
        box = make_detector("dlib-hog", max_side=max_side).detect(big)[0]
        cx, cy = box.center
        assert abs(cx - small_box.center[0] * fx) < 0.1 * box.w, max_side
        assert abs(cy - small_box.center[1] * fy) < 0.1 * box.h, max_side
        assert 0.75 < box.w / (small_box.w * fx) < 1.33, max_side


def test_two_faces_are_returned_largest_first(stills: list[Path]) -> None:
    image = _two_faces(stills)
    for name in ("dlib-hog", "opencv-haar"):
        boxes = make_detector(name, max_side=None).detect(image)  # full resolution: the small face is 90 px
        assert len(boxes) == 2, name
        assert boxes[0].area > boxes[1].area
        assert boxes[0].x < 398 <= boxes[1].x  # the big face is the left still


def test_no_face_in_a_blank_or_noise_image() -> None:
    rng = np.random.default_rng(0)
    for image in (np.full((224, 398, 3), 128, np.uint8), rng.integers(0, 256, (224, 398), dtype=np.uint8)):
        assert make_detector("dlib-hog").detect(image) == []


def test_unknown_detector_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="dlib-hog, dlib-cnn, opencv-haar"):
        make_detector("mtcnn")
    with pytest.raises(ValueError, match="downscale"):
        make_detector("dlib-hog", downscale=0)


def test_unsupported_channel_count_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="gray, BGR or BGRA"):
        to_gray(np.zeros((10, 10, 2), np.uint8))


def test_boxes_are_scaled_back_clipped_and_sorted_largest_first() -> None:
    rects = [(10, 10, 30, 30), (-10, -5, 50, 40), (90, 90, 130, 140)]  # found at half resolution
    boxes = boxes_to_full(rects, 0.5, (100, 120))
    # the second is clipped to the 120x100 image, the third lies outside it and is dropped
    assert boxes == [Box(0, 0, 100, 80), Box(20, 20, 40, 40)]


def test_landmarks_are_68_points_on_the_face(still: np.ndarray, landmarker) -> None:
    box = make_detector("dlib-hog").detect(still)[0]
    points = landmarker.landmarks(still, box)
    assert points.shape == (68, 2) and points.dtype == np.float32
    centre = points.mean(axis=0)
    assert box.x < centre[0] < box.x + box.w and box.y < centre[1] < box.y + box.h
    assert points[36:42, 1].mean() < points[48:68, 1].mean()  # eyes above the mouth
    assert abs(eye_angle(points)) < 5


def test_align_face_levels_the_eyes_of_a_tilted_face(still: np.ndarray, landmarker) -> None:
    detector = make_detector("dlib-hog")
    box = detector.detect(still)[0]
    tilt = cv2.getRotationMatrix2D(box.center, 12, 1.0)
    tilted = cv2.warpAffine(still, tilt, (still.shape[1], still.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    points = landmarker.landmarks(tilted, detector.detect(tilted)[0])
    assert abs(eye_angle(points)) > 8
    aligned, moved = align_face(tilted, points)
    assert aligned.shape == tilted.shape
    assert abs(eye_angle(moved)) < 0.01
    measured = landmarker.landmarks(aligned, detector.detect(aligned)[0])
    assert abs(eye_angle(measured)) < 3


def test_auto_detection_size_is_per_detector_and_none_means_full_resolution(still: np.ndarray) -> None:
    from fer_utils.faces.crops import DEFAULT_MAX_SIDES

    for name in FACE_DETECTORS:
        assert make_detector(name).max_side == DEFAULT_MAX_SIDES[name]
    assert make_detector(NO_DETECTOR).max_side is None
    assert make_detector("dlib-hog", max_side=None).max_side is None
    with pytest.raises(ValueError, match="max_side"):
        make_detector("dlib-hog", max_side="big")
    # a frame no longer than max_side is not downscaled: same boxes as at full resolution
    assert make_detector("dlib-hog", max_side=398).detect(still) == make_detector("dlib-hog", max_side=None).detect(
        still
    )


def test_measure_detectors_reports_rate_and_time_on_real_stills(stills: list[Path]) -> None:
    faces = [cv2.imread(str(p)) for p in stills[:3]]
    blank = np.full_like(faces[0], 255)  # a white frame: nothing to find
    table = measure_detectors(faces + [blank], names=("dlib-hog", "opencv-haar"))
    assert list(table["detector"]) == ["dlib-hog", "opencv-haar"]
    assert table["detection_rate"].tolist() == [0.75, 0.75]
    assert (table["frames"] == 4).all() and (table["ms_per_frame"] > 0).all()


# --- images that are already faces, small and large images -----------------


def _small_gray_crops(stills: list[Path], side: int = 48) -> list[np.ndarray]:
    """Real faces as a face-crop dataset ships them: tight gray crops, side×side."""
    finder = make_detector("dlib-hog", max_side=None)
    crops = []
    for path in stills:
        image = cv2.imread(str(path))
        crops.append(crop_face(image, finder.detect(image)[0], side=side, margin=0.1))
    return crops


def test_detector_none_is_listed_and_returns_the_whole_image(still: np.ndarray) -> None:
    assert NO_DETECTOR in DETECTORS and NO_DETECTOR not in FACE_DETECTORS
    detector = make_detector(NO_DETECTOR)
    assert detector.name == NO_DETECTOR
    assert detector.detect(still) == [Box(0, 0, still.shape[1], still.shape[0])]
    assert detector.detect(to_gray(still)[:48, :40]) == [Box(0, 0, 40, 48)]
    with pytest.raises(ValueError, match="gray, BGR or BGRA"):
        detector.detect(np.zeros((4, 4, 2), np.uint8))


@pytest.mark.parametrize("name", ["dlib-hog", "opencv-haar"])
def test_small_face_crops_are_upsampled_for_detection(name: str, stills: list[Path]) -> None:
    """Regression: 48×48 gray face crops were all no_face; detection now runs at MIN_DETECTION_SIDE."""
    crops = _small_gray_crops(stills[::3])
    detector = make_detector(name)
    found = [detector.detect(crop) for crop in crops]
    assert sum(len(boxes) == 1 for boxes in found) >= len(crops) - (0 if name == "dlib-hog" else 2)
    for boxes in found:  # boxes come back in the 48×48 image's own coordinates
        assert all(b.x >= 0 and b.y >= 0 and b.x + b.w <= 48 and b.y + b.h <= 48 and b.w >= 24 for b in boxes)
    no_upsampling = make_detector(name)
    no_upsampling.min_side = None
    assert sum(len(no_upsampling.detect(crop)) for crop in crops) == 0  # what happened before


def test_no_face_reason_says_at_what_resolution_detection_ran(stills: list[Path]) -> None:
    """Regression: a face in a large image was `no_face` because detection ran at 400 px,
    and the reason did not say so."""
    canvas = np.full((2400, 2400), 255, np.uint8)
    face = to_gray(cv2.imread(str(stills[0])))
    canvas[100 : 100 + face.shape[0], 100 : 100 + face.shape[1]] = face
    detector = make_detector("dlib-hog")
    assert detector.detect(canvas) == []
    reason = no_face_reason(detector, canvas.shape)
    assert "searched a 400x400 copy of the 2400x2400 image" in reason
    assert "faces smaller than about 480 px" in reason and "--max-side full" in reason
    assert len(make_detector("dlib-hog", max_side=None).detect(canvas)) == 1  # what the reason suggests works
    small = no_face_reason(detector, (48, 48))
    assert f"searched a {MIN_DETECTION_SIDE}x{MIN_DETECTION_SIDE} copy of the 48x48 image" in small
    assert "--detector none" in small


def test_a_large_face_is_searched_on_whole_pyramid_levels_fewer_and_a_small_one_in_full() -> None:
    hog = make_detector("dlib-hog")
    # 389 px of 720 is 216 px in the 400 px copy: three levels (×5/6) down it is still 125 ≥ 80·1.2² px
    assert face_scale_side(hog, (720, 720, 3), Box(162, 203, 389, 389)) == int(400 / 1.2**3) == 231
    assert face_scale_side(hog, (720, 1280, 3), Box(500, 200, 300, 300)) is None  # 94 px in the copy
    assert face_scale_side(make_detector("opencv-haar"), (720, 720, 3), Box(162, 203, 389, 389)) is None
    assert face_scale_side(hog, (200, 200), Box(0, 0, 200, 200)) == 166  # one level: 166 ≥ min_side 160
    assert face_scale_side(hog, (160, 160), Box(0, 0, 160, 160)) is None  # the copy is at its min_side
    smaller = with_max_side(hog, 231)
    assert (smaller.max_side, hog.max_side) == (231, 400) and smaller._model is hog._model
