"""Images as phones and scanners write them: EXIF orientation, images
too large to decode, 10-bit data in 16-bit PNGs. Real London faces, read through the one image reader
(`media.read_image`) by `detect`, `preprocess` and `predict`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_runner import run_cli
from PIL import Image

from fer_utils.assets import london_faces_dir
from fer_utils.data.manifest import load_manifest
from fer_utils.data.media import image_header, read_image, to_gray
from fer_utils.errors import MediaError
from fer_utils.faces.crops import make_detector
from fer_utils.models.networks import build_model, save_model

FACE = london_faces_dir() / "neutral" / "001_03.jpg"
SIDE = 32


def sideways_photo(path: Path, source: Path = FACE) -> Path:
    """`source` stored turned 90° clockwise with EXIF Orientation 8 (a viewer turns it back upright),
    as a phone held sideways writes it."""
    upright = Image.open(source)
    stored = upright.transpose(Image.Transpose.ROTATE_270)  # 90° clockwise
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to view
    stored.save(path, exif=exif, quality=95)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def deflated_rows(row: bytes, count: int, per_block: int = 1000) -> bytes:
    """zlib data of `row` repeated `count` times, made fast: one block of `per_block` rows is deflated once,
    ended by a full flush (so it refers to nothing before it), and repeated."""
    packer, tail = zlib.compressobj(9, zlib.DEFLATED, -15), zlib.compressobj(9, zlib.DEFLATED, -15)
    whole, rest = divmod(count, per_block)
    block = packer.compress(row * per_block) + packer.flush(zlib.Z_FULL_FLUSH)
    end = tail.compress(row * rest) + tail.flush()
    check, rows = 1, row * per_block
    for _ in range(whole):
        check = zlib.adler32(rows, check)
    check = zlib.adler32(row * rest, check)
    return b"\x78\xda" + block * whole + end + check.to_bytes(4, "big")


def exif_orientation(orientation: int) -> bytes:
    """An EXIF block (as a PNG eXIf chunk holds it) that says `orientation`."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes().removeprefix(b"Exif\x00\x00")


