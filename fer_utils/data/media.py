"""Reading stills and clips: what a file is by its first bytes (`sniff`, `check_media`), the pixel conversions
every reader shares (`to_uint8`, `to_gray`, `to_rgb`), `read_image` (FER-2013's row paths too), and frame sampling
from any container OpenCV's FFmpeg backend reads (`sample_frames`; a still image is one frame, index 0). Bad files
raise a `fer_utils.errors.MediaError` whose `.status` is the manifest status.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fer_utils.data.corpora import parse_row_path
from fer_utils.data.fer2013 import check_row_source, read_row_image
from fer_utils.errors import InputError, MediaError

# Leading bytes of the image formats OpenCV decodes with imread (GIF goes through the video reader).
IMAGE_MAGIC: tuple[bytes, ...] = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*", b"P5", b"P6")
# Pixels above which a still is refused from its header (bad_image): its BGR decode would take 300 MB per worker.
MAX_IMAGE_PIXELS = 100_000_000
EXIF_ORIENTATION = 0x0112
# FFmpeg's log level for OpenCV's reader (-8: quiet): the manifest records what it would print per damaged clip.
FFMPEG_LOG_LEVEL = "-8"
CV_LOG_ERROR = 2  # setLogLevel: errors only, no "[ WARN:0] ... can't be used to capture by name"
# JPEG markers: start of scan and end of image (never found by chance inside the pixel data, which escapes 0xFF).
JPEG_START_OF_SCAN = b"\xff\xda"
JPEG_END_OF_IMAGE = b"\xff\xd9"
# What libjpeg writes to stderr, its only sign, when a scan stops early (OpenCV then decodes the rest grey).
JPEG_DATA_WARNINGS = (b"Corrupt JPEG data", b"Premature end of JPEG")
STDERR_HELD = threading.Lock()  # one thread at a time moves file descriptor 2 (`decode_warnings`)


def sniff(path: Path) -> str:
    """'image', 'gif', 'video' or 'unknown' from the file's first bytes (not its name)."""
    with Path(path).open("rb") as fh:
        head = fh.read(16)
    if head.startswith(b"GIF8"):
        return "gif"
    if any(head.startswith(magic) for magic in IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    is_video = (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")  # mp4 / mov / m4v / 3gp
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")  # avi
        or head.startswith(b"\x1a\x45\xdf\xa3")  # mkv / webm
        or head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"))  # mpeg-ps / mpeg-1/2
        or head.startswith(b"FLV")
    )
    return "video" if is_video else "unknown"


def check_media(path: Path) -> str:
    """The kind of a readable-looking media file (see `sniff`), or the MediaError saying why not."""
    if parse_row_path(path) is not None:  # a face stored as a row of FER-2013's CSV
        return check_row_source(path)
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path} does not exist", status="missing")
    if not path.is_file():
        raise MediaError(f"{path} is not a file", status="not_video")
    if path.stat().st_size == 0:
        raise MediaError(f"{path} is a zero-byte file", status="empty")
    if (kind := sniff(path)) == "unknown":
        with path.open("rb") as fh:
            head = fh.read(8)
        raise MediaError(f"{path.name} is neither a video nor an image (starts with {head!r})", status="not_video")
    return kind


def png_exif_chunk(path: Path) -> bytes | None:
    """The data of a PNG's eXIf chunk wherever it lies, or None: Pillow's `getexif()` decodes the whole image to
    reach one after the pixel data (gigabytes and tens of seconds for a 4.7 MB file of 40,000 × 40,000 pixels)."""
    with Path(path).open("rb") as fh:
        fh.seek(len(IMAGE_MAGIC[0]))
        while len(header := fh.read(8)) == 8:
            length, kind = struct.unpack(">I4s", header)
            if kind == b"eXIf":
                data = fh.read(length)
                return data if len(data) == length else None
            if kind == b"IEND":
                return None
            fh.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return None


