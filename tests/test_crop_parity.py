"""One face, one input tensor: the CLI, Python inference and the demo page cut and resize a face
to the same pixels, from the crop spec alone.

Three real frames go through all three: a London face whose square is larger than the crop (OpenCV's
INTER_AREA), a CREMA-D frame whose face is smaller (INTER_LINEAR), and the London face cut so that its square
leaves the frame (edge pixels repeated). `python -m fer_utils preprocess` (with a margin and a side of its own,
not the defaults) writes their crops, the boxes it found (manifest.csv) and `crop_spec.json`; an
`inference.Recognizer` made from that spec crops each frame itself; the page's own crop code
(`book/_demo/crop.js`, `frameCrop`, what `demo.js` calls on every camera frame) cuts the frame in headless
chromium at the manifest's box with the spec read from the file. The frame reaches the browser as a lossless
PNG of the pixels OpenCV decoded, so what is compared is the crop and the resize alone. All must agree within
one gray level, and so must what the model's own resizer makes of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser import CROP_PAGE, chromium, serve, wait_for

from fer_utils.assets import cremad_dir, london_faces_dir
from fer_utils.faces.crops import CROP_SPEC_FILE, CropSpec, read_crop_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = CropSpec(margin=0.2, side=224)  # what the CLI is asked for: neither the default margin nor side
WHOLE_SIDE = 128  # the crops of whole images below: larger than the generated faces (96), smaller than the London one


def frames() -> dict[str, np.ndarray]:
    """The three frames (BGR, as OpenCV decodes them), by name."""
    import cv2

    from fer_utils.data.media import try_sample_frames

    london = cv2.imread(str(sorted(london_faces_dir().rglob("*.jpg"))[0]))
    cremad = try_sample_frames(sorted(cremad_dir().glob("*.flv"))[0], 1)[0][1]
    return {"london": london, "cremad": cremad, "edge": np.ascontiguousarray(london[120:, 150:])}


def preprocess_in_a_process(images: dict[str, np.ndarray], root: Path, out: str, *options: str) -> None:
    """Write `images` as `root/src/neutral/<name>.png` and cut them into `root/<out>` with `python -m fer_utils
    preprocess` in its own process, as a reader runs it, with the crop `options` given."""
    import cv2

    (root / "src" / "neutral").mkdir(parents=True)
    for name, image in images.items():
        cv2.imwrite(str(root / "src" / "neutral" / f"{name}.png"), image)
    command = [sys.executable, "-m", "fer_utils", "preprocess", "--dataset", "folder", "--src", str(root / "src")]
    command += ["--out", str(root / out), *options, "--workers", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The frames as a folder of classes, preprocessed by the CLI: {frames, crops, manifest, spec, folder}."""
    import cv2

    from fer_utils.data.manifest import load_manifest

    root = tmp_path_factory.mktemp("parity")
    images = frames()
    preprocess_in_a_process(images, root, "crops", "--margin", str(SPEC.margin), "--side", str(SPEC.side))
    manifest = load_manifest(root / "crops").set_index("clip_id")
    crops = {
        name: cv2.imread(str(root / "crops" / manifest.loc[name, "image"]), cv2.IMREAD_GRAYSCALE) for name in images
    }
    return {"frames": images, "crops": crops, "manifest": manifest, "root": root}


def test_the_cli_writes_the_spec_it_was_asked_for_beside_its_crops(cut: dict) -> None:
    spec = read_crop_spec(cut["root"] / "crops")
    assert spec == SPEC
    assert json.loads((cut["root"] / "crops" / CROP_SPEC_FILE).read_text()) == SPEC.to_dict()
    assert all(crop.shape == (SPEC.side, SPEC.side) for crop in cut["crops"].values())


