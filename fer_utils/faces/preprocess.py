"""The resumable, parallel dataset run that writes face crops + manifest, one clip's part of it, and the output
folder's records (the crop itself is fer_utils.faces.crops's, the manifest's contract fer_utils.data.manifest's).

Bad input is a manifest row's status, never a crash; files are written atomically, and each finished clip leaves
a completion record keyed by its source's size and mtime (CONTRACTS.md, "A preprocessing output folder")."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import active_children, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_utils.data.corpora import parse_row_path, source_file
from fer_utils.data.manifest import (
    INT_COLUMNS,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    PARTIAL_MANIFEST_NAME,
    csv_bytes,
    load_manifest,
    manifest_frame,
    read_manifest_csv,
    usable_frames,
)
from fer_utils.data.splits import audit_duplicates, audit_paths
from fer_utils.errors import InputError, MediaError
from fer_utils.faces.crops import (
    AUTO,
    CROP_SPEC_FILE,
    DEFAULT_MAX_SIDE,
    Box,
    CropFunction,
    CropSpec,
    FaceDetector,
    Landmarker,
    check_crop_spec,
    crop_face,
    detector_kind,
    face_scale_side,
    largest_face_crop,
    make_detector,
    make_landmarker,
    no_face_reason,
    read_crop_spec,
    resolve_max_side,
    with_max_side,
    write_crop_spec,
)
from fer_utils.interrupts import Stopped, signal_of, stop_on_signals
from fer_utils.registry import PAPER_FRAMES
from fer_utils.storage.atomic import atomic_write_bytes, remove_dead_temporaries
from fer_utils.storage.locking import folder_lock

DEFAULT_FRAMES = PAPER_FRAMES
MIN_IMAGE_SIDE = 32  # smaller images cannot hold a face any detector finds: recorded as bad_image
FORMAT_VERSION = 2  # 2: completion records keyed by the source file's size and mtime
CLIP_COLUMNS: tuple[str, ...] = ("path", "dataset", "emotion", "subject", "clip_id")
MAX_CROP_NAME_BYTES = 200  # the longest crop file name: room under 255 bytes for its temporary `.<name>.tmp-<pid>`
PARTS_DIR = ".parts"  # the completion records and the folder's fingerprints (SETTINGS_NAME, SOURCE_NAME)
SETTINGS_NAME = "settings.json"
SOURCE_NAME = "source.json"
LOCK_NAME = ".preprocess.lock"
# Made once by the parent for all workers: dlib's HOG builds far slower than it unpickles (benchmarks/README.md).
SHIPPED_DETECTORS: tuple[str, ...] = ("dlib-hog",)
PARENT_POLL_S = 0.5  # how often a worker checks that its run is still alive
SIGNAL_GRACE_S = 0.5  # how long a failed worker waits for the run's signal handler before it counts as a failure


@dataclass(frozen=True)
class Settings:
    """What decides a run's output (the crop spec, how frames are sampled and searched): the folder's fingerprint."""

    frames: int | None = DEFAULT_FRAMES
    every: int | None = None
    crop: CropSpec = field(default_factory=CropSpec)
    max_side: int | None = DEFAULT_MAX_SIDE
    scale_to_face: bool = True
    version: int = FORMAT_VERSION

    def record(self) -> dict:
        """The `.parts/settings.json` fingerprint; the crop under old names (`size`, no colour): old folders resume."""
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


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of `image` (deterministic: same pixels, same bytes)."""
    import cv2

    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise InputError("OpenCV could not encode the crop as PNG")
    return buffer.tobytes()


def crop_relpath(emotion: str, clip_id: str, frame_index: int) -> str:
    """`<emotion>/<clip_id>_f<frame:04d>.png`; a clip id too long for a file name becomes `<start>-<its hash>`."""
    stem = str(clip_id).replace("/", "_").replace("\\", "_")
    suffix = f"_f{frame_index:04d}.png"
    limit = MAX_CROP_NAME_BYTES - len(suffix)
    data = stem.encode("utf-8", "surrogateescape")
    if len(data) > limit:
        digest = hashlib.sha1(data).hexdigest()[:10]
        start = data[: limit - len(digest) - 1].decode("utf-8", "ignore")  # cut on a whole character
        stem = f"{start}-{digest}"
    return f"{emotion}/{stem}{suffix}"


