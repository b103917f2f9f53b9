"""The live demo page of the built book (book/demo.md) in headless chromium, on a fake camera.

Chromium's fake capture device plays a Y4M file made here from the real RAVDESS clip shipped in the
package. The page must find the face, draw it, and predict; the class probabilities the browser
computed for a crop must match the Python TFLite interpreter's on the very same crop pixels within
`browser.probability_match_tolerance` (1e-4 for a float model, two output steps for an int8 one). Reads what `make book` built (`_build/html`, or FER_BOOK_BUILD); no network.
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
    FAKE_CAMERA_SIDE,
    camera_chromium,
    median_times,
    probability_match_tolerance,
    probability_sum_tolerance,
    serve,
    wait_for,
)

from fer_book.demo import DEMO_MODEL_FILE, DEMO_MODEL_INFO, DEMO_SLOT_FILES, DEMO_STATIC_DIR
from fer_utils.assets import london_faces_dir, ravdess_clip_path

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build"))
HTML, SHOTS = BUILD / "html", BUILD / "screenshots"
PAGE = "book/demo.html"
PAGE_BUDGET_BYTES = 15 * 1024 * 1024


def require_demo() -> Path:
    """The built demo page, or a failure saying how to build it."""
    page = HTML / PAGE
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


def python_probabilities(crop: list[int], shape: list[int], model_file: str = DEMO_MODEL_FILE) -> np.ndarray:
    """The Python TFLite interpreter's probabilities for the page's own crop and model file."""
    from fer_utils.deploy import tflite_predict

    model = (HTML / DEMO_STATIC_DIR / model_file).read_bytes()
    image = np.asarray(crop, dtype=np.float32).reshape(1, *shape)
    return tflite_predict(model, image)[0]


@pytest.fixture(scope="module")
def camera_run(server: str, browser: object) -> dict:
    """Open the page with `?camera` (it starts the fake camera itself) and let it run some frames."""
    browser.get_log("browser")
    browser.get(f"{server}/{PAGE}?camera")
    wait_for(browser, "window.ferDemo && window.ferDemo.ready")
    wait_for(browser, "window.ferDemo.timings.filter(t => t.face).length >= 20")
    snapshot = browser.execute_script(
        "const s = window.ferDemo; return {box: s.lastBox, crop: s.lastCrop, probs: s.lastProbs, label: s.lastLabel,"
        " shape: s.inputShape, classes: s.classes, timings: s.timings, error: s.error,"
        " status: document.getElementById('fer-demo-status').textContent,"
        " bytes: performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        "   .reduce((n, e) => n + (e.encodedBodySize || 0), 0),"
        " largest: performance.getEntriesByType('resource').sort((a, b) => b.encodedBodySize - a.encodedBodySize)"
        "   .slice(0, 6).map(e => [e.name.replace(location.origin, ''), e.encodedBodySize]),"
        " foreign: performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith(location.origin))}"
    )
    snapshot["log"] = browser.get_log("browser")
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "demo.png"))
    return snapshot


def test_a_face_box_and_a_prediction_appear(camera_run: dict) -> None:
    box, info = camera_run["box"], json.loads((HTML / DEMO_STATIC_DIR / DEMO_MODEL_INFO).read_text())
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

    from fer_utils.faces import make_detector

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
    expected = python_probabilities(crop, shape)
    assert probs.shape == expected.shape
    info = json.loads((HTML / DEMO_STATIC_DIR / DEMO_MODEL_INFO).read_text())
    assert np.abs(probs - expected).max() <= probability_match_tolerance(info), (probs, expected)
    assert abs(probs.sum() - 1) <= probability_sum_tolerance(info), probs  # an int8 default rounds its output


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

    from fer_utils.peer import PEER_ABOUT, PEER_CLASSES

    browser.get(f"{server}/{PAGE}?camera")
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
    assert np.abs(np.asarray(state["probs"]) - expected).max() <= probability_match_tolerance(peer_info)
    assert PEER_ABOUT["trained_on"] in state["about"] and "chance 14 %" in state["about"]
    wait_for(browser, "window.ferDemo.timings.filter(t => t.face && t.model === 'peer').length >= 20")
    times = median_times(browser.execute_script("return window.ferDemo.timings"), "peer")
    SHOTS.mkdir(parents=True, exist_ok=True)  # the peer's figures on the built page, beside the default's
    (SHOTS / "demo_timings_peer.json").write_text(json.dumps(times, indent=1) + "\n")
    assert 0 < times["median_emotion_ms"] <= times["median_total_ms"]


def test_a_chosen_image_file_is_predicted(server: str, browser: object) -> None:
    image = sorted(london_faces_dir().rglob("*.jpg"))[0]
    browser.get(f"{server}/{PAGE}")
    wait_for(browser, "window.ferDemo && window.ferDemo.ready")
    browser.find_element("id", "fer-demo-file").send_keys(str(image))
    wait_for(browser, "window.ferDemo.lastProbs && window.ferDemo.source instanceof HTMLImageElement")
    assert browser.execute_script("return window.ferDemo.error") is None


def test_a_readers_own_model_with_its_classes_replaces_the_default(server: str, browser: object) -> None:
    browser.get(f"{server}/{PAGE}")
    wait_for(browser, "window.ferDemo && window.ferDemo.ready")
    classes = json.loads((HTML / DEMO_STATIC_DIR / DEMO_MODEL_INFO).read_text())["classes"]
    renamed = [f"mine-{name}" for name in classes]
    browser.find_element("id", "fer-demo-model-file").send_keys(str(HTML / DEMO_STATIC_DIR / DEMO_MODEL_FILE))
    browser.find_element("id", "fer-demo-classes").send_keys(", ".join(renamed))
    browser.find_element("id", "fer-demo-load-model").click()
    wait_for(browser, f"window.ferDemo.classes[0] === {json.dumps(renamed[0])}")
    browser.find_element("id", "fer-demo-classes").clear()
    browser.find_element("id", "fer-demo-classes").send_keys("only-one")
    browser.find_element("id", "fer-demo-load-model").click()
    message = wait_for(browser, "window.ferDemo.error")
    assert "class names" in message