def test_the_three_frames_take_each_path_of_the_resize(cut: dict) -> None:
    """The London square is larger than the crop, the CREMA-D one smaller, the edge one leaves its frame."""
    from fer_utils.faces.crops import Box, square_region

    squares = {}
    for name, image in cut["frames"].items():
        row = cut["manifest"].loc[name]
        squares[name] = (square_region(Box(row.x, row.y, row.w, row.h), SPEC.margin), image.shape)
    (x0, _, x1, _), _ = squares["london"]
    assert x1 - x0 > SPEC.side
    (x0, _, x1, _), _ = squares["cremad"]
    assert x1 - x0 < SPEC.side
    (x0, y0, x1, y1), shape = squares["edge"]
    assert min(x0, y0) < 0 or x1 > shape[1] or y1 > shape[0]


def test_python_inference_crops_as_the_cli_from_the_spec_alone(cut: dict) -> None:
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.faces.preprocess import folder_crop_spec
    from fer_utils.models.networks import build_paper_cnn

    recognizer = Recognizer(
        build_paper_cnn(2, (32, 32, 1)), ["neutral", "happy"], spec=folder_crop_spec(cut["root"] / "crops")
    )
    for name, image in cut["frames"].items():
        result = recognizer.frame(image)
        row, face = cut["manifest"].loc[name], result.faces[0]
        assert (face.x, face.y, face.w, face.h) == (row.x, row.y, row.w, row.h), name
        difference = np.abs(result.crops[0].astype(int) - cut["crops"][name])
        assert difference.max() <= 1, (name, difference.max())


@pytest.fixture(scope="module")
def page(cut: dict) -> Iterator[object]:
    """Headless chromium on a page that loads the demo's crop.js, with the three frames beside it."""
    site = cut["root"] / "site"
    site.mkdir()
    shutil.copy2(REPO / "book" / "_demo" / "crop.js", site / "crop.js")
    (site / "index.html").write_text(CROP_PAGE)
    for name in cut["frames"]:
        shutil.copy2(cut["root"] / "src" / "neutral" / f"{name}.png", site / f"{name}.png")
    with serve(site) as url, chromium() as driver:
        driver.get(f"{url}/index.html")
        wait_for(driver, "window.ready", timeout=30)
        yield driver


@pytest.fixture(scope="module")
def page_crops(cut: dict, page: object) -> dict[str, np.ndarray]:
    """The page's crops of the three frames, by crop.js in headless chromium, from crop_spec.json alone."""
    items = []
    for name in cut["frames"]:
        row = cut["manifest"].loc[name]
        items.append([f"{name}.png", {"x": int(row.x), "y": int(row.y), "w": int(row.w), "h": int(row.h)}])
    spec = json.loads((cut["root"] / "crops" / CROP_SPEC_FILE).read_text())
    got = page.execute_async_script(
        "const done = arguments[arguments.length - 1]; window.cropFrames(arguments[0], arguments[1]).then(done);",
        items,
        spec,
    )
    return {name: np.asarray(crop, np.uint8).reshape(SPEC.side, SPEC.side) for name, crop in zip(cut["frames"], got)}


def test_the_page_crops_as_the_cli_from_the_spec_alone(cut: dict, page_crops: dict[str, np.ndarray]) -> None:
    for name, crop in page_crops.items():
        difference = np.abs(crop.astype(int) - cut["crops"][name])
        assert difference.max() <= 1, (name, difference.max(), int((difference > 0).sum()))


def test_the_models_own_resize_of_the_three_agrees(cut: dict, page_crops: dict[str, np.ndarray]) -> None:
    """What the network sees, after the model's resizer (224 → 32 here), is the same for the three paths."""
    import keras

    from fer_utils.deploy.inference import Recognizer
    from fer_utils.models.networks import build_paper_cnn

    model = build_paper_cnn(2, (32, 32, 1))
    resize = keras.Model(model.input, model.get_layer("resize").output)
    recognizer = Recognizer(model, ["neutral", "happy"], spec=SPEC)
    for name, image in cut["frames"].items():
        inputs = [cut["crops"][name], recognizer.frame(image).crops[0], page_crops[name]]
        seen = [resize(np.asarray(x, np.float32)[None, ..., None]).numpy() for x in inputs]
        assert max(np.abs(s - seen[0]).max() for s in seen) <= 1.0, name


