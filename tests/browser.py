"""What the browser checks share: the built book on a local HTTP server, and Debian's headless chromium."""

from __future__ import annotations

import decimal
import functools
import http.server
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

# The page's crop (book/_demo/crop.js) on items [(image URL, box)] with a crop spec, and its gray resize, for Python
# to compare with its own.
CROP_PAGE = """<!doctype html><html><body><script type="module">
import {frameCrop, resizeGray} from './crop.js';
window.resizeGray = (pixels, n, side) => Array.from(resizeGray(Uint8Array.from(pixels), n, side));
window.cropFrames = async (items, spec) => {
  const out = [];
  for (const [name, box] of items) {
    const image = new Image();
    image.src = name;
    await image.decode();
    const canvas = document.createElement('canvas');
    out.push(Array.from(frameCrop(image, image.naturalWidth, image.naturalHeight, box, spec, canvas)));
  }
  return out;
};
window.ready = true;
</script></body></html>"""
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Headless, no first-run UI, and none of the background connections this machine's closed network refuses.
BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """`folder` on a local HTTP server on 127.0.0.1; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@contextmanager
def chromium(*flags: str, window: str = "1280,1600") -> Iterator[object]:
    """Debian's headless chromium through its own chromedriver, with a fresh profile, console logging
    and `flags` added (e.g. a fake camera)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.is_file():
            pytest.fail(f"{binary} is missing: apt-get install chromium chromium-driver (see README)")
    profile = tempfile.mkdtemp(prefix="fer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BASE_FLAGS, f"--user-data-dir={profile}", f"--window-size={window}", *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def write_y4m(clip: Path, target: Path, side: int, frames: int) -> Path:
    """A Y4M (YUV4MPEG2, 4:2:0) file of the clip's first `frames` frames at side x side, for chromium."""
    import cv2

    capture = cv2.VideoCapture(str(clip))
    with target.open("wb") as out:
        out.write(f"YUV4MPEG2 W{side} H{side} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            ok, frame = capture.read()
            if not ok:
                break
            small = cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA)
            out.write(b"FRAME\n" + cv2.cvtColor(small, cv2.COLOR_BGR2YUV_I420).tobytes())
    capture.release()
    return target


DEMO_PAGE = "book/demo.html"  # the live page, in the built site
FAKE_CAMERA_SIDE = 360  # the real RAVDESS clip is 720x720; half size keeps the Y4M small
FAKE_CAMERA_FRAMES = 60


@contextmanager
def camera_chromium(folder: Path) -> Iterator[object]:
    """Headless chromium whose camera (fake device) plays the real RAVDESS clip, written as a Y4M in `folder`."""
    from fer_utils.assets import ravdess_clip_path

    y4m = write_y4m(ravdess_clip_path(), folder / "ravdess.y4m", FAKE_CAMERA_SIDE, FAKE_CAMERA_FRAMES)
    with chromium(
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
        "--autoplay-policy=no-user-gesture-required",
        window="1280,1400",
    ) as driver:
        yield driver


def js_fixed(value: float, digits: int = 2) -> str:
    """`value.toFixed(digits)` as the page's JavaScript writes it: the exact binary value rounded half up
    (0.125 → "0.13", where Python's format gives "0.12")."""
    step = decimal.Decimal(1).scaleb(-digits)
    return str(decimal.Decimal(value).quantize(step, rounding=decimal.ROUND_HALF_UP))


def wait_for(driver: object, script: str, timeout: float = 120) -> object:
    """Poll `return <script>` until it is truthy; fail with the demo page's state if it never is."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: d.execute_script(f"return {script}"))
    except TimeoutException:
        state = driver.execute_script(
            "return {error: window.ferDemo?.error, frames: window.ferDemo?.frames, active: window.ferDemo?.active}"
        )
        pytest.fail(f"timed out waiting for {script}; page state {state}; log {driver.get_log('browser')}")


# Operators of an int8 TFLite graph that move or select int8 values without computing new ones (and the
# delegate nodes that stand for other operators): they round nothing, so two runtimes cannot differ there.
EXACT_INT8_OPS = frozenset({"RESHAPE", "SQUEEZE", "MAX_POOL_2D", "PAD", "TRANSPOSE", "DELEGATE"})
FLOAT_TOLERANCE = 1e-4  # a float model: the runtimes sum in another order, nothing more


def rounding_operators(model_bytes: bytes) -> list[str]:
    """The operators of an int8 .tflite that round a computed value to their output's uint8/int8 grid:
    every operator but those in EXACT_INT8_OPS and the QUANTIZE that only shifts the zero point (same
    scale in and out, as uint8 ↔ int8 at the model's ends). XNNPACK in wasm (LiteRT.js) and TFLite's own
    kernels requantize each of them with different arithmetic, so each may end a step apart."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=model_bytes, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    scales = {t["index"]: t["quantization"][0] for t in interpreter.get_tensor_details()}
    rounding = []
    for op in interpreter._get_ops_details():  # the public API has no list of operators
        name = op["op_name"]
        shift = name == "QUANTIZE" and scales[op["inputs"][0]] == scales[op["outputs"][0]]
        if name not in EXACT_INT8_OPS and not shift:
            rounding.append(name)
    return rounding


def probability_match_tolerance(info: dict, model_bytes: bytes) -> float:
    """How far the page's probabilities may differ from Python's TFLite interpreter on the same crop, from
    the model JSON and its .tflite: FLOAT_TOLERANCE for a float output; for an int8 model one step of its
    uint8 output (the JSON's output scale) per rounding operator (`rounding_operators`): each of them may
    round a step apart in the two runtimes, and the difference is carried through the layers after it
    (measured on two trained models in tests/test_demo_models.py)."""
    quantization = info.get("output_quantization")
    return quantization[0] * len(rounding_operators(model_bytes)) if quantization else FLOAT_TOLERANCE


def check_probabilities_match(info: dict, model_bytes: bytes, page: object, python: object) -> dict:
    """Assert what is stable across runtimes for the page's and Python's probabilities of the same crops
    (one row per crop): every difference within `probability_match_tolerance`, and the same predicted
    class wherever Python's top two are further apart than that tolerance. Returns the measurements."""
    page, python = np.atleast_2d(np.asarray(page, dtype=float)), np.atleast_2d(np.asarray(python, dtype=float))
    assert page.shape == python.shape, (page.shape, python.shape)
    tolerance = probability_match_tolerance(info, model_bytes)
    difference = np.abs(page - python)
    top_two = np.sort(python, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > tolerance
    same = page.argmax(axis=1) == python.argmax(axis=1)
    assert difference.max() <= tolerance, (difference.max(), tolerance, page, python)
    assert same[decided].all(), (page[decided & ~same], python[decided & ~same], tolerance)
    step = info["output_quantization"][0] if info.get("output_quantization") else None
    return {
        "crops": len(page),
        "tolerance": tolerance,
        "max_difference": float(difference.max()),
        "max_difference_steps": round(float(difference.max()) / step, 2) if step else None,
        "same_class": int(same.sum()),
        "decided_crops": int(decided.sum()),
    }


def probability_sum_tolerance(info: dict) -> float:
    """How far a demo model's probabilities may sum from 1, from its model JSON: 1e-3 for a float output;
    an int8 model's uint8 output rounds each probability to a multiple of its scale, so the sum is within
    (classes × scale / 2) of 1."""
    quantization = info.get("output_quantization")
    return len(info["classes"]) * quantization[0] / 2 if quantization else 1e-3


WARM_UP = 5  # the first frames of each model warm the runtime up and are not timed


def median_times(timings: list[dict], slot: str) -> dict:
    """The page's median milliseconds per frame with a face for model `slot` (emotion alone, and face
    detection plus emotion), from `window.ferDemo.timings`, after the first WARM_UP frames."""
    faces = [t for t in timings if t["face"] and t["model"] == slot][WARM_UP:]
    return {
        "frames": len(faces),
        "median_emotion_ms": round(float(np.median([t["emotion"] for t in faces])), 2),
        "median_total_ms": round(float(np.median([t["total"] for t in faces])), 2),
    }