def huge_png(path: Path, side: int = 40000, exif_after_pixels: bytes | None = None) -> Path:
    """A one-colour `side`×`side` 8-bit gray PNG written chunk by chunk (about 1.6 MB for 40000), with an eXIf
    chunk after the pixel data when given (where Pillow only finds it by decoding the pixels)."""
    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    chunks = [png_chunk(b"IHDR", header), png_chunk(b"IDAT", deflated_rows(b"\x00" + b"\x80" * side, side))]
    if exif_after_pixels is not None:
        chunks.append(png_chunk(b"eXIf", exif_after_pixels))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained paper CNN at 32 px with classes neutral, happy (predict only needs its outputs)."""
    folder = tmp_path_factory.mktemp("model")
    return save_model(build_model("paper-cnn", 2, (SIDE, SIDE, 1)), folder / "model.keras", ["neutral", "happy"])


def test_a_sideways_phone_photo_is_read_upright(tmp_path: Path) -> None:
    photo = sideways_photo(tmp_path / "phone.jpg")
    stored = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
    upright = cv2.imread(str(FACE))
    assert stored.shape[:2] == upright.shape[1::-1]  # stored sideways
    image = read_image(photo)
    assert image.shape == upright.shape
    assert np.abs(to_gray(image).astype(int) - to_gray(upright).astype(int)).mean() < 6
    assert len(make_detector("dlib-hog").detect(image)) == 1


def test_predict_finds_the_face_of_a_sideways_phone_photo(tmp_path: Path, model_file: Path) -> None:
    photo = sideways_photo(tmp_path / "phone.jpg")
    code, _, err = run_cli(["predict", "--model", str(model_file), str(photo), "--json", str(tmp_path / "p.json")])
    assert code == 0, err
    rows = json.loads((tmp_path / "p.json").read_text())
    assert len(rows) == 1, rows


def test_predict_says_how_many_frames_it_read_and_what_the_detector_searched_when_it_finds_no_face(
    tmp_path: Path, model_file: Path
) -> None:
    """Issue 74: `predict` on a 3840×720 frame found no face and did not say that the detector searched a 400 px
    copy, nor how to search more (`--max-side`, as `preprocess` has); on a 1×1 image it said "0 frame(s)" after
    reading one. Now the frames read are counted, with or without a face, and no face is said with the reason."""
    wide = np.zeros((720, 3840, 3), np.uint8)
    wide[:, 1560:2280] = cv2.resize(cv2.imread(str(FACE)), (720, 720), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    cv2.imwrite(str(tmp_path / "dot.png"), np.full((1, 1, 3), 128, np.uint8))
    argv = ["predict", "--model", str(model_file), "--json", str(tmp_path / "p.json"), "--overwrite"]  # each run's
    code, out, err = run_cli([*argv, str(tmp_path / "wide.png")])
    assert code == 0, err
    assert json.loads((tmp_path / "p.json").read_text()) == []
    assert "1 frame(s) read, no face found by dlib-hog (searched a 400x75 copy of the 3840x720 image" in out
    assert "try --max-side full or a larger --max-side" in out
    code, out, err = run_cli([*argv, str(tmp_path / "wide.png"), "--max-side", "1600"])
    assert code == 0, err
    assert len(json.loads((tmp_path / "p.json").read_text())) == 1 and "1 face(s) in 1 of 1 frame(s) read" in out
    code, out, err = run_cli([*argv, str(tmp_path / "dot.png")])
    assert code == 0, err
    assert "1 frame(s) read, no face found by dlib-hog" in out and "0 frame(s)" not in out
    with pytest.raises(SystemExit, match="2"):  # as preprocess's: at least 32 px
        run_cli([*argv, str(tmp_path / "dot.png"), "--max-side", "16"])


def test_detector_none_crops_a_sideways_photo_upright(tmp_path: Path) -> None:
    src = tmp_path / "src" / "neutral"
    src.mkdir(parents=True)
    sideways_photo(src / "001_03.jpg")
    out = tmp_path / "crops"
    argv = ["preprocess", "--dataset", "folder", "--src", str(src.parent), "--out", str(out), "--detector", "none"]
    code, _, err = run_cli([*argv, "--side", "64", "--workers", "1", "--quiet"])
    assert code == 0, err
    crop = cv2.imread(str(out / load_manifest(out)["image"][0]), cv2.IMREAD_GRAYSCALE)
    # the face is upright: dlib finds it in the crop, upsampled as the detector does for small images
    assert len(make_detector("dlib-hog").detect(crop)) == 1
    assert len(make_detector("dlib-hog").detect(np.rot90(crop).copy())) == 0


def test_an_image_too_large_to_decode_is_a_bad_image_and_the_run_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "src" / "neutral"
    src.mkdir(parents=True)
    huge_png(src / "999_03.png")
    for person in (1, 2):
        shutil.copy(london_faces_dir() / "neutral" / f"{person:03d}_03.jpg", src)
    out = tmp_path / "crops"
    argv = ["preprocess", "--dataset", "folder", "--src", str(src.parent), "--out", str(out), "--side", str(SIDE)]
    for _ in range(2):  # a rerun does not abort on it either
        code, _, err = run_cli([*argv, "--workers", "1", "--quiet"])
        assert code == 0, err
        manifest = load_manifest(out).set_index("clip_id")
        assert manifest.loc["999_03", "status"] == "bad_image"
        assert "40000×40000" in manifest.loc["999_03", "reason"] and "limit" in manifest.loc["999_03", "reason"]
        assert (manifest["status"] == "ok").sum() == 2


def test_ten_bit_data_in_a_sixteen_bit_png_keeps_its_contrast(tmp_path: Path) -> None:
    gray = cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)
    ten_bit = (gray.astype(np.uint16) * 4) + 3  # 0..1023, as a 10-bit sensor writes it into 16 bits
    path = tmp_path / "ten_bit.png"
    cv2.imwrite(str(path), ten_bit)
    restored = to_gray(read_image(path))
    assert np.abs(restored.astype(int) - gray.astype(int)).max() <= 1
    assert len(make_detector("dlib-hog").detect(read_image(path))) == 1


# Run in a fresh process, so that its peak memory is the header read's own: VmHWM, the peak resident size of
# this process image (getrusage's ru_maxrss keeps the forking pytest's across exec), read before `read_image`,
# whose OpenCV import alone takes hundreds of MB.
HEADER_PROBE = """
import re, sys, time
from pathlib import Path
from fer_utils.errors import MediaError
from fer_utils.data.media import image_header, read_image
start = time.perf_counter()
header = image_header(sys.argv[1])
peak_mb = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1]) // 1024
print(header, round(time.perf_counter() - start, 2), peak_mb)
try:
    read_image(sys.argv[1])
    print("not refused")
except MediaError as exc:
    print(exc)
