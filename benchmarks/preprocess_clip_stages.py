"""One clip's preprocessing, stage by stage and option by option, timed in this process (`preprocess_stages.py`).

The stages of a worker's work on one clip (OpenCV on one thread): open + frame count; decode (the
reference's seeking, `media.read_frames`, `cap.read` of every frame; one decoder thread or one per
CPU); detect (the full search, the `scale_to_face` search, fixed smaller sizes, with the faces found
and the worst box IoU against the full search); crop; PNG encoding at several compression levels;
atomic write; the completion record (pandas vs the csv module); and the whole per-clip work of a worker
with the reference and the adopted settings. Each option is timed in interleaved rounds, in wall and
CPU time (fastest and median), with the 1-minute load average.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

FRAMES = 6
REFERENCE = {
    "scale_to_face": False,
    "decoder_threads": None,
    "seek_gap": 12,
    "record": "pandas",
    "detector": "built in each worker",
}  # the pipeline before issue 12's changes


def load() -> float:
    """The 1-minute load average (other jobs on the machine inflate wall times, and CPU times less)."""
    return round(os.getloadavg()[0], 2)


def timed_together(works: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Fastest and median wall and CPU (this process, all threads) ms of each `work()` over `repeats`
    rounds that call every option in turn, so that a change of load hits all options alike."""
    wall: dict[str, list[float]] = {name: [] for name in works}
    cpu: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            work()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {
        name: {
            "wall_ms": round(1000 * min(wall[name]), 1),
            "wall_median_ms": round(1000 * statistics.median(wall[name]), 1),
            "cpu_ms": round(1000 * min(cpu[name]), 1),
            "cpu_median_ms": round(1000 * statistics.median(cpu[name]), 1),
            "load": load(),
        }
        for name in works
    }


def timed(work: Callable[[], object], repeats: int) -> dict:
    """`timed_together` of one option."""
    return timed_together({"work": work}, repeats)["work"]


def option_rows(stage: str, works: dict[str, Callable[[], object]], repeats: int) -> list[dict]:
    """One row per option of `stage`, timed together (interleaved)."""
    return [{"stage": stage, "option": name, **times} for name, times in timed_together(works, repeats).items()]


def decode_seeking(path: Path, targets: list[int], threads: int | None, gap: int = REFERENCE["seek_gap"]) -> list:
    """The reference decode: seek (CAP_PROP_POS_FRAMES) to each target more than `gap` frames ahead,
    grab forward otherwise, retrieve the targets only."""
    import cv2

    params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, threads]
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    frames, position = [], 0
    for target in targets:
        if target - position > gap:
            cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            position = target
        while position <= target and cap.grab():
            position += 1
        frames.append((target, cap.retrieve()[1]))
    cap.release()
    return frames


def decode_sequential(path: Path, last: int, threads: int | None, retrieve_all: bool = False) -> None:
    """Decode frames 0…`last`, converting none (grab) or every one (`cap.read`); `threads`: FFmpeg's
    decoder threads (None: OpenCV's default, one per CPU)."""
    import cv2

    params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, threads]
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    for _ in range(last + 1):
        if not (cap.read()[0] if retrieve_all else cap.grab()):
            break
    cap.release()


def iou(a, b) -> float:
    """Intersection over union of two `faces.crops.Box`es."""
    x0, y0, x1, y1 = max(a.x, b.x), max(a.y, b.y), min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a.area + b.area - inter)


def scaled_search(frames: list, detector) -> list:
    """The `scale_to_face` search of a clip's frames (as `preprocess.process_clip` does it): each frame's
    largest box, None where none."""
    from fer_utils.faces.crops import face_scale_side, with_max_side

    detectors, boxes = [detector], []
    for frame in frames:
        found = next((b for d in detectors for b in d.detect(frame)[:1]), None)
        if found is not None and len(detectors) == 1:
            side = face_scale_side(detector, frame.shape, found)
            detectors = detectors if side is None else [with_max_side(detector, side), detector]
        boxes.append(found)
    return boxes


def detect_rows(frames: list, repeats: int) -> list[dict]:
    """Detection options on a clip's sampled frames: time, faces found, worst IoU with the full search."""
    from fer_utils.faces.crops import make_detector

    full = make_detector("dlib-hog")
    reference = [next(iter(full.detect(f)), None) for f in frames]
    options = {
        "full search, 6 frames at 400 px (reference)": lambda: [full.detect(f) for f in frames],
        "scale_to_face: first at 400 px, the rest on whole pyramid levels fewer (adopted)": lambda: scaled_search(
            frames, full
        ),
    }
    for side in (240, 160):
        small = make_detector("dlib-hog", max_side=side)
        options[f"fixed max_side {side}"] = lambda small=small: [small.detect(f) for f in frames]
    rows = option_rows("detect", options, repeats)
    for row in rows:
        work = options[row["option"]]
        found = (
            scaled_search(frames, full)
            if row["option"].startswith("scale_to_face")
            else [next(iter(b), None) for b in work()]
        )
        ious = [iou(a, b) for a, b in zip(found, reference) if a is not None and b is not None]
        row.update(
            {
                "found": f"{sum(b is not None for b in found)}/{len(frames)}",
                "min_iou_vs_reference": round(min(ious), 3) if ious else None,
            }
        )
    return rows


