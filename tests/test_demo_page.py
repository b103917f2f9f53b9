"""The live demo page of the built book (book/demo.md) in headless chromium, on a fake camera.

Chromium's fake capture device plays a Y4M file made here from the real RAVDESS clip shipped in the
package. The page must find the face, draw it, and predict; the class probabilities the browser
computed for a crop must match the Python TFLite interpreter's on the very same crop pixels as
`browser.check_probabilities_match` says (within 1e-4 for a float model; for an int8 one the same class
and one output step per rounding layer, since the two runtimes' int8 kernels round differently). It
must open on the model whose macro F1 on real faces is higher and show each model's scores beside the
majority baseline and chance. Reads what `make book` built (`_build/html`, or FER_BOOK_BUILD); no network.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser import (
    DEMO_PAGE,
    FAKE_CAMERA_SIDE,
    camera_chromium,
    check_probabilities_match,
    js_fixed,
    median_times,
    probability_sum_tolerance,
    serve,
    wait_for,
)

from fer_book.demo_page import DEMO_INDEX, DEMO_SLOT_FILES, DEMO_STATIC_DIR, OPENS
from fer_utils.assets import london_faces_dir, ravdess_clip_path
from fer_utils.registry import PAGE_MODEL_FILE, PAGE_MODEL_INFO

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build"))
HTML, SHOTS = BUILD / "html", BUILD / "screenshots"
PAGE_BUDGET_BYTES = 15 * 1024 * 1024


def require_demo() -> Path:
    """The built demo page, or a failure saying how to build it."""
    page = HTML / DEMO_PAGE
    if not page.is_file():
        pytest.fail(f"{page} is missing: run `make book` first (this test checks its output)")
    return page


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The built book on a local HTTP server (127.0.0.1); yields its base URL."""
    require_demo()
    with serve(HTML) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless chromium whose camera is the real RAVDESS clip (fake device)."""
    with camera_chromium(tmp_path_factory.mktemp("camera")) as driver:
        yield driver


def python_probabilities(
    crop: list[int], shape: list[int], model_file: str = PAGE_MODEL_FILE, tta: str = "none"
) -> np.ndarray:
    """The Python TFLite interpreter's probabilities for the page's own crop and model file, over the model's
    test-time augmentation as the page averages it (`evaluate.metrics.tta_probabilities`)."""
    from fer_utils.deploy.tflite import tflite_predict
    from fer_utils.evaluate.metrics import tta_probabilities

    model = (HTML / DEMO_STATIC_DIR / model_file).read_bytes()
    image = np.asarray(crop, dtype=np.float32).reshape(1, *shape)
    return tta_probabilities(lambda views: tflite_predict(model, views), image, tta)[0]


@pytest.fixture(scope="module")
def camera_run(server: str, browser: object) -> dict:
    """Open the page with `?camera` (it starts the fake camera itself) and let it run some frames."""
    browser.get_log("browser")
    browser.get(f"{server}/{DEMO_PAGE}?camera")
    wait_for(browser, "window.ferDemo && window.ferDemo.ready")
    wait_for(browser, "window.ferDemo.timings.filter(t => t.face).length >= 20")
    opened = browser.execute_script(
        "return {active: window.ferDemo.active, why: document.getElementById('fer-demo-opens').innerText}"
    )
    if opened["active"] != "default":  # the checks below are the book's model's
        from selenium.webdriver.support.ui import Select

        Select(browser.find_element("id", "fer-demo-choice")).select_by_value("default")
    wait_for(browser, "window.ferDemo.timings.filter(t => t.face && t.model === 'default').length >= 20")
    wait_for(browser, "window.ferDemo.lastModel === 'default'")
    snapshot = browser.execute_script(
        "const s = window.ferDemo; return {box: s.lastBox, crop: s.lastCrop, probs: s.lastProbs, label: s.lastLabel,"
        " shape: s.inputShape, classes: s.classes, timings: s.timings, error: s.error,"
        " about: document.getElementById('fer-demo-model').innerText,"
        " status: document.getElementById('fer-demo-status').textContent,"
        " bytes: performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        "   .reduce((n, e) => n + (e.encodedBodySize || 0), 0),"
        " largest: performance.getEntriesByType('resource').sort((a, b) => b.encodedBodySize - a.encodedBodySize)"
        "   .slice(0, 6).map(e => [e.name.replace(location.origin, ''), e.encodedBodySize]),"
        " foreign: performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith(location.origin))}"
    )
    snapshot["log"], snapshot["opened"] = browser.get_log("browser"), opened
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "demo.png"))
    return snapshot


def test_a_face_box_and_a_prediction_appear(camera_run: dict) -> None:
    box, info = camera_run["box"], json.loads((HTML / DEMO_STATIC_DIR / PAGE_MODEL_INFO).read_text())
    assert camera_run["error"] is None
    assert camera_run["classes"] == info["classes"] and camera_run["label"] in info["classes"]
    # The RAVDESS actor's face fills the middle of the 360x360 frame.
    assert 0.15 * FAKE_CAMERA_SIDE < box["w"] < 0.9 * FAKE_CAMERA_SIDE
    assert 0 <= box["x"] < FAKE_CAMERA_SIDE / 2 < box["x"] + box["w"] <= FAKE_CAMERA_SIDE * 1.05
    assert box["score"] >= 0.5
    assert "face found" in camera_run["status"]
    assert (SHOTS / "demo.png").stat().st_size > 10_000


def test_the_browser_face_box_agrees_with_dlib_on_the_clip(camera_run: dict) -> None:
    """BlazeFace in the browser and the book's dlib HOG detector find the same face (the actor barely moves)."""
    import cv2

    from fer_utils.faces.crops import make_detector

    capture = cv2.VideoCapture(str(ravdess_clip_path()))
    ok, frame = capture.read()
    capture.release()
    assert ok
    small = cv2.resize(frame, (FAKE_CAMERA_SIDE, FAKE_CAMERA_SIDE), interpolation=cv2.INTER_AREA)
    dlib_box = make_detector("dlib-hog", max_side=None).detect(small)[0]
    box = camera_run["box"]
    centre = np.array([box["x"] + box["w"] / 2, box["y"] + box["h"] / 2])
    dlib_centre = np.array([dlib_box.x + dlib_box.w / 2, dlib_box.y + dlib_box.h / 2])
    assert np.abs(centre - dlib_centre).max() < 0.15 * dlib_box.w, (box, dlib_box)
    assert 0.8 < box["w"] / dlib_box.w < 1.4, (box, dlib_box)