# Squares (side n) resized to `side`: OpenCV's whole-factor area paths (2, which has its own rounding, and 3),
# its general area path, its bilinear path (upscaling, including from a single pixel) and the identity.
RESIZES = ((360, 180), (144, 48), (250, 96), (181, 180), (97, 48), (100, 180), (3, 48), (1, 32), (96, 96), (47, 64))


def test_the_pages_resize_is_opencvs_on_squares_of_many_sides(page: object) -> None:
    """crop.js's resize against cv2.resize (INTER_AREA down, INTER_LINEAR up, as `crops.crop_face` picks) on
    random gray squares, in the browser: within one gray level, and one level apart on under 1 % of the pixels
    (here none: the scalar INTER_LINEAR formula instead of OpenCV's SIMD one is one level off on about 10 %)."""
    import cv2

    rng = np.random.default_rng(37)
    for n, side in RESIZES:
        square = rng.integers(0, 256, (n, n), dtype=np.uint8)
        expected = cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA if n > side else cv2.INTER_LINEAR)
        got = page.execute_script("return window.resizeGray(...arguments)", square.ravel().tolist(), n, side)
        difference = np.abs(np.asarray(got).reshape(side, side) - expected.astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01, (n, side, difference.max())


# --- whole images (detector "none"): one crop whichever entry point cuts them -------------------


def generated_paths(count: int) -> list[Path]:
    """`count` of the shipped generated faces, spread over every class: the ones int8 calibration takes."""
    from fer_utils.assets import diffusionfer_dir

    paths = sorted(p for p in diffusionfer_dir().rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return paths[:: max(1, len(paths) // count)][:count]


def whole_images() -> dict[str, np.ndarray]:
    """Faces that are images of a face already (BGR), by name: three of the generated faces (96 px, square), a
    face cut out of a London photo (not square, larger than the crop) and a small one (not square, smaller). A
    margin around them shows: the square leaves a non-square image, and squeezes the face of a square one."""
    import cv2

    london = cv2.imread(str(sorted(london_faces_dir().rglob("*.jpg"))[0]))
    images = {f"generated{i}": cv2.imread(str(path)) for i, path in enumerate(generated_paths(3))}
    return {**images, "wide": np.ascontiguousarray(london[90:250, 130:300]), "small": london[150:200, 180:220].copy()}


def read_crops(folder: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The crops of a preprocessed folder, by clip name."""
    import cv2

    from fer_utils.data.manifest import load_manifest

    manifest = load_manifest(folder).set_index("clip_id")
    return {name: cv2.imread(str(folder / manifest.loc[name, "image"]), cv2.IMREAD_GRAYSCALE) for name in names}


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The whole images as a folder of classes, cut by the CLI with detector "none" at WHOLE_SIDE and its
    default margin: {images, root, cli (its crops by name)}."""

    root = tmp_path_factory.mktemp("whole")
    images = whole_images()
    preprocess_in_a_process(images, root, "cli", "--detector", "none", "--side", str(WHOLE_SIDE))
    return {"images": images, "root": root, "cli": read_crops(root / "cli", list(images))}


def test_the_cli_cuts_whole_images_without_a_margin(whole: dict) -> None:
    """A crop of a whole image is the image: a square one is resized, nothing around it."""
    import cv2

    spec = read_crop_spec(whole["root"] / "cli")
    assert spec == CropSpec(detector="none", side=WHOLE_SIDE) and spec.margin == 0.0
    generated = cv2.cvtColor(whole["images"]["generated0"], cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(whole["cli"]["generated0"], cv2.resize(generated, (WHOLE_SIDE,) * 2))


def test_the_books_crops_of_whole_images_are_the_clis(whole: dict, tmp_path: Path) -> None:
    """`artifacts.Dataset.crops` (the book's cached crops) cut whole images with CropSpec()'s margin of
    0.1 where the CLI cut them with none (`default_margin`): 39.3 gray levels apart on average. One spec, one
    margin: the same bytes."""
    from fer_utils.book.artifacts import Dataset

    folder = Dataset("folder", whole["root"] / "src").crops(tmp_path, detector="none", side=WHOLE_SIDE, workers=1)
    assert read_crop_spec(folder) == read_crop_spec(whole["root"] / "cli")
    for name, crop in read_crops(folder, list(whole["images"])).items():
        difference = np.abs(crop.astype(int) - whole["cli"][name])
        assert difference.max() == 0, (name, difference.mean())


def test_the_api_and_inference_cut_whole_images_as_the_cli(whole: dict, tmp_path: Path) -> None:
    """`preprocess_dataset` takes the crop spec itself (it decided its own margin, 0.1, for whole
    images too); the recognizer cuts each image from the same spec, with the "none" detector."""
    from fer_utils.data.indexing import index_dataset
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.faces.preprocess import preprocess_dataset
    from fer_utils.models.networks import build_paper_cnn

    spec = CropSpec(detector="none", side=WHOLE_SIDE)
    preprocess_dataset(index_dataset("folder", whole["root"] / "src").clips, tmp_path, spec, workers=1, progress=False)
    recognizer = Recognizer(build_paper_cnn(2, (32, 32, 1)), ["neutral", "happy"], "none", spec=spec)
    for name, crop in read_crops(tmp_path, list(whole["images"])).items():
        np.testing.assert_array_equal(crop, whole["cli"][name])
        np.testing.assert_array_equal(recognizer.frame(whole["images"][name]).crops[0], whole["cli"][name])


def test_int8_calibration_takes_the_crops_preprocessing_makes(whole: dict) -> None:
    """Int8 calibration resized the generated faces with OpenCV's INTER_AREA, also when enlarging
    them; it now takes the crops `preprocess --detector none` writes, which the model resizes itself."""
    from fer_utils.deploy.tflite import representative_faces, representative_paths

    assert representative_paths(3) == generated_paths(3)
    calibration = representative_faces(WHOLE_SIDE, WHOLE_SIDE, count=3)
    assert calibration.shape == (3, WHOLE_SIDE, WHOLE_SIDE, 1) and calibration.dtype == np.float32
    for i, image in enumerate(calibration):
        np.testing.assert_array_equal(image[..., 0], whole["cli"][f"generated{i}"].astype(np.float32))


NODE_CROP = """import {readFileSync, writeFileSync} from 'node:fs';
import {cropFace} from './crop.mjs';
const {items, spec} = JSON.parse(readFileSync('items.json', 'utf8'));
const crops = items.map(({rgba, width, height}) => {
  const image = {data: Uint8Array.from(Buffer.from(rgba, 'base64')), width, height};
  return Array.from(cropFace(image, {x: 0, y: 0, w: width, h: height}, spec));  // the box: the whole image
});
writeFileSync('crops.json', JSON.stringify(crops));
"""


def test_the_pages_crop_code_cuts_whole_images_as_the_cli(whole: dict) -> None:
    """The page's crop code (crop.js's `cropFace`, what `frameCrop` calls on the frame's pixels once drawn at
    1:1; run by node, so that it runs where chromium is missing) given the whole image as the box and the
    CLI's crop_spec.json: the CLI's crops, within one gray level."""
    import base64

    import cv2

    work = whole["root"] / "node"
    work.mkdir()
    shutil.copy2(REPO / "book" / "_demo" / "crop.js", work / "crop.mjs")
    (work / "run.mjs").write_text(NODE_CROP)
    items = []
    for image in whole["images"].values():
        rgba = cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)
        items.append(
            {"rgba": base64.b64encode(rgba.tobytes()).decode(), "width": image.shape[1], "height": image.shape[0]}
        )
    spec = json.loads((whole["root"] / "cli" / CROP_SPEC_FILE).read_text())
    (work / "items.json").write_text(json.dumps({"items": items, "spec": spec}))
    done = subprocess.run(["node", "run.mjs"], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name, crop in zip(whole["images"], json.loads((work / "crops.json").read_text())):
        difference = np.abs(np.asarray(crop, int).reshape(WHOLE_SIDE, WHOLE_SIDE) - whole["cli"][name])
        assert difference.max() <= 1, (name, difference.max())