def write_rows(frames: list, repeats: int, out: Path) -> list[dict]:
    """Crop, PNG encoding (compression levels), atomic write and the completion record of 6 frames."""
    import cv2

    from fer_utils.faces.crops import crop_face, make_detector
    from fer_utils.faces.preprocess import encode_png
    from fer_utils.storage.atomic import atomic_write_bytes

    box = make_detector("dlib-hog").detect(frames[0])[0]
    crops = [crop_face(f, box) for f in frames]
    rows = [
        {
            "stage": "crop",
            "option": "crop_face: square + margin, gray, 180x180",
            **timed(lambda: [crop_face(f, box) for f in frames], repeats),
        }
    ]
    for level in (None, 0, 3, 9):
        params = [] if level is None else [cv2.IMWRITE_PNG_COMPRESSION, level]
        size = sum(len(cv2.imencode(".png", c, params)[1]) for c in crops)
        label = "encode_png (OpenCV's default level, adopted)" if level is None else f"PNG compression level {level}"
        rows.append(
            {
                "stage": "encode",
                "option": label,
                "bytes_per_clip": size,
                **timed(lambda p=params: [cv2.imencode(".png", c, p) for c in crops], repeats),
            }
        )
    data = [encode_png(c) for c in crops]
    counter = iter(range(10**9))
    rows.append(
        {
            "stage": "write",
            "option": "atomic_write_bytes (tmp, fsync, rename), new files",
            **timed(lambda: [atomic_write_bytes(out / f"{next(counter)}.png", d) for d in data], repeats),
        }
    )
    return rows


def pandas_record(rows: list[dict]) -> bytes:
    """A completion record as the reference wrote it: a DataFrame, then `to_csv`."""
    from fer_utils.data.manifest import csv_bytes, manifest_frame

    return csv_bytes(manifest_frame(rows))


def record_rows(path: Path, repeats: int, out: Path) -> list[dict]:
    """Writing one clip's completion record (6 manifest rows as CSV, atomically, each time to a new
    file): pandas vs the csv module."""
    from fer_utils.faces.preprocess import Settings, _frame_row, part_bytes
    from fer_utils.storage.atomic import atomic_write_bytes

    clip = {"path": str(path), "dataset": "ravdess", "emotion": "calm", "subject": "1", "clip_id": "c"}
    rows = [_frame_row(clip, i, None, out, Settings(), [], None) for i in range(FRAMES)]
    names = iter(range(10**9))
    return option_rows(
        "record",
        {
            f"6 manifest rows as CSV via {label}, atomic write": lambda f=encode: atomic_write_bytes(
                out / f"part-{next(names)}.csv", f(rows)
            )
            for label, encode in (("pandas (reference)", pandas_record), ("the csv module (adopted)", part_bytes))
        },
        repeats,
    )


def clip_work_rows(path: Path, repeats: int, out: Path) -> list[dict]:
    """A worker's whole per-clip work (what `process_clip` does, then the completion record), with the
    reference and the adopted decoder threads and search."""
    from fer_utils.data.media import DECODER_THREADS, check_media, frame_count, frame_indices, read_frames
    from fer_utils.faces.crops import make_detector
    from fer_utils.faces.preprocess import Settings, part_bytes, part_path, process_clip
    from fer_utils.storage.atomic import atomic_write_bytes

    detector = make_detector("dlib-hog")
    clip = {"path": str(path), "dataset": "ravdess", "emotion": "calm", "subject": "1", "clip_id": "c", "stamp": "1-1"}

    def work(settings: Settings, decode, record) -> None:
        check_media(path)
        frames = decode(frame_indices(frame_count(path), FRAMES))
        atomic_write_bytes(part_path(out, clip), record(process_clip(clip, out, settings, detector, frames=frames)))

    options = (
        (
            "reference: seek gaps > 12, decoder threads per CPU, full search, pandas record",
            False,
            lambda targets: decode_seeking(path, targets, None),
            pandas_record,
        ),
        (
            "adopted: read_frames, 1 decoder thread, scale_to_face, csv record",
            True,
            lambda targets: read_frames(path, targets, threads=DECODER_THREADS),
            part_bytes,
        ),
    )
    return option_rows(
        "clip (worker)",
        {
            label: lambda s=scale, d=decode, r=record: work(Settings(scale_to_face=s), d, r)
            for label, scale, decode, record in options
        },
        repeats,
    )


def stage_rows(path: Path, repeats: int) -> list[dict]:
    """Every stage and option on one clip, one process, OpenCV on one thread."""
    import cv2

    from fer_utils.data.media import SEEK_GAP, check_media, frame_count, frame_indices, read_frames

    cv2.setNumThreads(1)
    targets = frame_indices(frame_count(path), FRAMES)
    rows = [
        {
            "stage": "open",
            "option": "check_media + frame_count (open, read the length, close)",
            **timed(lambda: (check_media(path), frame_count(path)), repeats),
        }
    ]
    rows += option_rows(
        "decode",
        {
            "seek every gap > 12 frames, decoder threads per CPU (reference)": lambda: decode_seeking(
                path, targets, None
            ),
            "seek every gap > 12 frames, 1 decoder thread": lambda: decode_seeking(path, targets, 1),
            f"read_frames (seek gaps > SEEK_GAP {SEEK_GAP}, grab the rest), 1 thread (adopted)": lambda: read_frames(
                path, targets, threads=1
            ),
            f"read_frames (seek gaps > SEEK_GAP {SEEK_GAP}, grab the rest), threads per CPU": lambda: read_frames(
                path, targets, threads=None
            ),
            "cap.read of every frame to the last sampled, 1 thread": lambda: decode_sequential(
                path, max(targets), 1, True
            ),
        },
        repeats,
    )
    frames = [f for _, f in read_frames(path, targets)]
    rows += detect_rows(frames, repeats)
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as out:
        rows += write_rows(frames, repeats, Path(out))
        rows += record_rows(path, repeats, Path(out))
        rows += clip_work_rows(path, repeats, Path(out))
    return rows