def _orientation(image: Any, path: Path) -> int:
    """The EXIF orientation (1..8; 1 when absent or damaged) of a lazily opened image, without decoding its pixels."""
    from PIL import Image

    try:
        if getattr(image, "format", None) == "PNG":
            if "exif" not in image.info and (data := png_exif_chunk(path)) is not None:
                image.info["exif"] = data
            exif = Image.Image.getexif(image)
        else:
            exif = image.getexif()
        orientation = int(exif.get(EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError, struct.error):  # a damaged EXIF block: leave it as stored
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def image_header(path: Path) -> tuple[tuple[int, int], int] | None:
    """((width, height), EXIF orientation) of a still image from its header, not its pixels; None if unparsable."""
    from PIL import Image, JpegImagePlugin, PngImagePlugin

    with Path(path).open("rb") as fh:
        head = fh.read(8)
    # PNG and JPEG by their own plugin, which skips Pillow's decompression-bomb refusal: `read_image` names the size.
    opener = {IMAGE_MAGIC[0]: PngImagePlugin.PngImageFile, IMAGE_MAGIC[1]: JpegImagePlugin.JpegImageFile}
    try:
        image = next((plugin for magic, plugin in opener.items() if head.startswith(magic)), Image.open)(str(path))
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{Path(path).name}: {exc}", status="bad_image") from exc
    except (OSError, SyntaxError, ValueError, struct.error):
        return None
    with image:
        return (int(image.size[0]), int(image.size[1])), _orientation(image, path)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """`image` turned upright as its EXIF orientation (1..8) says, the way a photo viewer shows it."""
    upright = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    turn = upright.get(int(orientation))
    return image if turn is None else np.ascontiguousarray(turn(image))


def decode_warnings(cv2: Any, data: bytes) -> tuple[Any, bytes]:
    """(cv2.imdecode of `data`, what the decoder wrote to stderr meanwhile: libjpeg reports damaged pixel data only
    there). What was held that is not the decoder's warning is written back."""
    sys.stderr.flush()
    with STDERR_HELD, tempfile.TemporaryFile() as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        text = held.read()
    other = b"".join(line for line in text.splitlines(keepends=True) if not line.startswith(JPEG_DATA_WARNINGS))
    if other:
        os.write(2, other)
    return image, text


def read_image(path: Path) -> np.ndarray:
    """A still image as stored (any channels, 8 or 16 bit), turned upright by its EXIF orientation; MediaError for
    undecodable data, a JPEG cut short, or (status bad_image, from the header) beyond MAX_IMAGE_PIXELS."""
    if parse_row_path(path) is not None:  # a face stored as a row of FER-2013's CSV
        return read_row_image(path)
    cv2 = quiet_cv2()
    check_media(path)
    header = image_header(path)
    if header is not None and header[0][0] * header[0][1] > MAX_IMAGE_PIXELS:
        width, height = header[0]
        raise MediaError(
            f"{Path(path).name}: {width}×{height} = {width * height / 1e6:,.0f} Mpx exceeds the limit of "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx (downscale it to process it)",
            status="bad_image",
        )
    data = Path(path).read_bytes()
    is_jpeg = data.startswith(IMAGE_MAGIC[1])
    # Cut short: no end-of-image marker after the last scan (OpenCV decodes it without an error, the missing rows
    # grey). An EXIF thumbnail's markers come before the main scan; bytes appended after the end marker do not count.
    if is_jpeg and data.rfind(JPEG_END_OF_IMAGE) < data.rfind(JPEG_START_OF_SCAN):
        raise MediaError(f"{Path(path).name}: the JPEG data is cut short (no end-of-image marker)")
    try:  # IMREAD_UNCHANGED keeps 16-bit and alpha but ignores EXIF, applied below
        if is_jpeg:
            image, warnings = decode_warnings(cv2, data)
        else:
            image, warnings = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), b""
    except cv2.error as exc:
        raise MediaError(f"{Path(path).name}: image data could not be decoded ({exc})") from exc
    if any(warning in warnings for warning in JPEG_DATA_WARNINGS):
        raise MediaError(f"{Path(path).name}: the JPEG data is cut short (its pixel data stops early)")
    if image is None or image.size == 0:
        raise MediaError(f"{Path(path).name}: image data could not be decoded (corrupted or truncated?)")
    return apply_orientation(image, header[1]) if header is not None else image


