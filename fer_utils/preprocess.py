"""Crop → grayscale → resize, and the resumable, parallel dataset run that writes crops + manifest.

The paper's preprocessing: sample 6 frames of each clip, detect the face with dlib, crop it, convert
to grayscale and resize to 180×180. `preprocess_dataset` does that for a clip index (see
ARCHITECTURE.md) and writes `<out>/<emotion>/<clip_id>_f<frame:04d>.png` plus `<out>/manifest.csv`
with one row per sampled frame and its status (`STATUSES`) and reason.

Safety: every file is written to a temporary name (`.<name>.tmp-<pid>`) and moved into place with
`os.replace`, so a killed run never leaves a truncated crop or manifest. Each finished clip leaves a
small completion record in `<out>/.parts/`, named by the clip and its source file's size and mtime; a
rerun skips those clips and merges the records into the manifest, so an interrupted run resumes, an
identical second run changes no byte, and a source file replaced since is redone (its old crops
removed). The folder belongs to one source and one set of settings (`.parts/source.json`,
`.parts/settings.json`): another source or other settings are refused unless `force` starts over, and
an output folder that overlaps the source is refused. One run at a time holds `<out>/.preprocess.lock`
(`locking.folder_lock`); start-up deletes only the temporary files of dead processes. Per-file problems
(unreadable files, names that are not UTF-8) are statuses, never a crash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import active_children, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_utils.data import IMAGE_SUFFIXES
from fer_utils.errors import PreprocessError, VideoError
from fer_utils.faces import (
    AUTO,
    DEFAULT_DETECTOR,
    DEFAULT_MAX_SIDE,
    DETECTORS,
    NO_DETECTOR,
    Box,
    FaceDetector,
    Landmarker,
    align_face,
    alignment_matrix,
    face_scale_side,
    make_detector,
    make_landmarker,
    no_face_reason,
    resolve_max_side,
    rotate_box,
    to_gray,
    with_max_side,
)
from fer_utils.locking import folder_lock, process_alive
from fer_utils.registry import DEFAULT_MARGIN, PAPER_FRAMES, PAPER_SIDE

DEFAULT_SIZE = PAPER_SIDE
DEFAULT_FRAMES = PAPER_FRAMES
MIN_IMAGE_SIDE = 32  # smaller images cannot hold a face any detector finds: recorded as bad_image
MANIFEST_NAME = "manifest.csv"
PARTS_DIR = ".parts"
SETTINGS_NAME = "settings.json"
SOURCE_NAME = "source.json"
LOCK_NAME = ".preprocess.lock"
TMP_MARK = ".tmp-"
FORMAT_VERSION = 2  # 2: completion records keyed by the source file's size and mtime
STATUSES: tuple[str, ...] = (
    "ok",
    "no_face",
    "unreadable",
    "empty",
    "not_video",
    "bad_image",
    "missing",
    "bad_name",
)
MANIFEST_COLUMNS: tuple[str, ...] = (
    "dataset",
    "clip_id",
    "subject",
    "emotion",
    "source",
    "frame_index",
    "detector",
    "x",
    "y",
    "w",
    "h",
    "n_faces",
    "status",
    "reason",
    "image",
)
INT_COLUMNS: tuple[str, ...] = ("frame_index", "x", "y", "w", "h", "n_faces")
CLIP_COLUMNS: tuple[str, ...] = ("path", "dataset", "emotion", "subject", "clip_id")
# Detectors that the parent makes once and sends to the workers: dlib's HOG takes ~1 s of CPU to build
# (it decodes its embedded model) but ~3 ms to unpickle; the others load quickly or do not pickle.
SHIPPED_DETECTORS: tuple[str, ...] = ("dlib-hog",)


@dataclass(frozen=True)
class FaceCrop:
    """The largest face of an image: its size×size gray crop, its box (full resolution) and how many faces were seen."""

    crop: np.ndarray
    box: Box
    n_faces: int


@dataclass(frozen=True)
class Settings:
    """Everything that decides a run's output; stored as the output folder's fingerprint."""

    frames: int | None = DEFAULT_FRAMES
    every: int | None = None
    detector: str = DEFAULT_DETECTOR
    size: int = DEFAULT_SIZE
    margin: float = DEFAULT_MARGIN
    align: bool = False
    max_side: int | None = DEFAULT_MAX_SIDE
    scale_to_face: bool = True
    version: int = FORMAT_VERSION


def check_settings(settings: Settings) -> None:
    """Raise PreprocessError for settings that cannot work (unknown detector, sizes, margins)."""
    if settings.detector not in DETECTORS:
        raise PreprocessError(f"unknown detector {settings.detector!r}; choose one of: {', '.join(DETECTORS)}")
    if settings.size < 8:
        raise PreprocessError(f"crop size must be at least 8 pixels, got {settings.size}")
    if not 0.0 <= settings.margin <= 1.0:
        raise PreprocessError(f"margin must be between 0 and 1 (fraction of the box size), got {settings.margin}")
    if settings.frames is not None and settings.frames < 1:
        raise PreprocessError(f"frames must be at least 1 (or None for all), got {settings.frames}")
    if settings.every is not None and settings.every < 1:
        raise PreprocessError(f"every must be at least 1, got {settings.every}")
    if settings.max_side is not None and settings.max_side < 32:
        raise PreprocessError(f"max_side must be at least 32 pixels, got {settings.max_side}")


def square_region(box: Box, margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the square around `box`'s centre, side = longest box side × (1 + 2·margin)."""
    side = max(1, int(round(max(box.w, box.h) * (1.0 + 2.0 * margin))))
    cx, cy = box.center
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    return x0, y0, x0 + side, y0 + side