def _row(clip: dict, settings: Settings, **values: Any) -> dict:
    """One manifest row for `clip` with `values` filled in and the rest empty ("", or None for a number)."""
    row = dict.fromkeys(MANIFEST_COLUMNS, "") | dict.fromkeys(INT_COLUMNS)
    row.update(dataset=clip["dataset"], clip_id=clip["clip_id"], subject=clip["subject"], emotion=clip["emotion"])
    row.update(source=clip["path"], detector=settings.crop.detector, split=clip.get("split", ""), **values)
    return row


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
    """Detect (the first of `detectors` to find a face), crop and write one frame; its row says what happened."""
    import cv2

    def row(status: str, reason: str, **values: Any) -> dict:
        return _row(clip, settings, frame_index=index, status=status, reason=reason, **values)

    if frame is None:
        return row("unreadable", f"frame {index} could not be decoded (truncated or corrupted video?)")
    if min(frame.shape[:2]) < MIN_IMAGE_SIDE:
        return row("bad_image", f"{frame.shape[1]}x{frame.shape[0]} image is too small to hold a face")
    try:  # the first of `detectors` to find a face (a clip's face-scaled search, then the full one)
        crops = (largest_face_crop(frame, detector, settings.crop, landmarker, crop) for detector in detectors)
        found = next((face for face in crops if face is not None), None)
    except (ValueError, RuntimeError, cv2.error) as exc:  # dlib raises RuntimeError
        return row("bad_image", f"unusable image: {exc}")
    if found is None:
        return row("no_face", no_face_reason(detectors[-1], frame.shape), n_faces=0)
    relpath = crop_relpath(clip["emotion"], clip["clip_id"], index)
    atomic_write_bytes(out_dir / relpath, encode_png(found.crop))
    box, n_faces = found.box, found.n_faces
    reason = f"{n_faces} faces, kept the largest" if n_faces > 1 else ""
    return row("ok", reason, x=box.x, y=box.y, w=box.w, h=box.h, n_faces=n_faces, image=relpath)


def process_clip(
    clip: dict,
    out_dir: Path,
    settings: Settings,
    detector: FaceDetector,
    landmarker: Landmarker | None = None,
    crop: CropFunction = crop_face,
    frames: Sequence[tuple[int, np.ndarray | None]] | None = None,
) -> list[dict]:
    """Sample (unless `frames` are given), crop and write one clip: a row per frame, or one why it cannot be read."""
    frames = _read_clip(clip, settings) if frames is None else frames
    if isinstance(frames, dict):  # why the clip cannot be read
        return [frames]
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
    from fer_utils.data.media import check_media, try_sample_frames

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


def check_stop(stop: threading.Event) -> None:
    """`Stopped` (a KeyboardInterrupt: exit 128 + the signal) once Ctrl-C or SIGTERM set `stop`
    (`interrupts.stop_on_signals`): raised here, between waits, and never inside `concurrent.futures`, where it could
    leave a lock held and hang the exit."""
    if stop.is_set():
        raise Stopped(signal_of(stop))


def start_worker(parent: int) -> None:
    """The pool's initializer: ignore Ctrl-C (sent to the whole group, it would break the pool before the run stops),
    exit when `parent` is gone (no worker outlives a killed run; writes are atomic), import what a worker needs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()
    import_worker_modules()


def import_worker_modules() -> None:
    """Import what a worker needs (workers import while the parent makes the detector)."""
    import cv2
    import dlib  # noqa: F401

    import fer_utils.data.media  # noqa: F401

    cv2.setNumThreads(1)


def _process_all(
    todo: Sequence[dict],
    out_dir: Path,
    settings: Settings,
    detector: FaceDetector | None,
    crop: CropFunction = crop_face,
    bar: tqdm | None = None,
) -> None:
    """Process clips with `detector` (None: one made here), counting them on `bar`: a worker's body, or a serial run."""
    detector = detector or make_detector(settings.crop.detector, max_side=settings.max_side)
    landmarker = make_landmarker() if settings.crop.align else None
    for clip in todo:
        try:
            rows = process_clip(clip, out_dir, settings, detector, landmarker, crop)
        except Exception as exc:  # named: a worker's traceback does not say which file failed
            raise InputError(f"{printable(clip['path'])}: {type(exc).__name__}: {exc}") from exc
        atomic_write_bytes(part_path(out_dir, clip), part_bytes(rows))  # the clip's completion record, after its crops
        if bar is not None:
            bar.update(1)


