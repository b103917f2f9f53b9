"""The resumable, parallel dataset run that writes face crops + manifest (the crop itself is
fer_utils.crops's, the manifest's contract fer_utils.manifest's, the output folder's records
fer_utils.preprocess_folder's).

The paper's preprocessing: sample 6 frames of each clip, detect the face with dlib, crop it, convert
to grayscale and resize to 180×180. `preprocess_dataset` does that for a clip index (see
ARCHITECTURE.md) and writes `<out>/<emotion>/<clip_id>_f<frame:04d>.png` plus `<out>/manifest.csv`
with one row per sampled frame and its status (`STATUSES`) and reason (and the clip's `split`, when the
dataset gives its own).

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

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import active_children, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_utils.crops import DEFAULT_SIZE, FaceCrop, largest_face_crop
from fer_utils.errors import ImageError, PreprocessError, VideoError
from fer_utils.faces import (
    AUTO,
    DEFAULT_DETECTOR,
    DEFAULT_MAX_SIDE,
    Box,
    FaceDetector,
    Landmarker,
    detector_kind,
    face_scale_side,
    make_detector,
    make_landmarker,
    no_face_reason,
    resolve_max_side,
    with_max_side,
)
from fer_utils.locking import folder_lock
from fer_utils.manifest import (
    MANIFEST_NAME,
    PARTIAL_MANIFEST_NAME,
    csv_bytes,
    load_manifest,
    manifest_frame,
    read_manifest_csv,
)
from fer_utils.preprocess_folder import (
    PARTS_DIR,
    atomic_write_bytes,
    check_overlap,
    claim_folder,
    discard_stale_records,
    is_utf8,
    part_path,
    printable,
    read_part,
    remove_stale_tmp,
    source_identity,
    source_stamp,
    start_over,
    write_part,
)
from fer_utils.registry import DEFAULT_MARGIN, PAPER_FRAMES

DEFAULT_FRAMES = PAPER_FRAMES
MIN_IMAGE_SIDE = 32  # smaller images cannot hold a face any detector finds: recorded as bad_image
LOCK_NAME = ".preprocess.lock"
FORMAT_VERSION = 2  # 2: completion records keyed by the source file's size and mtime
CLIP_COLUMNS: tuple[str, ...] = ("path", "dataset", "emotion", "subject", "clip_id")
# Detectors that the parent makes once and sends to the workers: dlib's HOG takes ~1 s of CPU to build
# (it decodes its embedded model) but ~3 ms to unpickle; the others load quickly or do not pickle.
SHIPPED_DETECTORS: tuple[str, ...] = ("dlib-hog",)


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
    detector_kind(settings.detector)  # a DetectorError, which is a PreprocessError
    if settings.size < 8:
        raise PreprocessError(f"crop size must be at least 8 pixels, got {settings.size}")
    if not 0.0 <= settings.margin <= 1.0:
        raise PreprocessError(f"margin must be between 0 and 1 (fraction of the box size), got {settings.margin}")
    if settings.frames is not None and settings.frames < 1:
        raise PreprocessError(f"frames must be at least 1 (or None for all), got {settings.frames}")
    if settings.every is not None and settings.every < 1:
        raise PreprocessError(f"every must be at least 1, got {settings.every}")
    resolve_max_side(settings.detector, settings.max_side)


def run_detector(settings: Settings) -> FaceDetector:
    """The detector a run's `settings` name, searching copies at most `settings.max_side` px long."""
    return make_detector(settings.detector, max_side=settings.max_side)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of `image` (deterministic: same pixels, same bytes)."""
    import cv2

    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise ImageError("OpenCV could not encode the crop as PNG")
    return buffer.tobytes()


def crop_relpath(emotion: str, clip_id: str, frame_index: int) -> str:
    """The crop's path relative to the output folder: `<emotion>/<clip_id>_f<frame:04d>.png`."""
    safe_id = str(clip_id).replace("/", "_").replace("\\", "_")
    return f"{emotion}/{safe_id}_f{frame_index:04d}.png"


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
        "split": clip.get("split", ""),
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