def crop_face(image: np.ndarray, box: Box, *, size: int = DEFAULT_SIZE, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The face in `box` as a size×size uint8 gray crop: square around the box with `margin` (fraction
    of the box side) on every side, edge pixels repeated where it leaves the image. Accepts 1, 3 or 4
    channels and 8 or 16 bits."""
    import cv2

    gray = to_gray(image)
    height, width = gray.shape
    x0, y0, x1, y1 = square_region(box, margin)
    inside = gray[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
    if inside.size == 0:
        raise ValueError(f"box {box} lies outside the {width}×{height} image")
    padded = cv2.copyMakeBorder(
        inside, max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width), cv2.BORDER_REPLICATE
    )
    interpolation = cv2.INTER_AREA if padded.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(padded, (size, size), interpolation=interpolation)


def largest_face_crop(
    image: np.ndarray,
    detector: FaceDetector,
    *,
    size: int = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
    align: bool = False,
    landmarker: Landmarker | None = None,
) -> FaceCrop | None:
    """Detect faces in `image`, keep the largest and crop it (optionally rotated so the eyes are level
    first, which needs a `landmarker`); None when no face is found."""
    if align and landmarker is None:
        raise ValueError("align=True needs a landmarker: pass landmarker=make_landmarker()")
    boxes = detector.detect(image)
    if not boxes:
        return None
    box = boxes[0]
    if align:
        assert landmarker is not None
        points = landmarker.landmarks(image, box)
        image, _ = align_face(image, points)
        box = rotate_box(box, alignment_matrix(points), image.shape)
    return FaceCrop(crop=crop_face(image, box, size=size, margin=margin), box=box, n_faces=len(boxes))


def atomic_write_bytes(path: Path, data: bytes) -> bool:
    """Write `data` to `path` via a temporary file and os.replace; skip (False) when the bytes are already there."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return True


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of `image` (deterministic: same pixels, same bytes)."""
    import cv2

    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("OpenCV could not encode the crop as PNG")
    return buffer.tobytes()


def is_utf8(text: str) -> bool:
    """Whether `text` is valid Unicode (a non-UTF-8 file name decodes to lone surrogates, which is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """`text` with the bytes of a non-UTF-8 file name shown as `\\xNN` escapes (safe to print and store)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def source_stamp(path: str) -> str:
    """`<size>-<mtime_ns>` of a source file (or why it has none): what its completion record is keyed by."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"error{exc.errno}"
    return f"{info.st_size}-{info.st_mtime_ns}"


def crop_relpath(emotion: str, clip_id: str, frame_index: int) -> str:
    """The crop's path relative to the output folder: `<emotion>/<clip_id>_f<frame:04d>.png`."""
    safe_id = str(clip_id).replace("/", "_").replace("\\", "_")
    return f"{emotion}/{safe_id}_f{frame_index:04d}.png"


def clip_key(clip: dict) -> str:
    """A stable file-name key for one clip row (dataset, clip id and source path)."""
    text = "\0".join(str(clip[k]) for k in ("dataset", "clip_id", "path"))
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def _row(clip: dict, settings: Settings, **values: Any) -> dict:
    """One manifest row for `clip` with `values` filled in and the rest empty."""
    row = {
        "dataset": clip["dataset"],
        "clip_id": clip["clip_id"],
        "subject": clip["subject"],
        "emotion": clip["emotion"],
        "source": clip["path"],
        "frame_index": None,
        "detector": settings.detector,
        "x": None,
        "y": None,
        "w": None,
        "h": None,
        "n_faces": None,
        "status": "",
        "reason": "",
        "image": "",
    }
    row.update(values)
    return row


def _first_face(
    frame: np.ndarray, detectors: Sequence[FaceDetector], settings: Settings, landmarker: Landmarker | None
) -> FaceCrop | None:
    """The largest face found by the first of `detectors` that finds one (a clip's face-scaled search,
    then the full one), cropped as `settings` say; None when none finds a face."""
    for detector in detectors:
        found = largest_face_crop(
            frame, detector, size=settings.size, margin=settings.margin, align=settings.align, landmarker=landmarker
        )
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
        found = _first_face(frame, detectors, settings, landmarker)
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
    clip: dict, out_dir: Path, settings: Settings, detector: FaceDetector, landmarker: Landmarker | None = None
) -> list[dict]:
    """Sample, detect, crop and write one clip; one manifest row per sampled frame (or one row saying
    why the clip could not be read). Never raises for bad input."""
    from fer_utils.video import check_media, try_sample_frames

    not_text = [k for k in CLIP_COLUMNS if not is_utf8(str(clip[k]))]
    if not_text:
        safe = {**clip, **{k: printable(str(clip[k])) for k in CLIP_COLUMNS}}
        return [
            _row(
                safe,
                settings,
                status="bad_name",
                reason=f"{safe['path']}: not valid UTF-8 ({', '.join(not_text)}); rename it to process it",
            )
        ]
    path = Path(clip["path"])
    try:
        frames = try_sample_frames(path, settings.frames, settings.every)
        is_image = check_media(path) == "image"
    except VideoError as exc:
        return [_row(clip, settings, status=exc.status, reason=str(exc))]
    except OSError as exc:  # permission denied, I/O error: the file, not the run, is unusable
        return [_row(clip, settings, status="unreadable", reason=f"{path}: cannot be read ({exc.strerror or exc})")]
    if is_image and int(clip.get("frame", -1)) >= 0:  # a crop-named image keeps its frame number
        frames = [(int(clip["frame"]), frames[0][1])]
    return clip_rows(clip, frames, Path(out_dir), settings, detector, landmarker)


def clip_rows(
    clip: dict,
    frames: Sequence[tuple[int, np.ndarray | None]],
    out_dir: Path,
    settings: Settings,
    detector: FaceDetector,
    landmarker: Landmarker | None = None,
) -> list[dict]:
    """Detect, crop and write a clip's sampled frames. With `settings.scale_to_face`, once a frame
    shows a large face the later frames are searched on a copy smaller by whole pyramid levels
    (`faces.face_scale_side`), and again in full where that finds nothing."""
    detectors: list[FaceDetector] = [detector]
    rows = []
    for index, frame in frames:
        row = _frame_row(clip, index, frame, out_dir, settings, detectors, landmarker)
        if settings.scale_to_face and len(detectors) == 1 and row["status"] == "ok" and frame is not None:
            side = face_scale_side(detector, frame.shape, Box(row["x"], row["y"], row["w"], row["h"]))
            detectors = detectors if side is None else [with_max_side(detector, side), detector]
        rows.append(row)
    return rows


def manifest_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows as a manifest table: the fixed columns, nullable integers, empty strings for missing text."""
    table = pd.DataFrame(list(rows), columns=list(MANIFEST_COLUMNS))
    for column in INT_COLUMNS:
        table[column] = pd.array(table[column].tolist(), dtype="Int64")
    for column in set(MANIFEST_COLUMNS) - set(INT_COLUMNS):
        table[column] = table[column].fillna("").astype(str)
    return table


def _csv_bytes(table: pd.DataFrame) -> bytes:
    """The table as CSV bytes (Unix newlines, no index)."""
    return table.to_csv(index=False, lineterminator="\n").encode("utf-8")


def read_manifest_csv(path: Path) -> pd.DataFrame:
    """A manifest (or part) CSV read back with the manifest's column types."""
    dtypes = {c: ("Int64" if c in INT_COLUMNS else str) for c in MANIFEST_COLUMNS}
    table = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values={c: [""] for c in INT_COLUMNS})
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise PreprocessError(f"{path} is not a preprocessing manifest (missing columns: {', '.join(missing)})")
    return table[list(MANIFEST_COLUMNS)]