def _run_parallel(todo: list[dict], out_dir: Path, settings: Settings, workers: int, bar: tqdm) -> None:
    """Process `todo` in `workers` spawned processes (every `workers`-th clip each); this one makes their detector."""
    context = get_context("spawn")  # not fork: the caller may hold TensorFlow threads
    before = {child.pid for child in active_children()}
    with (
        stop_on_signals() as stop,
        ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=start_worker, initargs=(os.getpid(),)
        ) as pool,
    ):
        try:
            _watch_workers(pool, todo, out_dir, settings, workers, bar, stop)
        except BaseException:  # Ctrl-C or SIGTERM (KeyboardInterrupt from check_stop), a failed worker
            for child in active_children():  # the pool's workers: stop now, not when they finish their clips
                if child.pid not in before:
                    child.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _watch_workers(
    pool: ProcessPoolExecutor,
    todo: list[dict],
    out_dir: Path,
    settings: Settings,
    workers: int,
    bar: tqdm,
    stop: threading.Event,
) -> None:
    """Submit the workers' shares of `todo`, follow them (InputError if one fails; KeyboardInterrupt: `check_stop`)."""
    parts = Path(out_dir) / PARTS_DIR
    pending = {part_path(out_dir, clip).name for clip in todo}
    futures = [pool.submit(os.getpid) for _ in range(workers)]  # one process per submit while none is idle
    shipped = settings.crop.detector in SHIPPED_DETECTORS
    detector = make_detector(settings.crop.detector, max_side=settings.max_side) if shipped else None
    futures += [pool.submit(_process_all, todo[k::workers], out_dir, settings, detector) for k in range(workers)]
    while futures:
        check_stop(stop)
        finished, running = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
        done_now = pending & {p.name for p in parts.glob("*.csv")}
        bar.update(len(done_now))
        pending -= done_now
        for future in finished:
            if future.exception() is not None:
                # a worker killed by the run's stop signal (SIGTERM to the group) is a stop: let the handler see it
                stop.wait(SIGNAL_GRACE_S)
                check_stop(stop)
                raise InputError(
                    f"a preprocessing worker failed ({future.exception()!r}); finished clips are kept, rerun to resume"
                ) from future.exception()
        futures = list(running)
    check_stop(stop)


def clip_records(clips: pd.DataFrame) -> list[dict]:
    """The clip index as plain dicts with the fields the workers need (path made absolute)."""
    missing = [c for c in CLIP_COLUMNS if c not in clips.columns]
    if missing:
        raise InputError(f"the clip table lacks column(s) {', '.join(missing)} (see CONTRACTS.md, 'Clip index')")
    records = []
    for row in clips.to_dict("records"):
        record = {k: str(row[k]) for k in CLIP_COLUMNS}
        record["path"] = str(Path(record["path"]).expanduser().absolute())
        frame, split = row.get("frame"), row.get("split")  # pd.isna(None) is True
        record["frame"] = -1 if pd.isna(frame) else int(frame)
        record["split"] = "" if pd.isna(split) else str(split)  # the dataset's own
        record["stamp"] = source_stamp(record["path"])
        records.append(record)
    return records


def default_workers() -> int:
    """The CPUs this process may use."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def preprocess_dataset(
    clips: pd.DataFrame,
    out_dir: Path,
    spec: CropSpec | None = None,
    *,
    frames: int | None = DEFAULT_FRAMES,
    every: int | None = None,
    max_side: int | str | None = AUTO,
    scale_to_face: bool = True,
    workers: int | None = None,
    progress: bool = True,
    source: Path | None = None,
    force: bool = False,
    crop: CropFunction | None = None,
) -> pd.DataFrame:
    """Crop the largest face of `frames` evenly spaced (or every `every`-th) frames per clip into `out_dir`; returns the
    manifest. InputError if it overlaps or holds another source's crops (`force` deletes them); OutputError: in use."""
    spec = spec or CropSpec()
    max_side = resolve_max_side(spec.detector, max_side)
    settings = Settings(frames=frames, every=every, crop=spec, max_side=max_side, scale_to_face=bool(scale_to_face))
    check_settings(settings)
    records = clip_records(clips)
    out_dir = Path(out_dir)
    check_overlap(out_dir, records, source)
    out_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir, LOCK_NAME):
        if force:
            start_over(out_dir)
        claim_folder(out_dir, settings.record(), source_identity(records, source), {r["path"] for r in records})
        write_crop_spec(out_dir, settings.crop)  # beside the crops: how they were cut (fer_utils.faces.crops)
        remove_dead_temporaries(out_dir, recursive=True)
        todo = [clip for clip in records if read_part(out_dir, clip) is None]
        for clip in todo:
            discard_stale_records(out_dir, clip)
        try:
            _run(todo, out_dir, settings, workers, progress, len(records), crop)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what is finished is listed, and a rerun resumes
            merge_parts(out_dir, records, finished_only=True)
            raise
        (out_dir / PARTIAL_MANIFEST_NAME).unlink(missing_ok=True)
        manifest = merge_parts(out_dir, records)
        audit = audit_duplicates(usable_frames(manifest), out_dir, column="image")  # written into out_dir
        audit.write(*audit_paths(out_dir))
        return manifest


