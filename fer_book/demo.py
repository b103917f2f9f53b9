"""The book's live demo page: its model, a face detector and LiteRT.js, served from the book's `_static`.

`book/demo.md` runs entirely in the reader's browser: camera or file → BlazeFace short-range face
detection (the .tflite that MediaPipe publishes in the npm package `@mediapipe/face_detection`) →
gray crop resized to the model's input → the book's own model as a .tflite → class probabilities.
LiteRT.js (`@litertjs/core`) runs both .tflite files, so the page runs the very file chapter 8
exports, and a reader can load their own. Everything comes from pinned npm packages (fer_book.npm)
and this module's `export_demo_model`; nothing is fetched from anywhere else.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from fer_book.npm import (
    LITERT_CORE,
    LITERT_WASM_UTILS,
    MEDIAPIPE_FACE_DETECTION,
    NpmPackage,
    NpmPackageError,
    vendor_files,
)
from fer_utils.errors import ModelFileError
from fer_utils.runs import METRICS_FILE

# Where the page's files live: `<stage>/_extra/demo-assets/` → `<html>/demo-assets/`. Not under `_static`:
# Jupyter Book adds every .js/.css found there to EVERY page as a classic script, which breaks ES
# modules and would load the runtime on each chapter; `_extra` is Sphinx's html_extra_path (_config.yml).
DEMO_EXTRA_DIR = "_extra"
DEMO_STATIC_DIR = Path("demo-assets")
DEMO_SOURCE_DIR = Path("book") / "_demo"
DEMO_MODEL_FILE = "model.tflite"
DEMO_MODEL_INFO = "model.json"
FACE_DETECTOR_FILE = "face_detection_short_range.tflite"
# LiteRT.js's single-threaded WebAssembly builds (relaxed-SIMD and the compatible fallback): the
# threaded one needs cross-origin isolation, which a static host cannot promise; JSPI is for WebGPU/WebNN.
LITERT_WASM_BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal")
# LiteRT.js imports its helper package by its bare npm name; the vendored copy imports the file beside it.
WASM_UTILS_IMPORT = ('from "@litertjs/wasm-utils"', 'from "./wasm-utils.js"')
DEMO_PACKAGES: tuple[NpmPackage, ...] = (LITERT_CORE, LITERT_WASM_UTILS, MEDIAPIPE_FACE_DETECTION)


def vendor_demo_runtime(static: Path, cache: Path) -> list[Path]:
    """Put LiteRT.js (ES module + wasm builds) and the face detector model into `static` (the demo folder)."""
    runtime = static / "litert"
    written = vendor_files(LITERT_CORE, cache, runtime, lambda p: p == PurePosixPath("dist/index.js"))
    written += vendor_files(
        LITERT_CORE, cache, runtime / "wasm", lambda p: p.parent.name == "wasm" and p.stem in LITERT_WASM_BUILDS
    )
    written += vendor_files(LITERT_WASM_UTILS, cache, runtime / "utils", lambda p: p == PurePosixPath("dist/index.js"))
    (runtime / "utils" / "index.js").replace(runtime / "wasm-utils.js")
    (runtime / "utils").rmdir()
    index = runtime / "index.js"
    text = index.read_text()
    if WASM_UTILS_IMPORT[0] not in text:
        raise NpmPackageError(f"{LITERT_CORE.spec}: no import of @litertjs/wasm-utils to point at the vendored copy")
    index.write_text(text.replace(*WASM_UTILS_IMPORT))
    written += vendor_files(MEDIAPIPE_FACE_DETECTION, cache, static, lambda p: p.name == FACE_DETECTOR_FILE)
    return written


def licenses_text() -> str:
    """One line per vendored package: name, version, licence (the page shows and links this file)."""
    lines = [f"{p.spec}\t{p.license}\thttps://www.npmjs.com/package/{p.name}/v/{p.version}" for p in DEMO_PACKAGES]
    return "\n".join(lines) + "\n"


def model_accuracy(model_path: Path) -> float | None:
    """The frame accuracy in the run's metrics file (`runs.METRICS_FILE`) beside a model, if there is one."""
    metrics = Path(model_path).parent / METRICS_FILE
    if not metrics.is_file():
        return None
    test = json.loads(metrics.read_text()).get("test", {})
    frame = test.get("frame", test)
    value = frame.get("accuracy") if isinstance(frame, Mapping) else None
    return float(value) if value is not None else None


def batch_of_one(model: object) -> object:
    """`model` with a fixed batch size of 1: LiteRT.js rejects tensors for a dynamic (-1) batch dimension."""
    import keras

    inputs = keras.Input(shape=model.input_shape[1:], batch_size=1, name="image")
    return keras.Model(inputs, model(inputs), name=f"{model.name}_batch1")


def export_demo_model(model_path: Path, static: Path, about: Mapping[str, object]) -> Path:
    """Write `model_path` (.keras, with its classes.json) as `model.tflite` (float32) and `model.json` into
    `static`: classes, input shape, and `about` (trained_on, accuracy, license, ... shown on the page).

    This is how the book chooses the demo's model; `about["accuracy"]` defaults to the run's metrics file.
    """
    from fer_utils.deploy import to_tflite
    from fer_utils.models import load_classes, load_model

    model = load_model(Path(model_path))
    classes = load_classes(Path(model_path))
    shape = [int(d) for d in model.input_shape[1:]]
    if len(shape) != 3 or shape[2] != 1:
        raise ModelFileError(f"{model_path}: the demo feeds gray crops (H, W, 1); this model takes {shape}")
    if int(model.output_shape[-1]) != len(classes):
        raise ModelFileError(f"{model_path}: {model.output_shape[-1]} outputs but {len(classes)} classes")
    static.mkdir(parents=True, exist_ok=True)
    (static / DEMO_MODEL_FILE).write_bytes(to_tflite(batch_of_one(model), "float32"))
    info = {
        "accuracy": model_accuracy(Path(model_path)),
        **about,
        "classes": classes,
        "input_shape": shape,
        "source": Path(model_path).name,
    }
    (static / DEMO_MODEL_INFO).write_text(json.dumps(info, indent=1) + "\n")
    return static / DEMO_MODEL_FILE


def write_demo_static(static: Path, cache: Path, model_path: Path, about: Mapping[str, object], root: Path) -> Path:
    """Assemble the demo's whole static folder: page code from `<root>/book/_demo`, runtime, detector, model."""
    source = root / DEMO_SOURCE_DIR
    if not source.is_dir():
        raise ModelFileError(f"{source} is missing: the demo page's code lives there")
    static.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, static / item.name)
    vendor_demo_runtime(static, cache)
    (static / "LICENSES.txt").write_text(licenses_text())
    return export_demo_model(model_path, static, about)