def _part_path(out_dir: Path, clip: dict) -> Path:
    """Where the completion record of `clip` lives: named by the clip and its source file's stamp."""
    return Path(out_dir) / PARTS_DIR / f"{clip_key(clip)}.{clip['stamp']}.csv"


def _listed_crops(table_path: Path) -> list[str]:
    """The crops (relative paths) a manifest or completion record lists; none if it cannot be read."""
    try:
        table = read_manifest_csv(table_path)
    except (PreprocessError, ValueError, OSError, pd.errors.ParserError):
        return []
    return [image for image in table.loc[table["status"] == "ok", "image"] if image]


def _remove_crops(out_dir: Path, images: Iterable[str]) -> None:
    """Delete crops listed relative to `out_dir` (never anything outside it) and their emptied folders."""
    root = Path(out_dir).resolve()
    for image in images:
        path = (root / image).resolve()
        if root in path.parents:
            path.unlink(missing_ok=True)
            if path.parent != root and path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()


def discard_stale_records(out_dir: Path, clip: dict) -> None:
    """Remove the completion records of `clip` made from an earlier version of its source file, and
    their crops (crops first: an interrupted removal is finished by the next run)."""
    current = _part_path(out_dir, clip)
    for old in sorted((Path(out_dir) / PARTS_DIR).glob(f"{clip_key(clip)}.*.csv")):
        if old != current:
            _remove_crops(out_dir, _listed_crops(old))
            old.unlink(missing_ok=True)