def upsampled_note(manifest: pd.DataFrame, spec: CropSpec) -> str | None:
    """A note when usable crops were upsampled from squares under the spec's side (less detail), else None."""
    usable = usable_frames(manifest)
    if usable.empty or not {"w", "h"} <= set(usable.columns):
        return None
    squares = usable[["w", "h"]].max(axis=1).astype(float) * (1.0 + 2.0 * spec.margin)
    small = squares[squares < spec.side]
    if small.empty:
        return None
    return (
        f"{len(small)} of {len(usable)} crops were cut from squares smaller than {spec.side} px (median "
        f"{small.median():.0f} px) and upsampled to {spec.side} px: they hold no more detail than their source; "
        f"preprocess with a smaller --side (e.g. {int(small.median())}) to keep them at their own resolution"
    )


def _run(
    todo: list[dict],
    out_dir: Path,
    settings: Settings,
    workers: int | None,
    progress: bool,
    total: int,
    crop: CropFunction | None = None,
) -> None:
    """Process the clips to do here or in `workers` processes; a custom `crop` runs here (workers cannot import it)."""
    workers = default_workers() if workers is None else max(1, int(workers))
    workers = 1 if crop is not None else min(workers, len(todo)) or 1
    with tqdm(total=total, initial=total - len(todo), unit="clip", desc="preprocess", disable=not progress) as bar:
        if workers <= 1:
            _process_all(todo, out_dir, settings, None, crop or crop_face, bar)
        else:
            _run_parallel(todo, out_dir, settings, workers, bar)


def merge_parts(out_dir: Path, records: list[dict], *, finished_only: bool = False) -> pd.DataFrame:
    """Join the clips' records into manifest.csv (each must exist) or, `finished_only`, into manifest.partial.csv."""
    rows = []
    for clip in records:
        part = read_part(out_dir, clip)
        if part is None and not finished_only:
            raise InputError(
                f"clip {printable(clip['clip_id'])} ({printable(clip['path'])}) has no completion "
                "record; rerun to finish it"
            )
        rows += part or []
    path = Path(out_dir) / (PARTIAL_MANIFEST_NAME if finished_only else MANIFEST_NAME)
    atomic_write_bytes(path, csv_bytes(manifest_frame(rows)))
    return read_manifest_csv(path) if finished_only else load_manifest(out_dir)


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
    """`<size>-<mtime_ns>` of a source file (of FER-2013's CSV for its rows), or why it has none: its record's key."""
    try:
        info = os.stat(source_file(path))
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"error{exc.errno}"
    return f"{info.st_size}-{info.st_mtime_ns}"


def clip_key(clip: dict) -> str:
    """A stable file-name key for one clip row (dataset, clip id and source path)."""
    text = "\0".join(str(clip[k]) for k in ("dataset", "clip_id", "path"))
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def part_path(out_dir: Path, clip: dict) -> Path:
    """Where the completion record of `clip` lives: named by the clip and its source file's stamp."""
    return Path(out_dir) / PARTS_DIR / f"{clip_key(clip)}.{clip['stamp']}.csv"


def _listed_crops(table_path: Path) -> list[str]:
    """The crops (relative paths) a manifest or completion record lists; none if it cannot be read."""
    try:
        table = read_manifest_csv(table_path)
    except (ValueError, OSError, pd.errors.ParserError):  # an InputError is a ValueError
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
    """Remove `clip`'s records of an older source version, crops first (a next run ends an interrupted removal)."""
    current = part_path(out_dir, clip)
    for old in sorted((Path(out_dir) / PARTS_DIR).glob(f"{clip_key(clip)}.*.csv")):
        if old != current:
            _remove_crops(out_dir, _listed_crops(old))
            old.unlink(missing_ok=True)


def part_bytes(rows: list[dict]) -> bytes:
    """Manifest rows as the bytes of `csv_bytes(manifest_frame(rows))`, far cheaper per clip (benchmarks/README.md)."""
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
    if not lines or lines[0] != list(MANIFEST_COLUMNS) or any(len(v) != len(MANIFEST_COLUMNS) for v in lines):
        return None
    rows = [dict(zip(MANIFEST_COLUMNS, values)) for values in lines[1:]]
    try:
        for row in rows:
            row.update({column: int(row[column]) if row[column] else None for column in INT_COLUMNS})
    except ValueError:
        return None
    return rows


