"""Frame sampling from clips: N evenly spaced frames (by seeking), every k-th frame, or all frames.

Works for any container OpenCV's FFmpeg backend reads (SAVEE's avi, CREMA-D's flv, animated GIF …); a still
image is one frame, index 0. A seek is trusted only when the reported position confirms it; otherwise frames
are decoded sequentially. Bad files raise a `fer_utils.errors.MediaError` whose `.status` is the manifest status.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fer_utils.data.images import check_media, quiet_cv2, read_image
from fer_utils.errors import InputError, MediaError

# Forward distance (frames) below which decoding forward is cheaper than a seek. OpenCV's FFmpeg seek
# decodes from the keyframe before target - 16, so a seek saves decoding only over gaps longer than 16 +
# the keyframe interval: on the real RAVDESS clip (a keyframe every 12 frames, 6 samples ~20 apart)
# decoding forward costs no more CPU than seeking (benchmarks/bench_preprocess.py --real).
SEEK_GAP = 32
# FFmpeg decoder threads per opened clip: OpenCV's default (one per CPU) costs more CPU time per clip on
# H.264 and buys nothing with one preprocessing worker per core; the decoded pixels are the same either
# way (benchmarks/bench_preprocess.py --real).
DECODER_THREADS = 1
# Containers larger than this are not parsed to explain why they could not be opened.
MAX_PARSED_BYTES = 256 * 2**20
MP4_CONTAINERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")


def _mp4_boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISO-BMFF boxes in data[start:end] (stops at a bad size)."""
    boxes = []
    while start + 8 <= end:
        size, kind = int.from_bytes(data[start : start + 4], "big"), data[start + 4 : start + 8]
        if size < 8 or start + size > end:
            break
        boxes.append((kind, start + 8, start + size))
        start += size
    return boxes


def _mp4_tracks(data: bytes, start: int, end: int) -> dict[str, int]:
    """Samples per track kind ('video', 'audio') of an MP4/MOV file, from its hdlr and stsz boxes."""
    tracks: dict[str, int] = {}
    for kind, begin, stop in _mp4_boxes(data, start, end):
        if kind == b"trak":
            inner = _flatten_mp4(data, begin, stop)
            handler = {b"vide": "video", b"soun": "audio"}.get(inner.get(b"hdlr", b"")[8:12])
            if handler:
                stsz = inner.get(b"stsz", b"")
                tracks[handler] = tracks.get(handler, 0) + (int.from_bytes(stsz[8:12], "big") if stsz else 0)
        elif kind == b"moov":
            tracks.update(_mp4_tracks(data, begin, stop))
    return tracks


def _flatten_mp4(data: bytes, start: int, end: int) -> dict[bytes, bytes]:
    """The payloads of the boxes inside one track, by type, descending into its container boxes."""
    found: dict[bytes, bytes] = {}
    for kind, begin, stop in _mp4_boxes(data, start, end):
        found.setdefault(kind, data[begin:stop])
        if kind in MP4_CONTAINERS:
            found.update({k: v for k, v in _flatten_mp4(data, begin, stop).items() if k not in found})
    return found


def _flv_tracks(data: bytes) -> dict[str, int]:
    """Tags per track kind of an FLV file: the kinds its header announces, counted over its tags."""
    flags = data[4] if len(data) > 4 else 0
    tracks = {**({"audio": 0} if flags & 4 else {}), **({"video": 0} if flags & 1 else {})}
    position = int.from_bytes(data[5:9], "big") + 4
    while position + 11 <= len(data):
        kind = {8: "audio", 9: "video"}.get(data[position])
        if kind:
            tracks[kind] = tracks.get(kind, 0) + 1
        position += 11 + int.from_bytes(data[position + 1 : position + 4], "big") + 4
    return tracks


def container_tracks(path: Path) -> dict[str, int] | None:
    """Frames (samples or tags) per track kind ('video', 'audio') of an MP4/MOV or FLV file, read from
    the container's own structure ({}: no track); None for other containers, an MP4 without its index
    (moov box) and files too large to parse."""
    path = Path(path)
    if path.stat().st_size > MAX_PARSED_BYTES:
        return None
    data = path.read_bytes()
    if data.startswith(b"FLV"):
        return _flv_tracks(data)
    has_moov = any(kind == b"moov" for kind, _, _ in _mp4_boxes(data, 0, len(data)))
    return _mp4_tracks(data, 0, len(data)) if has_moov else None  # no moov: not an MP4, or one cut before its index


def unopenable_error(path: Path) -> MediaError:
    """Why OpenCV could not open `path`: audio only (not_video), a video track without frames (empty),
    or a damaged container (unreadable)."""
    name = Path(path).name
    tracks = container_tracks(path)
    if tracks is not None and "video" not in tracks and "audio" in tracks:
        return MediaError(f"{name}: audio only (the file holds an audio track and no video track)", status="not_video")
    if tracks is not None and not tracks.get("video"):
        return MediaError(f"{name}: the file holds no video frames (an empty recording?)", status="empty")
    return MediaError(f"{name}: the video container could not be opened (corrupted or truncated?)")


@contextmanager
def _open(path: Path, threads: int | None = DECODER_THREADS) -> Iterator[Any]:
    """An opened cv2.VideoCapture on `path` decoding with `threads` FFmpeg threads (None: OpenCV's
    default, one per CPU), released on exit, or the MediaError saying why not (`unopenable_error`)."""
    cv2 = quiet_cv2()
    params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, threads]
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    try:
        if not cap.isOpened():
            raise unopenable_error(path)
        yield cap
    finally:
        cap.release()