def part_bytes(rows: list[dict]) -> bytes:
    """Manifest rows as CSV bytes, the same bytes as `_csv_bytes(manifest_frame(rows))` (the csv module:
    ~0.1 ms where building a DataFrame costs ~8, once per clip)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(["" if row[column] is None else row[column] for column in MANIFEST_COLUMNS] for row in rows)
    return buffer.getvalue().encode("utf-8")


def read_part_rows(path: Path) -> list[dict] | None:
    """The rows of a completion record (integer columns as int or None), or None when it is not one."""
    try:
        with Path(path).open(encoding="utf-8", newline="") as fh:
            lines = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not lines or lines[0] != list(MANIFEST_COLUMNS) or any(len(v) != len(MANIFEST_COLUMNS) for v in lines[1:]):
        return None
    rows = [dict(zip(MANIFEST_COLUMNS, values)) for values in lines[1:]]
    try:
        for row in rows:
            row.update({column: int(row[column]) if row[column] else None for column in INT_COLUMNS})
    except ValueError:
        return None
    return rows


def write_part(out_dir: Path, clip: dict, rows: list[dict]) -> None:
    """Record `clip` as finished (atomically, after its crops are in place)."""
    atomic_write_bytes(_part_path(out_dir, clip), part_bytes(rows))


def read_part(out_dir: Path, clip: dict) -> list[dict] | None:
    """The finished record of `clip`, or None if it is absent, unreadable or its crops are missing."""
    path = _part_path(out_dir, clip)
    if not path.is_file():
        return None
    rows = read_part_rows(path)
    if rows is None or not all((Path(out_dir) / r["image"]).is_file() for r in rows if r["status"] == "ok"):
        return None
    return rows


def _process_named(
    clip: dict, out_dir: Path, settings: Settings, detector: FaceDetector, landmarker: Landmarker | None
) -> list[dict]:
    """`process_clip`, whose unexpected failures name the file (a worker's traceback does not)."""
    try:
        return process_clip(clip, out_dir, settings, detector, landmarker)
    except Exception as exc:
        raise PreprocessError(f"{printable(clip['path'])}: {type(exc).__name__}: {exc}") from exc


PARENT_POLL_S = 0.5  # how often a worker checks that its run is still alive


def exit_with_parent(parent: int) -> None:
    """Exit this process (at once, whatever it is doing) as soon as `parent` is gone: a killed run's workers
    are handed to another parent and would otherwise go on to the end of the dataset, or wait forever for
    work. Every file a worker writes is atomic, so at most a temporary file is left (the next run removes it)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def start_worker(parent: int) -> None:
    """The pool's initializer: follow `parent` (`exit_with_parent`) and import what a worker needs."""
    exit_with_parent(parent)
    import_worker_modules()


def import_worker_modules() -> None:
    """Import what a worker needs (workers import while the parent makes the detector)."""
    import cv2
    import dlib  # noqa: F401

    import fer_utils.video  # noqa: F401

    cv2.setNumThreads(1)


def _process_all(todo: Sequence[dict], out_dir: Path, settings: Settings, detector: FaceDetector | None) -> int:
    """Process clips with `detector` (None: one made here) and a landmarker made here: the body of a
    worker process."""
    import cv2

    cv2.setNumThreads(1)
    detector = detector or make_detector(settings.detector, max_side=settings.max_side)
    landmarker = make_landmarker() if settings.align else None
    for clip in todo:
        write_part(out_dir, clip, _process_named(clip, out_dir, settings, detector, landmarker))
    return len(todo)


def _stop_workers(before: set[int]) -> None:
    """Terminate the child processes that were not running before the pool started (its workers): on an
    interrupt or a failure the run stops now, not when they finish their clips. Every file they write is
    atomic, so what a terminated worker leaves is at most a temporary file (removed by the next run)."""
    for child in active_children():
        if child.pid not in before:
            child.terminate()


def _run_serial(todo: list[dict], out_dir: Path, settings: Settings, bar: tqdm) -> None:
    """Process `todo` in this process with one detector."""
    detector = make_detector(settings.detector, max_side=settings.max_side)
    landmarker = make_landmarker() if settings.align else None
    for clip in todo:
        write_part(out_dir, clip, _process_named(clip, out_dir, settings, detector, landmarker))
        bar.update(1)


def _run_parallel(todo: list[dict], out_dir: Path, settings: Settings, workers: int, bar: tqdm) -> None:
    """Process `todo` in `workers` spawned processes, each taking every `workers`-th clip (clips cost
    about the same); progress is read from the completion records. The workers start (and import) first,
    while this process makes a SHIPPED_DETECTORS detector once for all of them."""
    context = get_context("spawn")  # not fork: the caller may hold TensorFlow threads
    before = {child.pid for child in active_children()}
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=start_worker, initargs=(os.getpid(),)
    ) as pool:
        try:
            _watch_workers(pool, todo, out_dir, settings, workers, bar)
        except BaseException:  # Ctrl-C, SIGTERM (the CLI raises KeyboardInterrupt), a failed worker
            _stop_workers(before)
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _watch_workers(
    pool: ProcessPoolExecutor,
    todo: list[dict],
    out_dir: Path,
    settings: Settings,
    workers: int,
    bar: tqdm,
) -> None:
    """Submit the workers' shares of `todo` and follow them until all are done (PreprocessError when one fails)."""
    parts = Path(out_dir) / PARTS_DIR
    pending = {_part_path(out_dir, clip).name for clip in todo}
    started = [pool.submit(os.getpid) for _ in range(workers)]  # one process per submit while none is idle
    shipped = settings.detector in SHIPPED_DETECTORS
    detector = make_detector(settings.detector, max_side=settings.max_side) if shipped else None
    futures = [
        *started,
        *(pool.submit(_process_all, todo[k::workers], out_dir, settings, detector) for k in range(workers)),
    ]
    while futures:
        finished, running = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
        done_now = pending & {p.name for p in parts.glob("*.csv")}
        bar.update(len(done_now))
        pending -= done_now
        for future in finished:
            if future.exception() is not None:
                raise PreprocessError(
                    f"a preprocessing worker failed ({future.exception()!r}); finished clips are kept, rerun to resume"
                ) from future.exception()
        futures = list(running)