def test_browser_probabilities_match_python_tflite_on_the_same_crop(camera_run: dict) -> None:
    shape, crop, probs = camera_run["shape"], camera_run["crop"], np.asarray(camera_run["probs"])
    assert len(crop) == shape[0] * shape[1] and np.std(crop) > 0, "the crop is a real gray image"
    info = json.loads((HTML / DEMO_STATIC_DIR / PAGE_MODEL_INFO).read_text())
    expected = python_probabilities(crop, shape, tta=info.get("tta", "none"))  # the pretrained model's: flip
    assert probs.shape == expected.shape
    model_bytes = (HTML / DEMO_STATIC_DIR / PAGE_MODEL_FILE).read_bytes()
    print(check_probabilities_match(info, model_bytes, probs, expected))
    assert abs(probs.sum() - 1) <= probability_sum_tolerance(info), probs  # an int8 default rounds its output


def test_the_page_opens_on_the_pretrained_model_with_its_card_beside_the_baselines(camera_run: dict) -> None:
    """The built page opens on the package's pretrained model (its file, byte for byte converted from the shipped
    one), says so, and shows its card line and its real-face scores beside the baselines."""
    from fer_utils.deploy.pretrained import pretrained_card

    static = HTML / DEMO_STATIC_DIR
    index = json.loads((static / DEMO_INDEX).read_text())
    infos = {entry["slot"]: json.loads((static / entry["info"]).read_text()) for entry in index["models"]}
    assert (index["opens"], index["why"]) == OPENS
    assert camera_run["opened"] == {"active": "default", "why": f"The page {OPENS[1]}."}
    default, about = infos["default"], camera_run["about"]
    card = pretrained_card()
    assert default["source"] == "model.keras" and default["classes"] == card["classes"]
    assert default["tta"] == card["tta"] and default["card"] in about and card["name"] in about
    if default.get("accuracy") is not None:
        assert f"Accuracy: {js_fixed(default['accuracy'])}" in about
    if default.get("accuracy_std") is not None and default.get("seeds", 1) > 1:
        assert f"± {js_fixed(default['accuracy_std'])}, the mean over {default['seeds']} seeds" in about
    if default.get("macro_f1") is not None:
        assert f"macro F1 {js_fixed(default['macro_f1'])}" in about
    if default.get("majority_baseline") is not None:
        assert f"always answering the commonest expression scores {js_fixed(default['majority_baseline'])}" in about
    assert f"chance {js_fixed(default.get('chance', 1 / len(default['classes'])))}" in about