"""
MAX_HEADER_RSS_MB = 300


def test_the_header_of_a_huge_png_with_exif_after_its_pixels_is_read_without_decoding_them(tmp_path: Path) -> None:
    """Pillow's PNG `getexif()` decodes the whole image to reach an eXIf chunk after the pixel data: 1.6 GB
    (gray) for this 1.6 MB file, 6.4 GB for an RGBA one, before the file is refused for its size."""
    path = huge_png(tmp_path / "huge.png", exif_after_pixels=exif_orientation(6))
    assert path.stat().st_size < 3_000_000
    done = subprocess.run([sys.executable, "-c", HEADER_PROBE, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(("((", "huge.png", "not refused"))]
    first, refused = lines
    header, seconds, peak_mb = first.rsplit(" ", 2)
    assert header == "((40000, 40000), 6)", "the orientation is read from the eXIf chunk after the pixels"
    assert "40000×40000" in refused and "exceeds the limit" in refused
    assert int(peak_mb) < MAX_HEADER_RSS_MB and float(seconds) < 5, f"{peak_mb} MB, {seconds} s"


def test_an_exif_chunk_after_the_pixels_still_turns_a_png_upright(tmp_path: Path) -> None:
    sideways = tmp_path / "sideways.png"
    Image.open(FACE).transpose(Image.Transpose.ROTATE_270).save(sideways)  # stored turned 90° clockwise, no EXIF
    data = sideways.read_bytes()
    end = data.rindex(b"IEND") - 4  # the IEND chunk's length field
    sideways.write_bytes(data[:end] + png_chunk(b"eXIf", exif_orientation(8)) + data[end:])
    assert "exif" not in Image.open(sideways).info, "Pillow does not see the chunk when it opens the file"
    assert image_header(sideways)[1] == 8
    upright = cv2.imread(str(FACE))
    assert read_image(sideways).shape == upright.shape
    with pytest.raises(MediaError, match="40000×40000"):
        read_image(huge_png(tmp_path / "huge.png", exif_after_pixels=exif_orientation(3)))


def test_a_truncated_jpeg_is_unreadable_not_an_ok_crop_with_grey_rows(tmp_path: Path) -> None:
    """OpenCV decodes a JPEG cut short without an error, its missing rows grey, and the run
    wrote an `ok` crop of it. The bytes are checked: no end-of-image marker after the last scan."""
    from fer_utils.errors import MediaError

    src = tmp_path / "src" / "neutral"
    src.mkdir(parents=True)
    data = FACE.read_bytes()
    (src / "001_03.jpg").write_bytes(data[: len(data) // 2])
    shutil.copy(london_faces_dir() / "neutral" / "002_03.jpg", src)
    with pytest.raises(MediaError, match="the JPEG data is cut short"):
        read_image(src / "001_03.jpg")
    out = tmp_path / "crops"
    argv = ["preprocess", "--dataset", "folder", "--src", str(src.parent), "--out", str(out), "--detector", "none"]
    code, _, err = run_cli([*argv, "--side", str(SIDE), "--workers", "1", "--quiet"])
    assert code == 0, err
    manifest = load_manifest(out).set_index("clip_id")
    assert manifest.loc["001_03", "status"] == "unreadable" and "cut short" in manifest.loc["001_03", "reason"]
    assert manifest.loc["002_03", "status"] == "ok"
    assert read_image(FACE).shape[:2] == (512, 512)  # a whole JPEG still reads


def test_half_a_jpeg_closed_with_its_end_marker_is_unreadable_not_a_grey_image(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """The byte check (an end marker after the last scan) passed it, and OpenCV decoded it grey below the cut."""
    from fer_utils.assets import london_faces_dir
    from fer_utils.data.media import JPEG_END_OF_IMAGE, JPEG_START_OF_SCAN, read_image
    from fer_utils.errors import MediaError

    whole = london_faces_dir() / "neutral" / "001_03.jpg"
    data = whole.read_bytes()
    scan = data.rfind(JPEG_START_OF_SCAN)
    half = tmp_path / "half.jpg"
    half.write_bytes(data[: scan + (len(data) - scan) // 2] + JPEG_END_OF_IMAGE)
    with pytest.raises(MediaError, match="the JPEG data is cut short"):
        read_image(half)
    assert read_image(whole).shape[:2] == (512, 512)
    print("still here", file=sys.stderr, flush=True)
    assert capfd.readouterr().err == "still here\n", "stderr is given back, the decoder's warning held"


def test_predict_on_a_damaged_png_says_so_in_one_line_without_ffmpegs_complaints(
    tmp_path: Path, model_file: Path
) -> None:
    """`predict` opened every input as a video to read its frame rate, before reading it as an image: on a PNG cut
    short, FFmpeg printed "[png @ 0x…] chunk too big" above the reader's own error. A fresh interpreter, as a
    reader's: OpenCV reads FFmpeg's log level once."""
    damaged = tmp_path / "cut.png"
    damaged.write_bytes(cv2.imencode(".png", cv2.imread(str(FACE)))[1].tobytes()[:300])
    result = subprocess.run(
        [sys.executable, "-m", "fer_utils", "predict", "--model", str(model_file), str(damaged)],
        capture_output=True,
        text=True,
        # as a reader runs it: TensorFlow's log level unset (its "cpu_feature_guard" lines were printed too)
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
        timeout=300,
    )
    assert result.returncode == 2, result  # a usage or input error, as the other refusals
    lines = result.stderr.splitlines()
    assert lines == [f"error: {damaged.name}: image data could not be decoded (corrupted or truncated?)"], lines


def test_predict_on_a_missing_file_says_it_does_not_exist(tmp_path: Path, model_file: Path) -> None:
    """Regression of the fix above: reading the frame rate of a missing file raised FileNotFoundError, a traceback,
    before the reader's own "does not exist"."""
    missing = tmp_path / "gone.png"
    code, _, err = run_cli(["predict", "--model", str(model_file), str(missing)])
    assert code == 2 and f"{missing} does not exist" in err, err