def quiet_cv2() -> Any:
    """cv2 with OpenCV's and FFmpeg's messages silenced unless the user set OPENCV_LOG_LEVEL, OPENCV_FFMPEG_LOGLEVEL."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOG_LEVEL)  # read at OpenCV's first video open
    import cv2

    if "OPENCV_LOG_LEVEL" not in os.environ:  # OpenCV 4.14 has it in cv2.utils.logging only, 4.12 in cv2 only
        getattr(cv2.utils, "logging", cv2).setLogLevel(CV_LOG_ERROR)
    return cv2


def to_uint8(image: np.ndarray) -> np.ndarray:
    """`image` as uint8: 16-bit is scaled from the bit depth its values use (full 16-bit by 1/257, 10-bit data
    by 1/4), floats in [0, 1] by 255; uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        # A 10- or 12-bit sensor's data stored in 16 bits uses the low bits only: scaled as 16-bit it is near-black.
        bits = max(8, int(image.max(initial=0)).bit_length())
        if bits == 16:
            return (image.astype(np.uint32) // 257).astype(np.uint8)
        return (image >> (bits - 8)).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(image, initial=0.0)) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer) or image.dtype == np.bool_:
        return np.clip(image, 0, 255).astype(np.uint8)
    raise InputError(f"unsupported image dtype {image.dtype}")


def channel_count(image: np.ndarray) -> int:
    """Number of channels of a 2-D (1) or 3-D (last axis) image; ValueError for anything else."""
    if image.ndim == 2:
        return 1
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        return image.shape[2]
    raise InputError(f"expected a gray, BGR or BGRA image, got an array of shape {image.shape}")


def to_gray(image: np.ndarray) -> np.ndarray:
    """A contiguous single-channel uint8 copy of a gray, BGR or BGRA image (any bit depth)."""
    import cv2

    image = to_uint8(image)
    channels = channel_count(image)
    if channels == 1:
        return np.ascontiguousarray(image.reshape(image.shape[0], image.shape[1]))
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous RGB uint8 copy of a gray, BGR or BGRA image (dlib's CNN wants RGB)."""
    import cv2

    image = to_uint8(image)
    channels = channel_count(image)
    if channels == 1:
        return cv2.cvtColor(image.reshape(image.shape[0], image.shape[1]), cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGB)


# Frames below which decoding forward beats a seek: OpenCV's seek decodes from the keyframe before target - 16
# (RAVDESS: one every 12 frames), so it saves nothing on shorter gaps (benchmarks/bench_preprocess.py --real).
SEEK_GAP = 32
# FFmpeg threads per clip: OpenCV's default, one per CPU, costs more CPU per H.264 clip with a worker per core.
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
            if handler := {b"vide": "video", b"soun": "audio"}.get(inner.get(b"hdlr", b"")[8:12]):
                tracks[handler] = tracks.get(handler, 0) + int.from_bytes(inner.get(b"stsz", b"")[8:12], "big")
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
        if kind := {8: "audio", 9: "video"}.get(data[position]):
            tracks[kind] = tracks.get(kind, 0) + 1
        position += 11 + int.from_bytes(data[position + 1 : position + 4], "big") + 4
    return tracks


def container_tracks(path: Path) -> dict[str, int] | None:
    """Frames per track kind ('video', 'audio') of an MP4/MOV or FLV; None for others, MP4s without moov, huge ones."""
    path = Path(path)
    if path.stat().st_size > MAX_PARSED_BYTES:
        return None
    data = path.read_bytes()
    if data.startswith(b"FLV"):
        return _flv_tracks(data)
    has_moov = any(kind == b"moov" for kind, _, _ in _mp4_boxes(data, 0, len(data)))
    return _mp4_tracks(data, 0, len(data)) if has_moov else None  # no moov: not an MP4, or one cut before its index


def unopenable_error(path: Path) -> MediaError:
    """Why OpenCV could not open `path`: audio only (not_video), no video frames (empty) or a damaged container."""
    name = Path(path).name
    tracks = container_tracks(path)
    if tracks is not None and "video" not in tracks and "audio" in tracks:
        return MediaError(f"{name}: audio only (the file holds an audio track and no video track)", status="not_video")
    if tracks is not None and not tracks.get("video"):
        return MediaError(f"{name}: the file holds no video frames (an empty recording?)", status="empty")
    return MediaError(f"{name}: the video container could not be opened (corrupted or truncated?)")


@contextmanager
def open_clip(path: Path, threads: int | None = DECODER_THREADS) -> Iterator[Any]:
    """A cv2.VideoCapture of `path` with `threads` FFmpeg threads (None: OpenCV's), released on exit, or MediaError."""
    cv2 = quiet_cv2()
    params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, threads]
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    try:
        if not cap.isOpened():
            raise unopenable_error(path)
        yield cap
    finally:
        cap.release()