def test_the_page_rounds_as_the_tests_expect(browser: object) -> None:
    """The page writes fractions with JavaScript's toFixed, which rounds 1/8 up; the checks above expect it
    (they failed whenever the page's default model had eight classes: Python's format gives 0.12)."""
    for value in (0.125, 0.145, 1 / 7, 0.375, 0.005):
        assert browser.execute_script(f"return ({value!r}).toFixed(2)") == js_fixed(value), value


def test_no_console_errors_and_nothing_from_elsewhere(camera_run: dict) -> None:
    severe = [entry for entry in camera_run["log"] if entry["level"] == "SEVERE"]
    assert not severe, severe
    ours = [
        entry
        for entry in camera_run["log"]
        if entry["level"] != "DEBUG" and re.match(r"\S+/demo-assets/demo\.js", entry["message"])
    ]
    assert not ours, ours
    assert camera_run["foreign"] == [], "the page fetched something from another origin"


def test_page_size_and_per_frame_time_are_measured(camera_run: dict) -> None:
    times = median_times(camera_run["timings"], "default")
    record = {"page_bytes": camera_run["bytes"], "largest": camera_run["largest"], **times}
    (SHOTS / "demo_timings.json").write_text(json.dumps(record, indent=1) + "\n")
    print(record)
    assert 0 < times["median_emotion_ms"] <= times["median_total_ms"]
    assert 0 < camera_run["bytes"] <= PAGE_BUDGET_BYTES


def test_the_peer_predicts_on_the_camera_face_and_says_what_it_learned_from(server: str, browser: object) -> None:
    """Switched to the peer (fer's mini-Xception), the page crops 64x64, predicts its seven classes as the
    Python interpreter does on the same crop, and names its data, licence and chance."""
    from selenium.webdriver.support.ui import Select

    from fer_utils.models.peer import PEER_ABOUT, PEER_CLASSES

    browser.get(f"{server}/{DEMO_PAGE}?camera")
    wait_for(browser, "window.ferDemo && window.ferDemo.ready")
    Select(browser.find_element("id", "fer-demo-choice")).select_by_value("peer")
    wait_for(browser, "window.ferDemo.timings.filter(t => t.face && t.model === 'peer').length >= 10")
    state = browser.execute_script(
        "const s = window.ferDemo; return {model: s.lastModel, crop: s.lastCrop, shape: s.inputShape,"
        " probs: s.lastProbs, classes: s.classes, error: s.error,"
        " about: document.getElementById('fer-demo-model').innerText}"
    )
    assert state["error"] is None and state["model"] == "peer" and state["classes"] == list(PEER_CLASSES)
    expected = python_probabilities(state["crop"], state["shape"], DEMO_SLOT_FILES["peer"][0])
    peer_info = json.loads((HTML / DEMO_STATIC_DIR / DEMO_SLOT_FILES["peer"][1]).read_text())
    peer_bytes = (HTML / DEMO_STATIC_DIR / DEMO_SLOT_FILES["peer"][0]).read_bytes()
    check_probabilities_match(peer_info, peer_bytes, state["probs"], expected)
    assert PEER_ABOUT["trained_on"] in state["about"] and "chance 0.14 (7 classes)" in state["about"]
    if peer_info.get("macro_f1") is not None:  # one fixed network: one value, no spread
        accuracy, macro_f1 = js_fixed(peer_info["accuracy"]), js_fixed(peer_info["macro_f1"])
        assert f"Accuracy: {accuracy} (macro F1 {macro_f1})" in state["about"]
    wait_for(browser, "window.ferDemo.timings.filter(t => t.face && t.model === 'peer').length >= 20")
    times = median_times(browser.execute_script("return window.ferDemo.timings"), "peer")
    SHOTS.mkdir(parents=True, exist_ok=True)  # the peer's figures on the built page, beside the default's
    (SHOTS / "demo_timings_peer.json").write_text(json.dumps(times, indent=1) + "\n")
    assert 0 < times["median_emotion_ms"] <= times["median_total_ms"]


