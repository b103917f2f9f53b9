"""Still images: what a file is by its first bytes (`sniff`, `check_media`: an image, a video or neither), the pixel
conversions every reader shares (`to_uint8`, `to_gray`, `to_rgb`), and `read_image`, the one reader of still
images (FER-2013's row paths too).

Bad files raise a `fer_utils.errors.MediaError` whose `.status` is the manifest status.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from fer_utils.data.fer2013 import check_row_source, parse_row_path, read_row_image
from fer_utils.errors import InputError, MediaError

# Leading bytes of the image formats OpenCV decodes with imread (GIF goes through the video reader).
IMAGE_MAGIC: tuple[bytes, ...] = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"P5",
    b"P6",
)
# Still images above this many pixels are refused from their header, before decoding (status bad_image):
# a 100 Mpx gray copy alone takes 100 MB, the BGR decode 300 MB per worker; phone photos are up to ~50 Mpx.
MAX_IMAGE_PIXELS = 100_000_000
EXIF_ORIENTATION = 0x0112
# FFmpeg's own log level for OpenCV's reader (-8: quiet): its messages ("overread 8", "moov atom not
# found") would otherwise reach the terminal for every damaged clip, whose problem the manifest records.
FFMPEG_LOG_LEVEL = "-8"
CV_LOG_ERROR = 2  # cv2.setLogLevel: errors only, no "[ WARN:0] ... can't be used to capture by name"
# JPEG markers: start of scan (the entropy-coded pixels follow) and end of image. Inside the pixel data a 0xFF
# byte is always followed by 0x00 or a restart marker, so neither pair can appear there by chance.
JPEG_START_OF_SCAN = b"\xff\xda"
JPEG_END_OF_IMAGE = b"\xff\xd9"
# What libjpeg writes to stderr when a scan's data stops before the image is complete (half a JPEG closed with
# its end marker): OpenCV decodes it anyway, the missing part grey; the warning is the only sign.
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
    kind = sniff(path)
    if kind == "unknown":
        with path.open("rb") as fh:
            head = fh.read(8)
        raise MediaError(f"{path.name} is neither a video nor an image (starts with {head!r})", status="not_video")
    return kind


def _header_image(path: Path) -> Any:
    """A lazily opened Pillow image (header parsed, pixels not decoded) or None when Pillow cannot parse
    it. PNG and JPEG are opened with their own plugin, which skips Pillow's decompression-bomb refusal so
    that `image_header` can name the size itself."""
    from PIL import Image, JpegImagePlugin, PngImagePlugin

    with Path(path).open("rb") as fh:
        head = fh.read(8)
    opener = {IMAGE_MAGIC[0]: PngImagePlugin.PngImageFile, IMAGE_MAGIC[1]: JpegImagePlugin.JpegImageFile}
    try:
        for magic, plugin in opener.items():
            if head.startswith(magic):
                return plugin(str(path))
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{Path(path).name}: {exc}", status="bad_image") from exc
    except (OSError, SyntaxError, ValueError, struct.error):
        return None


def png_exif_chunk(path: Path) -> bytes | None:
    """The data of a PNG's eXIf chunk wherever it lies (seeking from chunk header to chunk header), or None.
    Pillow's `getexif()` decodes the whole image to reach an eXIf chunk after the pixel data (gigabytes
    of memory and tens of seconds for a 4.7 MB file of 40,000 × 40,000 pixels)."""
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
    """The EXIF orientation (1..8; 1 when absent or damaged) of a lazily opened image, read without decoding
    its pixels: for a PNG, from an eXIf chunk wherever it lies (`png_exif_chunk`) through Pillow's generic
    `Image.getexif`, which reads only what the header gave (the PNG plugin's own would decode the image)."""
    from PIL import Image

    try:
        if getattr(image, "format", None) == "PNG":
            if "exif" not in image.info:
                data = png_exif_chunk(path)
                if data is not None:
                    image.info["exif"] = data
            exif = Image.Image.getexif(image)
        else:
            exif = image.getexif()
        orientation = int(exif.get(EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError, struct.error):  # a damaged EXIF block: leave it as stored
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def image_header(path: Path) -> tuple[tuple[int, int], int] | None:
    """((width, height), EXIF orientation 1..8) of a still image, read from its header without decoding
    the pixels (`_orientation`); None when the header cannot be parsed (the decoder then says what is wrong)."""
    image = _header_image(path)
    if image is None:
        return None
    with image:
        return (int(image.size[0]), int(image.size[1])), _orientation(image, path)


def check_pixels(path: Path, size: tuple[int, int]) -> None:
    """MediaError (status bad_image) for an image of more than MAX_IMAGE_PIXELS pixels, before it is
    decoded: one such file would take gigabytes per worker, or abort OpenCV's decoder."""
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            f"{Path(path).name}: {width}×{height} = {width * height / 1e6:,.0f} Mpx exceeds the limit of "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx (downscale it to process it)",
            status="bad_image",
        )


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


def truncated_jpeg(data: bytes) -> bool:
    """Whether `data`, a JPEG file, is cut short: no end-of-image marker after its last scan (OpenCV decodes
    it without an error, the missing rows grey). An EXIF thumbnail's markers come before the main scan, and
    bytes some cameras append after the end marker do not count."""
    if not data.startswith(IMAGE_MAGIC[1]):
        return False
    return data.rfind(JPEG_END_OF_IMAGE) < data.rfind(JPEG_START_OF_SCAN)


def decode_warnings(cv2: Any, data: bytes) -> tuple[Any, bytes]:
    """(cv2.imdecode of `data`, what the decoder wrote to stderr meanwhile). libjpeg reports damaged pixel
    data only there, so file descriptor 2 is held in a temporary file while it decodes (one thread at a
    time), and what was held that is not the decoder's warning is written back."""
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
    """A still image as stored (any channels, 8 or 16 bit), turned upright by its EXIF orientation. MediaError
    beyond MAX_IMAGE_PIXELS (checked from the header, before decoding), for undecodable data, or for a JPEG
    cut short (`truncated_jpeg`, or libjpeg's warning: `decode_warnings`)."""
    if parse_row_path(path) is not None:  # a face stored as a row of FER-2013's CSV
        return read_row_image(path)
    cv2 = quiet_cv2()
    check_media(path)
    header = image_header(path)
    if header is not None:
        check_pixels(path, header[0])
    data = Path(path).read_bytes()
    if truncated_jpeg(data):
        raise MediaError(f"{Path(path).name}: the JPEG data is cut short (no end-of-image marker)")
    try:  # IMREAD_UNCHANGED keeps 16-bit and alpha but ignores EXIF, applied below
        if data.startswith(IMAGE_MAGIC[1]):
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
    """The cv2 module with OpenCV's warnings and FFmpeg's messages silenced (unless the user set
    OPENCV_LOG_LEVEL or OPENCV_FFMPEG_LOGLEVEL): bad input is reported by the error or status it gets."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOG_LEVEL)  # read at OpenCV's first video open
    import cv2

    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.setLogLevel(CV_LOG_ERROR)
    return cv2


def stored_bits(image: np.ndarray) -> int:
    """The bit depth a 16-bit image's values actually use (9..16; at least 8): a 10- or 12-bit sensor's data
    stored in 16 bits uses the low bits only, and scaled as full 16-bit it would be near-black."""
    return max(8, int(image.max(initial=0)).bit_length())


def to_uint8(image: np.ndarray) -> np.ndarray:
    """`image` as uint8: 16-bit is scaled from the bit depth its values use (`stored_bits`: full 16-bit
    by 1/257, 10-bit data by 1/4), floats in [0, 1] by 255; uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        bits = stored_bits(image)
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
    code = cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY
    return cv2.cvtColor(image, code)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous RGB uint8 copy of a gray, BGR or BGRA image (dlib's CNN wants RGB)."""
    import cv2

    image = to_uint8(image)
    channels = channel_count(image)
    if channels == 1:
        return cv2.cvtColor(image.reshape(image.shape[0], image.shape[1]), cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGB
    return cv2.cvtColor(image, code)
