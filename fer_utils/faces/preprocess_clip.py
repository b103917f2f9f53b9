"""One clip's preprocessing: the settings that decide its crops (`Settings`), and for each sampled frame
the face detected, cropped, written as a PNG and described by a manifest row (`process_clip`).
Bad input is a row's status and reason, never an exception. `fer_utils.faces.preprocess` runs
this over a whole clip index, in worker processes, and resumes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_utils.errors import InputError, MediaError
from fer_utils.faces.crop_spec import CropSpec, check_crop_spec
from fer_utils.faces.crops import CropFunction, FaceCrop, crop_face, largest_face_crop
from fer_utils.faces.detectors import (
    DEFAULT_MAX_SIDE,
    Box,
    FaceDetector,
    Landmarker,
    detector_kind,
    face_scale_side,
    make_detector,
    no_face_reason,
    resolve_max_side,
    with_max_side,
)
from fer_utils.faces.preprocess_folder import atomic_write_bytes, is_utf8, printable
from fer_utils.registry import PAPER_FRAMES

DEFAULT_FRAMES = PAPER_FRAMES
MIN_IMAGE_SIDE = 32  # smaller images cannot hold a face any detector finds: recorded as bad_image
FORMAT_VERSION = 2  # 2: completion records keyed by the source file's size and mtime
CLIP_COLUMNS: tuple[str, ...] = ("path", "dataset", "emotion", "subject", "clip_id")


@dataclass(frozen=True)
class Settings:
    """Everything that decides a run's output: the crop (`crop`, its CropSpec, written beside the crops) and
    how frames are sampled and searched; stored as the output folder's fingerprint (`record`)."""

    frames: int | None = DEFAULT_FRAMES
    every: int | None = None
    crop: CropSpec = field(default_factory=CropSpec)
    max_side: int | None = DEFAULT_MAX_SIDE
    scale_to_face: bool = True
    version: int = FORMAT_VERSION

    def record(self) -> dict:
        """The fingerprint stored in `.parts/settings.json`: the crop's fields under the names the records
        have always used (`size` for the side; the colour, always gray, is the spec's alone), so that folders
        preprocessed before the spec existed resume."""
        crop = {"detector": self.crop.detector, "size": self.crop.side, "margin": self.crop.margin}
        values = {name: value for name, value in asdict(self).items() if name != "crop"}
        return {**values, **crop, "align": self.crop.align}


def check_settings(settings: Settings) -> None:
    """Raise InputError for settings that cannot work (unknown detector, sizes, margins)."""
    detector_kind(settings.crop.detector)  # an InputError naming the detectors it knows
    check_crop_spec(settings.crop)
    if settings.frames is not None and settings.frames < 1:
        raise InputError(f"frames must be at least 1 (or None for all), got {settings.frames}")
    if settings.every is not None and settings.every < 1:
        raise InputError(f"every must be at least 1, got {settings.every}")
    resolve_max_side(settings.crop.detector, settings.max_side)