def test_a_chosen_image_file_is_predicted(server: str, browser: object) -> None:
    image = sorted(london_faces_dir().rglob("*.jpg"))[0]
    browser.get(f"{server}/{DEMO_PAGE}")
    wait_for(browser, "window.ferDemo && window.ferDemo.ready")
    browser.find_element("id", "fer-demo-file").send_keys(str(image))
    wait_for(browser, "window.ferDemo.lastProbs && window.ferDemo.source instanceof HTMLImageElement")
    assert browser.execute_script("return window.ferDemo.error") is None


def test_a_readers_own_model_with_its_classes_replaces_the_default(server: str, browser: object) -> None:
    browser.get(f"{server}/{DEMO_PAGE}")
    wait_for(browser, "window.ferDemo && window.ferDemo.ready")
    classes = json.loads((HTML / DEMO_STATIC_DIR / PAGE_MODEL_INFO).read_text())["classes"]
    renamed = [f"mine-{name}" for name in classes]
    browser.find_element("id", "fer-demo-model-file").send_keys(str(HTML / DEMO_STATIC_DIR / PAGE_MODEL_FILE))
    browser.find_element("id", "fer-demo-classes").send_keys(", ".join(renamed))
    browser.find_element("id", "fer-demo-load-model").click()
    wait_for(browser, f"window.ferDemo.classes[0] === {json.dumps(renamed[0])}")
    browser.find_element("id", "fer-demo-classes").clear()
    browser.find_element("id", "fer-demo-classes").send_keys("only-one")
    browser.find_element("id", "fer-demo-load-model").click()
    message = wait_for(browser, "window.ferDemo.error")
    assert "class names" in message


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained through the CLI (`train --recipe wild`, 1 epoch on real-face toy crops at 48 px) and
    exported for the page in one command (`export --mode int8`): the run's `page/` folder."""
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from toy_data import make_toy_crops

    from fer_utils.cli import main

    root = tmp_path_factory.mktemp("cli_run")
    make_toy_crops(root / "crops", size=48)
    assert main(["train", "--crops", str(root / "crops"), "--out", str(root / "run"), "--recipe", "wild"]
                + ["--epochs", "1"]) == 0  # fmt: skip
    assert main(["export", "--run", str(root / "run"), "--mode", "int8"]) == 0
    return root / "run" / "page"


def test_a_cli_run_exported_in_one_command_predicts_in_the_page_as_in_python(
    server: str, browser: object, exported_run: Path
) -> None:
    """`python -m fer_utils export --run RUN` writes what the page's "Use your own model"
    reads; the page loads the two files, predicts a face with the run's own classes and crop, and its int8
    probabilities match Python's TFLite interpreter on the page's own crop."""
    from fer_utils.deploy.tflite import PAGE_MODEL_FILE, PAGE_MODEL_INFO, tflite_predict

    info = json.loads((exported_run / PAGE_MODEL_INFO).read_text())
    browser.get(f"{server}/{DEMO_PAGE}")
    wait_for(browser, "window.ferDemo && window.ferDemo.ready")
    browser.find_element("id", "fer-demo-model-file").send_keys(str(exported_run / PAGE_MODEL_FILE))
    browser.find_element("id", "fer-demo-sidecar").send_keys(str(exported_run / PAGE_MODEL_INFO))
    browser.find_element("id", "fer-demo-load-model").click()
    wait_for(
        browser, f"window.ferDemo.active === 'own' && window.ferDemo.classes[0] === {json.dumps(info['classes'][0])}"
    )
    image = sorted(london_faces_dir().rglob("*.jpg"))[0]
    browser.find_element("id", "fer-demo-file").send_keys(str(image))
    wait_for(browser, "window.ferDemo.lastProbs && window.ferDemo.lastModel === 'own'")
    state = browser.execute_script(
        "const s = window.ferDemo; return {crop: s.lastCrop, probs: s.lastProbs, shape: s.inputShape,"
        " classes: s.classes, error: s.error}"
    )
    assert state["error"] is None and state["classes"] == info["classes"]
    assert list(state["shape"]) == info["input_shape"] == [info["crop"]["side"]] * 2 + [1]
    model = (exported_run / PAGE_MODEL_FILE).read_bytes()
    python = tflite_predict(model, np.asarray(state["crop"], dtype=np.float32).reshape(1, *info["input_shape"]))[0]
    check_probabilities_match(info, model, state["probs"], python)