def _process_named(
    clip: dict, out_dir: Path, settings: Settings, detector: FaceDetector, landmarker: Landmarker | None
) -> list[dict]:
    """`process_clip`, whose unexpected failures name the file (a worker's traceback does not)."""
    try:
        return process_clip(clip, out_dir, settings, detector, landmarker)
    except Exception as exc:
        raise PreprocessError(f"{printable(clip['path'])}: {type(exc).__name__}: {exc}") from exc


PARENT_POLL_S = 0.5  # how often a worker checks that its run is still alive
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what stops a run: its workers end, finished clips are kept


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


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Callable[[], None]]:
    """While the pool is watched, Ctrl-C and SIGTERM are only recorded; the `check` this yields raises
    KeyboardInterrupt for them where the caller chooses. Raised by Python's own handler, the interrupt can
    land inside `concurrent.futures` while it holds a future's lock: the pool's manager thread then blocks
    on that lock and the run hangs at exit instead of stopping (tests/test_preprocess.py reproduces it).
    Outside the main thread, where no handler can be set, `check` does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in STOP_SIGNALS}

    def check() -> None:
        if received:
            raise KeyboardInterrupt(f"signal {received[0]}")

    try:
        yield check
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
    detector = detector or run_detector(settings)
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
    detector = run_detector(settings)
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
    with (
        deferred_interrupts() as check_interrupt,
        ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=start_worker, initargs=(os.getpid(),)
        ) as pool,
    ):
        try:
            _watch_workers(pool, todo, out_dir, settings, workers, bar, check_interrupt)
        except BaseException:  # Ctrl-C or SIGTERM (KeyboardInterrupt from check_interrupt), a failed worker
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
    check_interrupt: Callable[[], None],
) -> None:
    """Submit the workers' shares of `todo` and follow them until all are done (PreprocessError when one fails;
    KeyboardInterrupt from `check_interrupt`, called between waits, when the run was asked to stop)."""
    parts = Path(out_dir) / PARTS_DIR
    pending = {part_path(out_dir, clip).name for clip in todo}
    started = [pool.submit(os.getpid) for _ in range(workers)]  # one process per submit while none is idle
    shipped = settings.detector in SHIPPED_DETECTORS
    detector = run_detector(settings) if shipped else None
    futures = [
        *started,
        *(pool.submit(_process_all, todo[k::workers], out_dir, settings, detector) for k in range(workers)),
    ]
    while futures:
        check_interrupt()
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
    check_interrupt()


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
        split = row.get("split")
        record["split"] = str(split) if split is not None and not pd.isna(split) else ""  # the dataset's own
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
        claim_folder(out_dir, asdict(settings), source_identity(records, source), {r["path"] for r in records})
        remove_stale_tmp(out_dir)
        todo = [clip for clip in records if read_part(out_dir, clip) is None]
        for clip in todo:
            discard_stale_records(out_dir, clip)
        try:
            _run(todo, out_dir, settings, workers, progress, len(records))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what is finished is listed, and a rerun resumes
            merge_parts(out_dir, records, finished_only=True)
            raise
        (out_dir / PARTIAL_MANIFEST_NAME).unlink(missing_ok=True)
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
    `finished_only`: of the clips finished so far (an interrupted run), into `manifest.partial.csv`, so
    that the folder never looks complete; else every clip must have one."""
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
    if finished_only:
        atomic_write_bytes(Path(out_dir) / PARTIAL_MANIFEST_NAME, csv_bytes(manifest_frame(rows)))
        return read_manifest_csv(Path(out_dir) / PARTIAL_MANIFEST_NAME)
    atomic_write_bytes(Path(out_dir) / MANIFEST_NAME, csv_bytes(manifest_frame(rows)))
    return load_manifest(out_dir)