def read_part(out_dir: Path, clip: dict) -> list[dict] | None:
    """The finished record of `clip`, or None if it is absent, unreadable or its crops are missing."""
    rows = read_part_rows(part_path(out_dir, clip))
    if rows is None or not all((Path(out_dir) / r["image"]).is_file() for r in rows if r["status"] == "ok"):
        return None
    return rows


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
    except (ValueError, pd.errors.ParserError):  # an InputError is a ValueError
        return f"{manifest} (not readable as a manifest)"
    return next(iter(sorted(listed - {printable(p) for p in paths})), None)


def folder_crop_spec(out_dir: Path) -> CropSpec | None:
    """How `out_dir`'s crops were cut (`crop_spec.json`): None if made by hand, InputError if older than specs."""
    spec = read_crop_spec(out_dir)
    if spec is None and (Path(out_dir) / PARTS_DIR / SETTINGS_NAME).is_file():
        raise InputError(
            f"{out_dir} was preprocessed before crop specs were saved ({CROP_SPEC_FILE} is missing): "
            "preprocess it again into a new folder, or with --force"
        )
    return spec


def claim_folder(out_dir: Path, settings: dict, source: dict, paths: set[str]) -> None:
    """Record `settings` and `source` in a new folder, or refuse (writing nothing) one of other sources or settings."""
    parts = Path(out_dir) / PARTS_DIR
    records = {SOURCE_NAME: source, SETTINGS_NAME: settings}
    stored = {
        name: json.loads((parts / name).read_text(encoding="utf-8")) if (parts / name).is_file() else None
        for name in records
    }
    foreign = _foreign_listed_source(out_dir, paths) if stored[SOURCE_NAME] is None else None
    if foreign is not None:
        stored[SOURCE_NAME] = {"datasets": "unknown (a manifest without records)", "root": f"it lists {foreign}"}
    if stored[SOURCE_NAME] is not None and stored[SOURCE_NAME] != source:
        raise InputError(
            f"{out_dir} holds the crops of another source ({_differences(stored[SOURCE_NAME], source)}); "
            "use another --out folder, or --force (force=True) to delete them and start over"
        )
    if stored[SETTINGS_NAME] is not None and stored[SETTINGS_NAME] != records[SETTINGS_NAME]:
        raise InputError(
            f"{out_dir} was preprocessed with other settings ({_differences(stored[SETTINGS_NAME], settings)}); "
            "use another --out folder, or --force (force=True) to delete its crops and start over"
        )
    for name, record in records.items():
        if stored[name] is None:
            atomic_write_bytes(parts / name, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def start_over(out_dir: Path) -> None:
    """Delete what earlier runs wrote into `out_dir` (listed crops, records, crop spec, manifest), nothing else."""
    out_dir = Path(out_dir)
    tables = [out_dir / MANIFEST_NAME, *sorted((out_dir / PARTS_DIR).glob("*.csv"))]
    _remove_crops(out_dir, sorted({image for table in tables if table.is_file() for image in _listed_crops(table)}))
    shutil.rmtree(out_dir / PARTS_DIR, ignore_errors=True)
    (out_dir / CROP_SPEC_FILE).unlink(missing_ok=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)


def source_identity(records: list[dict], source: Path | None) -> dict:
    """What the output folder is made from: the datasets and the root (`source`, else the folder holding every clip)."""
    if source is not None:
        root = str(Path(source).expanduser().resolve())
    else:
        parents = sorted({str(Path(r["path"]).parent.resolve()) for r in records})
        root = os.path.commonpath(parents) if parents else ""
    return {"datasets": sorted({r["dataset"] for r in records}), "root": root}


def source_home(path: str) -> Path:
    """Where a source file lives, which an output folder must not overlap: its folder, or a FER-2013 row's CSV."""
    parsed = parse_row_path(path)
    return parsed[0].resolve() if parsed else Path(path).parent.resolve()


def check_overlap(out_dir: Path, records: list[dict], source: Path | None) -> None:
    """Refuse an output folder that is, holds or lies in the source: crops would mix with it (`force` delete it)."""
    out = Path(out_dir).expanduser().resolve()
    homes = [Path(source).expanduser().resolve()] if source is not None else []
    homes += sorted({source_home(r["path"]) for r in records})
    clash = next((home for home in homes if out == home or home in out.parents or out in home.parents), None)
    if clash is not None:
        raise InputError(
            f"the output folder {out} and the source {clash} overlap (the same folder, or one inside the other): "
            "crops would overwrite or mix with the source; use an --out outside the source"
        )