def frame_count(path: Path, *, exact: bool = False) -> int:
    """Frames in a clip: the container's count (a still: 1), decoded when `exact` or unknown; MediaError if none."""
    import cv2

    path = Path(path)
    if check_media(path) == "image":
        read_image(path)
        return 1
    with open_clip(path) as cap:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if exact or count <= 0:  # decode: the container does not report a length, or may claim too many
            count = sum(1 for _ in iter(cap.grab, False))
    if count <= 0:
        raise MediaError(f"{path.name}: the container holds no decodable frames", status="empty")
    return count


def frame_rate(path: Path) -> float | None:
    """A clip's frames per second as its container states it; None for a still (never opened as a video: FFmpeg
    would print its complaints about a damaged image above the reader's own error) or a container that does not say."""
    import cv2

    if check_media(path) == "image":
        return None
    with open_clip(path) as cap:
        fps = cap.get(cv2.CAP_PROP_FPS)
    return fps if fps > 0 else None


def frame_indices(count: int, n: int | None = 6, every: int | None = None) -> list[int]:
    """Which frames to sample from a clip of `count` frames.

    `every=k`: 0, k, 2k, … (the first `n` of them if `n` is also given). Otherwise `n`
    evenly spaced frames at the centres of n equal segments (a clip of 2n frames or more
    skips its first, neutral frame); `n=None`: all.
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
    for position in range(start, max(targets, default=-1) + 1):
        if not cap.grab():
            break
        if position in wanted:
            ok, frame = cap.retrieve()
            if ok and frame is not None:
                frames[position] = frame
    return frames


def _read_seeking(cap: Any, targets: Sequence[int]) -> tuple[dict[int, np.ndarray], list[int]]:
    """(frames read, targets left) of sorted `targets` read by seeks, stopping at one whose position disagrees."""
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
    """Frames `targets` of a video (None where undecodable), by verified seeks, the rest decoded from the start."""
    targets = sorted(set(targets))
    with open_clip(path, threads) as cap:
        frames, left = _read_seeking(cap, targets) if seek else ({}, targets)
    if left:
        with open_clip(path, threads) as cap:
            frames.update(_read_sequential(cap, 0, left))
    return [(t, frames.get(t)) for t in targets]


def try_sample_frames(
    path: Path, n: int | None = 6, every: int | None = None, *, seek: bool = True
) -> list[tuple[int, np.ndarray | None]]:
    """`sample_frames`, keeping undecodable frames as (index, None); MediaError only when the whole file is unusable."""
    path = Path(path)
    if check_media(path) == "image":
        return [(0, read_image(path))]
    count = frame_count(path)
    frames = read_frames(path, frame_indices(count, n, every), seek=seek)
    if all(frame is not None for _, frame in frames):
        return frames
    held = frame_count(path, exact=True)  # the header may claim frames the file does not hold
    return frames if held >= count else read_frames(path, frame_indices(held, n, every), seek=seek)


def sample_frames(
    path: Path, n: int | None = 6, every: int | None = None, *, seek: bool = True
) -> list[tuple[int, np.ndarray]]:
    """(frame index, BGR frame) pairs sampled as `frame_indices` says (6, as the paper, by default; a still image:
    [(0, image)]), undecodable frames left out; MediaError when none decodes."""
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
        with open_clip(path) as cap:
            width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    except (MediaError, OSError):
        return None
    return (width, height) if width > 0 and height > 0 else None