def _stored(path: Path) -> dict | None:
    """A JSON record of the output folder, or None when there is none."""
    return json.loads(path.read_text()) if path.is_file() else None


def _differences(stored: dict, wanted: dict) -> str:
    """`key: old there, new now` for each value that differs."""
    return ", ".join(f"{k}: {stored.get(k)!r} there, {v!r} now" for k, v in wanted.items() if stored.get(k) != v)


def _foreign_listed_source(out_dir: Path, paths: set[str]) -> str | None:
    """A source file the folder's manifest lists that is not among `paths`, or None."""
    manifest = Path(out_dir) / MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        listed = set(read_manifest_csv(manifest)["source"])
    except (PreprocessError, ValueError, pd.errors.ParserError):
        return f"{manifest} (not readable as a manifest)"
    return next(iter(sorted(listed - {printable(p) for p in paths})), None)


def crop_side(out_dir: Path) -> int | None:
    """The side (px) of the crops a preprocessing run wrote into `out_dir` (its recorded settings), or
    None for a crops folder without records (made by hand or by an older version)."""
    stored = _stored(Path(out_dir) / PARTS_DIR / SETTINGS_NAME)
    return int(stored["size"]) if stored and "size" in stored else None


def claim_folder(out_dir: Path, settings: Settings, source: dict, paths: set[str]) -> None:
    """Record `settings` and `source` in a new output folder, or refuse one made from another source or
    with other settings, or holding a manifest (without records) that lists files not in `paths`
    (nothing is written then)."""
    parts = Path(out_dir) / PARTS_DIR
    records = {SOURCE_NAME: source, SETTINGS_NAME: asdict(settings)}
    stored = {name: _stored(parts / name) for name in records}
    if stored[SOURCE_NAME] is None and stored[SETTINGS_NAME] is not None:
        stored[SOURCE_NAME] = {"datasets": "unknown (made before sources were recorded)", "root": "unknown"}
    foreign = _foreign_listed_source(out_dir, paths) if stored[SOURCE_NAME] is None else None
    if foreign is not None:
        stored[SOURCE_NAME] = {"datasets": "unknown (a manifest without records)", "root": f"it lists {foreign}"}
    if stored[SOURCE_NAME] is not None and stored[SOURCE_NAME] != source:
        raise PreprocessError(
            f"{out_dir} holds the crops of another source ({_differences(stored[SOURCE_NAME], source)}); "
            "use another --out folder, or --force (force=True) to delete them and start over"
        )
    if stored[SETTINGS_NAME] is not None and stored[SETTINGS_NAME] != records[SETTINGS_NAME]:
        raise PreprocessError(
            f"{out_dir} was preprocessed with other settings "
            f"({_differences(stored[SETTINGS_NAME], records[SETTINGS_NAME])}); "
            "use another --out folder, or --force (force=True) to delete its crops and start over"
        )
    for name, record in records.items():
        if stored[name] is None:
            atomic_write_bytes(parts / name, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def start_over(out_dir: Path) -> None:
    """Delete what earlier runs wrote into `out_dir`: the crops their manifest and records list, the
    records and the manifest. Other files in the folder are left alone."""
    out_dir = Path(out_dir)
    tables = [out_dir / MANIFEST_NAME, *sorted((out_dir / PARTS_DIR).glob("*.csv"))]
    _remove_crops(out_dir, sorted({image for table in tables if table.is_file() for image in _listed_crops(table)}))
    shutil.rmtree(out_dir / PARTS_DIR, ignore_errors=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)


def _tmp_owner(path: Path) -> int | None:
    """The pid in a temporary file's name (`.<name>.tmp-<pid>`), or None when it is not one of ours."""
    suffix = path.name.rpartition(TMP_MARK)[2]
    return int(suffix) if path.name.startswith(".") and suffix.isdigit() else None


def _remove_stale_tmp(out_dir: Path) -> None:
    """Delete the temporary files that dead processes left behind; a live process's stay."""
    for path in Path(out_dir).rglob(f".*{TMP_MARK}*"):
        owner = _tmp_owner(path)
        if owner is not None and path.is_file() and not process_alive(owner):
            path.unlink(missing_ok=True)


def source_identity(records: list[dict], source: Path | None) -> dict:
    """What the output folder is made from: the datasets and the source root (`source`, else the
    folder that holds every clip)."""
    if source is not None:
        root = str(Path(source).expanduser().resolve())
    else:
        parents = sorted({str(Path(r["path"]).parent.resolve()) for r in records})
        root = os.path.commonpath(parents) if parents else ""
    return {"datasets": sorted({r["dataset"] for r in records}), "root": root}


def check_overlap(out_dir: Path, records: list[dict], source: Path | None) -> None:
    """Refuse an output folder that is the source, lies inside it or holds it: crops would overwrite
    or mix with the source files (and `force` would delete them)."""
    out = Path(out_dir).expanduser().resolve()
    roots = [Path(source).expanduser().resolve()] if source is not None else []
    folders = {Path(r["path"]).parent.resolve() for r in records}
    clash = next((r for r in roots if out == r or r in out.parents or out in r.parents), None)
    clash = clash or next((f for f in sorted(folders) if out == f or f in out.parents or out in f.parents), None)
    if clash is not None:
        raise PreprocessError(
            f"the output folder {out} and the source {clash} overlap (the same folder, or one "
            "inside the other): crops would overwrite or mix with the source; use an --out "
            "outside the source"
        )


def clip_records(clips: pd.DataFrame) -> list[dict]:
    """The clip index as plain dicts with the fields the workers need (path made absolute)."""
    missing = [c for c in CLIP_COLUMNS if c not in clips.columns]
    if missing:
        raise PreprocessError(
            f"the clip table lacks column(s) {', '.join(missing)} (see ARCHITECTURE.md, 'Clip index')"
        )
    records = []
    for row in clips.to_dict("records"):
        record = {k: str(row[k]) for k in CLIP_COLUMNS}
        record["path"] = str(Path(record["path"]).expanduser().absolute())
        frame = row.get("frame")
        record["frame"] = int(frame) if frame is not None and not pd.isna(frame) else -1
        record["stamp"] = source_stamp(record["path"])
        records.append(record)
    return records


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def preprocess_dataset(
    clips: pd.DataFrame,
    out_dir: Path,
    *,
    frames: int | None = DEFAULT_FRAMES,
    every: int | None = None,
    detector: str = DEFAULT_DETECTOR,
    size: int = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
    align: bool = False,
    max_side: int | str | None = AUTO,
    scale_to_face: bool = True,
    workers: int | None = None,
    progress: bool = True,
    source: Path | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Preprocess every clip of a clip index into `out_dir` (crops + manifest.csv); returns the manifest.

    Samples `frames` evenly spaced frames (or every `every`-th), keeps the largest face found by
    `detector` (on a copy at most `max_side` px long; "auto": the detector's default, None: full
    resolution; with `scale_to_face`, a clip's later frames on fewer pixels once its face is known to be
    large, see `clip_rows`), crops it with `margin`, optionally eye-aligned, as size×size gray PNG. Runs `workers`
    processes (None: one per CPU), skips clips finished by an earlier run with the same settings (and
    an unchanged source file), and records bad input as a status instead of stopping.

    `source` is the dataset's root (default: the folder holding every clip); a folder made from
    another source or with other settings is refused unless `force`, which deletes its crops and
    records first. An `out_dir` overlapping the source is refused, and so is a folder another run
    is writing (`FolderLockedError`, naming its pid and host).
    """
    if detector not in DETECTORS:
        raise PreprocessError(f"unknown detector {detector!r}; choose one of: {', '.join(DETECTORS)}")
    settings = Settings(
        frames=frames,
        every=every,
        detector=detector,
        size=size,
        margin=float(margin),
        align=bool(align),
        max_side=resolve_max_side(detector, max_side),
        scale_to_face=bool(scale_to_face),
    )
    check_settings(settings)
    records = clip_records(clips)
    out_dir = Path(out_dir)
    check_overlap(out_dir, records, source)
    out_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir, LOCK_NAME):
        if force:
            start_over(out_dir)
        claim_folder(out_dir, settings, source_identity(records, source), {r["path"] for r in records})
        _remove_stale_tmp(out_dir)
        todo = [clip for clip in records if read_part(out_dir, clip) is None]
        for clip in todo:
            discard_stale_records(out_dir, clip)
        try:
            _run(todo, out_dir, settings, workers, progress, len(records))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what is finished is listed, and a rerun resumes
            merge_parts(out_dir, records, finished_only=True)
            raise
        return merge_parts(out_dir, records)


def _run(todo: list[dict], out_dir: Path, settings: Settings, workers: int | None, progress: bool, total: int) -> None:
    """Process the clips still to do, in this process or in `workers` processes, with a progress bar."""
    workers = default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, len(todo)) or 1
    with tqdm(total=total, initial=total - len(todo), unit="clip", desc="preprocess", disable=not progress) as bar:
        if workers <= 1:
            _run_serial(todo, out_dir, settings, bar)
        else:
            _run_parallel(todo, out_dir, settings, workers, bar)


def merge_parts(out_dir: Path, records: list[dict], *, finished_only: bool = False) -> pd.DataFrame:
    """Collect the clips' completion records, in index order, into `<out>/manifest.csv` (atomically);
    `finished_only`: of the clips finished so far (an interrupted run), else every clip must have one."""
    rows = []
    for clip in records:
        part = read_part(out_dir, clip)
        if part is None and finished_only:
            continue
        if part is None:
            raise PreprocessError(
                f"clip {printable(clip['clip_id'])} ({printable(clip['path'])}) has no completion "
                "record; rerun to finish it"
            )
        rows += part
    atomic_write_bytes(Path(out_dir) / MANIFEST_NAME, _csv_bytes(manifest_frame(rows)))
    return load_manifest(out_dir)


def load_manifest(out_dir: Path) -> pd.DataFrame:
    """The manifest of a preprocessed folder, with integer columns as nullable Int64 and text as str."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        raise PreprocessError(f"no {MANIFEST_NAME} in {out_dir}: run `python -m fer_utils preprocess` first")
    return read_manifest_csv(path)


# --- what a finished run yielded (read by the CLI to fail or warn) -------------------------------

LOW_YIELD_FRACTION = 0.5  # below this fraction of usable frames, a run is reported with a loud warning
CROP_LIKE_SIDE = 256  # images no longer than this that yield no face probably are face crops already
SIZE_PROBES = 20  # sources whose size is read to guess why no face was found


def margin_for(detector: str, margin: float | None = None) -> float:
    """`margin`, or when None the default for `detector`: 0 for "none" (the image is the face), else DEFAULT_MARGIN."""
    if margin is not None:
        return float(margin)
    return 0.0 if detector == NO_DETECTOR else DEFAULT_MARGIN


def status_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """Frames per status, in STATUSES order (statuses with no frame left out)."""
    counts = manifest["status"].value_counts().to_dict()
    return {
        status: int(counts[status]) for status in (*STATUSES, *sorted(set(counts) - set(STATUSES))) if status in counts
    }


def _source_sizes(manifest: pd.DataFrame) -> list[tuple[int, int]]:
    """(width, height) of up to SIZE_PROBES distinct no_face sources that can be read."""
    from fer_utils.video import media_size

    sources = manifest.loc[manifest["status"] == "no_face", "source"].drop_duplicates().head(SIZE_PROBES)
    return [size for size in (media_size(Path(s)) for s in sources) if size is not None]


def _no_face_cause(manifest: pd.DataFrame) -> str:
    """The likely reason a detector found no face: images already cropped, detection downscaled, or neither."""
    sizes = _source_sizes(manifest)
    detector = manifest["detector"].iloc[0]
    if sizes and max(max(s) for s in sizes) <= CROP_LIKE_SIDE:
        width, height = sorted(sizes, key=max)[len(sizes) // 2]
        return f"they look like face crops already ({width}x{height}): try --detector {NO_DETECTOR}"
    example = manifest.loc[manifest["status"] == "no_face", "reason"].iloc[0]
    if "--max-side" in example:
        return f"detection ran on downscaled copies ({example}): try --max-side full"
    return (
        f"{detector} found no frontal face ({example}): check that the files show faces, or try "
        "--detector dlib-cnn (more angles)"
    )


def likely_cause(manifest: pd.DataFrame) -> str:
    """One sentence on why most frames of a run are unusable, from its most frequent failure status."""
    failed = manifest[manifest["status"] != "ok"]
    if failed.empty:
        return "no frames were sampled"
    status = failed["status"].value_counts().index[0]
    if status == "no_face":
        return _no_face_cause(manifest)
    example = failed[failed["status"] == status].iloc[0]
    return f"most are {status}, e.g. {example['source']}: {example['reason']}"


def _unit(manifest: pd.DataFrame) -> str:
    """'images' when every source is a still image (by its name), else 'frames'."""
    is_image = manifest["source"].map(lambda s: Path(s).suffix.lower() in IMAGE_SUFFIXES)
    return "images" if len(manifest) and is_image.all() else "frames"


def yield_report(manifest: pd.DataFrame) -> str:
    """'N of M frames usable (p %): status n, …' for a finished run."""
    usable = int((manifest["status"] == "ok").sum())
    share = 100.0 * usable / len(manifest) if len(manifest) else 0.0
    counts = ", ".join(f"{status} {n}" for status, n in status_counts(manifest).items())
    return f"{usable} of {len(manifest)} frames usable ({share:.0f} %): {counts or 'none sampled'}"


def check_yield(manifest: pd.DataFrame) -> str | None:
    """PreprocessError when a run gave no usable crop (counts per status and the likely cause);
    a warning text when fewer than LOW_YIELD_FRACTION of its frames are usable; None otherwise."""
    usable = int((manifest["status"] == "ok").sum())
    if usable == 0:
        failed = status_counts(manifest)
        what = (
            f"all {len(manifest)} {_unit(manifest)} are {next(iter(failed))}"
            if len(failed) == 1
            else yield_report(manifest)
        )
        raise PreprocessError(f"no usable crop: {what}; {likely_cause(manifest)}")
    if usable < LOW_YIELD_FRACTION * len(manifest):
        return f"most frames are unusable: {yield_report(manifest)}; {likely_cause(manifest)}"
    return None