def run_detector(settings: Settings) -> FaceDetector:
    """The detector a run's `settings` name, searching copies at most `settings.max_side` px long."""
    return make_detector(settings.crop.detector, max_side=settings.max_side)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of `image` (deterministic: same pixels, same bytes)."""
    import cv2

    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise InputError("OpenCV could not encode the crop as PNG")
    return buffer.tobytes()


# The longest crop file name, in bytes: room left under the file system's 255 for the temporary name it is
# written under first (`storage.atomic.temporary_sibling`: `.<name>.tmp-<pid>`).
MAX_CROP_NAME_BYTES = 200


def short_stem(stem: str, limit: int) -> str:
    """`stem` when it fits in `limit` UTF-8 bytes, else its start and 10 hex digits of its hash
    (`<start>-<hash>`): unique and the same on every run."""
    data = stem.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return stem
    digest = hashlib.sha1(data).hexdigest()[:10]
    start = data[: limit - len(digest) - 1].decode("utf-8", "ignore")  # cut on a whole character
    return f"{start}-{digest}"


def crop_relpath(emotion: str, clip_id: str, frame_index: int) -> str:
    """The crop's path relative to the output folder: `<emotion>/<clip_id>_f<frame:04d>.png`, a clip id too
    long for a file name shortened (`short_stem`)."""
    safe_id = str(clip_id).replace("/", "_").replace("\\", "_")
    suffix = f"_f{frame_index:04d}.png"
    return f"{emotion}/{short_stem(safe_id, MAX_CROP_NAME_BYTES - len(suffix))}{suffix}"


def _row(clip: dict, settings: Settings, **values: Any) -> dict:
    """One manifest row for `clip` with `values` filled in and the rest empty."""
    row = {
        "dataset": clip["dataset"],
        "clip_id": clip["clip_id"],
        "subject": clip["subject"],
        "emotion": clip["emotion"],
        "source": clip["path"],
        "frame_index": None,
        "detector": settings.crop.detector,
        "x": None,
        "y": None,
        "w": None,
        "h": None,
        "n_faces": None,
        "status": "",
        "reason": "",
        "image": "",
        "split": clip.get("split", ""),
    }
    row.update(values)
    return row


def _first_face(
    frame: np.ndarray,
    detectors: Sequence[FaceDetector],
    settings: Settings,
    landmarker: Landmarker | None,
    crop: CropFunction = crop_face,
) -> FaceCrop | None:
    """The largest face found by the first of `detectors` that finds one (a clip's face-scaled search,
    then the full one), cropped as `settings` say; None when none finds a face."""
    for detector in detectors:
        found = largest_face_crop(frame, detector, settings.crop, landmarker, crop)
        if found is not None:
            return found
    return None


def _frame_row(
    clip: dict,
    index: int,
    frame: np.ndarray | None,
    out_dir: Path,
    settings: Settings,
    detectors: Sequence[FaceDetector],
    landmarker: Landmarker | None,
    crop: CropFunction = crop_face,
) -> dict:
    """Detect (with the first of `detectors` that finds a face), crop and write one sampled frame; the
    manifest row says what happened."""
    import cv2

    if frame is None:
        return _row(
            clip,
            settings,
            frame_index=index,
            status="unreadable",
            reason=f"frame {index} could not be decoded (truncated or corrupted video?)",
        )
    if min(frame.shape[:2]) < MIN_IMAGE_SIDE:
        return _row(
            clip,
            settings,
            frame_index=index,
            status="bad_image",
            reason=f"{frame.shape[1]}x{frame.shape[0]} image is too small to hold a face",
        )
    try:
        found = _first_face(frame, detectors, settings, landmarker, crop)
    except (ValueError, RuntimeError, cv2.error) as exc:  # dlib raises RuntimeError
        return _row(clip, settings, frame_index=index, status="bad_image", reason=f"unusable image: {exc}")
    if found is None:
        return _row(
            clip,
            settings,
            frame_index=index,
            n_faces=0,
            status="no_face",
            reason=no_face_reason(detectors[-1], frame.shape),
        )
    relpath = crop_relpath(clip["emotion"], clip["clip_id"], index)
    atomic_write_bytes(out_dir / relpath, encode_png(found.crop))
    box = found.box
    reason = f"{found.n_faces} faces, kept the largest" if found.n_faces > 1 else ""
    return _row(
        clip,
        settings,
        frame_index=index,
        x=box.x,
        y=box.y,
        w=box.w,
        h=box.h,
        n_faces=found.n_faces,
        status="ok",
        reason=reason,
        image=relpath,
    )


def process_clip(
    clip: dict,
    out_dir: Path,
    settings: Settings,
    detector: FaceDetector,
    landmarker: Landmarker | None = None,
    crop: CropFunction = crop_face,
    frames: Sequence[tuple[int, np.ndarray | None]] | None = None,
) -> list[dict]:
    """Sample (unless `frames` gives the clip's sampled frames already), detect, crop (with `crop`: chapter 2's
    `crop_face` or an edit of it) and write one clip; one manifest row per sampled frame (or one row saying
    why the clip could not be read). Never raises for bad input. With `settings.scale_to_face`, once a frame
    shows a large face the later frames are searched on a copy smaller by whole pyramid levels
    (`faces.detectors.face_scale_side`), and again in full where that finds nothing."""
    if frames is None:
        read = _read_clip(clip, settings)
        if isinstance(read, dict):
            return [read]
        frames = read
    detectors: list[FaceDetector] = [detector]
    rows = []
    for index, frame in frames:
        row = _frame_row(clip, index, frame, Path(out_dir), settings, detectors, landmarker, crop)
        if settings.scale_to_face and len(detectors) == 1 and row["status"] == "ok" and frame is not None:
            side = face_scale_side(detector, frame.shape, Box(row["x"], row["y"], row["w"], row["h"]))
            detectors = detectors if side is None else [with_max_side(detector, side), detector]
        rows.append(row)
    return rows


def _read_clip(clip: dict, settings: Settings) -> list[tuple[int, np.ndarray | None]] | dict:
    """The clip's sampled frames, or the one row that says why they cannot be read."""
    from fer_utils.data.images import check_media
    from fer_utils.data.video import try_sample_frames

    not_text = [k for k in CLIP_COLUMNS if not is_utf8(str(clip[k]))]
    if not_text:
        safe = {**clip, **{k: printable(str(clip[k])) for k in CLIP_COLUMNS}}
        reason = f"{safe['path']}: not valid UTF-8 ({', '.join(not_text)}); rename it to process it"
        return _row(safe, settings, status="bad_name", reason=reason)
    path = Path(clip["path"])
    try:
        frames = try_sample_frames(path, settings.frames, settings.every)
        is_image = check_media(path) == "image"
    except MediaError as exc:
        return _row(clip, settings, status=exc.status, reason=str(exc))
    except OSError as exc:  # permission denied, I/O error: the file, not the run, is unusable
        return _row(clip, settings, status="unreadable", reason=f"{path}: cannot be read ({exc.strerror or exc})")
    if is_image and int(clip.get("frame", -1)) >= 0:  # a crop-named image keeps its frame number
        frames = [(int(clip["frame"]), frames[0][1])]
    return list(frames)