def _count_by_decoding(path: Path) -> int:
    """Number of frames that actually decode (for containers that do not report a length)."""
    with _open(path) as cap:
        count = 0
        while cap.grab():
            count += 1
    return count


def frame_count(path: Path, *, exact: bool = False) -> int:
    """Frames in a clip: the container's count (1 for a still image), or decoded when `exact`
    or when the container does not report it. Raises a MediaError for bad files and empty clips."""
    import cv2

    path = Path(path)
    if check_media(path) == "image":
        read_image(path)
        return 1
    with _open(path) as cap:
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    count = _count_by_decoding(path) if exact or reported <= 0 else reported
    if count <= 0:
        raise MediaError(f"{path.name}: the container holds no decodable frames", status="empty")
    return count


def frame_indices(count: int, n: int | None = 6, every: int | None = None) -> list[int]:
    """Which frames to sample from a clip of `count` frames.

    `every=k`: 0, k, 2k, … (the first `n` of them if `n` is also given). Otherwise `n`
    evenly spaced frames at the centres of n equal segments (skipping the neutral first
    frame); `n=None`: all.
    """
    if count <= 0:
        return []
    if n is not None and n < 1:
        raise InputError(f"n must be a positive number of frames or None, got {n}")
    if every is not None:
        if every < 1:
            raise InputError(f"every must be a positive step or None, got {every}")
        picked = list(range(0, count, every))
        return picked[:n] if n is not None else picked
    if n is None or n >= count:
        return list(range(count))
    return sorted({int((i + 0.5) * count / n) for i in range(n)})


def _read_sequential(cap: Any, start: int, targets: Sequence[int]) -> dict[int, np.ndarray]:
    """Decode forward from position `start`, keeping the frames in `targets` (sorted, ≥ start)."""
    wanted = set(targets)
    frames: dict[int, np.ndarray] = {}
    position = start
    last = max(targets, default=-1)
    while position <= last:
        if not cap.grab():
            break
        if position in wanted:
            ok, frame = cap.retrieve()
            if ok and frame is not None:
                frames[position] = frame
        position += 1
    return frames


def _read_seeking(cap: Any, targets: Sequence[int]) -> tuple[dict[int, np.ndarray], list[int]]:
    """Read `targets` (sorted) by seeking, decoding forward over short gaps; a seek whose reported
    position disagrees stops seeking. Returns the frames read and the targets still to read."""
    import cv2

    frames: dict[int, np.ndarray] = {}
    position = 0
    for k, target in enumerate(targets):
        if target - position > SEEK_GAP:
            cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != target:
                return frames, list(targets[k:])
            position = target
        got = _read_sequential(cap, position, [target])
        if target not in got:
            return frames, list(targets[k:])
        frames.update(got)
        position = target + 1
        if int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) != position:
            return frames, list(targets[k + 1 :])
    return frames, []


def read_frames(
    path: Path, targets: Sequence[int], *, seek: bool = True, threads: int | None = DECODER_THREADS
) -> list[tuple[int, np.ndarray | None]]:
    """Frames `targets` of a video; None for a frame that could not be decoded (e.g. past a truncation).

    Seeks where that is verified to work, and decodes the rest sequentially from the start, with
    `threads` FFmpeg decoder threads (None: OpenCV's default).
    """
    targets = sorted(set(targets))
    with _open(path, threads) as cap:
        frames, left = _read_seeking(cap, targets) if seek else ({}, targets)
    if left:
        with _open(path, threads) as cap:
            frames.update(_read_sequential(cap, 0, left))
    return [(t, frames.get(t)) for t in targets]


def try_sample_frames(
    path: Path, n: int | None = 6, every: int | None = None, *, seek: bool = True
) -> list[tuple[int, np.ndarray | None]]:
    """Like `sample_frames`, but keeps the sampled frames that failed to decode as (index, None).

    Raises a MediaError only when the file as a whole is unusable (missing, empty, not a video, unopenable).
    """
    path = Path(path)
    if check_media(path) == "image":
        return [(0, read_image(path))]
    count = frame_count(path)
    frames = read_frames(path, frame_indices(count, n, every), seek=seek)
    if all(frame is not None for _, frame in frames):
        return frames
    held = frame_count(path, exact=True)  # the header may claim frames the file does not hold
    if held >= count:
        return frames
    return read_frames(path, frame_indices(held, n, every), seek=seek)


def sample_frames(
    path: Path, n: int | None = 6, every: int | None = None, *, seek: bool = True
) -> list[tuple[int, np.ndarray]]:
    """(frame index, BGR frame) pairs: `n` evenly spaced frames (default 6, as the paper), every
    `every`-th frame, or all frames when both are None. A still image gives [(0, image)].

    Frames that cannot be decoded are left out; if none decodes, MediaError.
    """
    frames = [(i, f) for i, f in try_sample_frames(path, n, every, seek=seek) if f is not None]
    if not frames:
        raise MediaError(f"{Path(path).name}: none of the sampled frames could be decoded")
    return frames


def media_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a still image or of a video's frames; None when the file cannot be read."""
    import cv2

    try:
        if check_media(path) == "image":
            image = read_image(path)
            return int(image.shape[1]), int(image.shape[0])
        with _open(path) as cap:
            width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    except (MediaError, OSError):
        return None
    return (width, height) if width > 0 and height > 0 else None
