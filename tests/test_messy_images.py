"""Images as phones and scanners write them (issue 18, items 4, 11, 17): EXIF orientation, images
too large to decode, 10-bit data in 16-bit PNGs. Real London faces, read through the one image reader
(`video.read_image`) by `detect`, `preprocess` and `predict`."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_utils.assets import london_faces_dir
from fer_utils.cli import main
from fer_utils.faces import make_detector, to_gray
from fer_utils.manifest import load_manifest
from fer_utils.models import build_model, save_model
from fer_utils.video import read_image

FACE = london_faces_dir() / "neutral" / "001_03.jpg"
SIDE = 32


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`python -m fer_utils argv` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def sideways_photo(path: Path, source: Path = FACE) -> Path:
    """`source` stored turned 90° clockwise with EXIF Orientation 8 (a viewer turns it back upright),
    as a phone held sideways writes it."""
    upright = Image.open(source)
    stored = upright.transpose(Image.Transpose.ROTATE_270)  # 90° clockwise
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to view
    stored.save(path, exif=exif, quality=95)
    return path


def huge_png(path: Path, side: int = 40000) -> Path:
    """A one-colour `side`×`side` 8-bit gray PNG written chunk by chunk (about 1.6 MB for 40000)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    row = b"\x00" + b"\x80" * side
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
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


def test_detector_none_crops_a_sideways_photo_upright(tmp_path: Path) -> None:
    src = tmp_path / "src" / "neutral"
    src.mkdir(parents=True)
    sideways_photo(src / "001_03.jpg")
    out = tmp_path / "crops"
    argv = ["preprocess", "--dataset", "folder", "--src", str(src.parent), "--out", str(out), "--detector", "none"]
    code, _, err = run_cli([*argv, "--size", "64", "--workers", "1", "--quiet"])
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
    argv = ["preprocess", "--dataset", "folder", "--src", str(src.parent), "--out", str(out), "--size", str(SIDE)]
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
