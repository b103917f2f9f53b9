"""The live demo page puts reader- and model-supplied text in as text, never HTML.

A model whose class names, `trained_on` and licence hold markup that runs script when parsed as HTML,
and a reader's own `.tflite` whose *file name* holds such markup, are loaded in headless chromium; the
script must never run (`window.__pwned` stays undefined) and the text must show literally. The page is
the demo folder `fer_book.demo_page.write_demo_static` assembles plus the HTML of `book/demo.md`: no `make book`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from browser import chromium, serve

from fer_book.demo_page import DEMO_STATIC_DIR, write_demo_static
from fer_utils.assets import london_faces_dir
from fer_utils.book.artifacts import default_cache
from fer_utils.registry import PAGE_MODEL_FILE

REPO = Path(__file__).resolve().parents[1]
HOSTILE_CLASS = '<img src=x onerror="window.__pwned=1">'
HOSTILE_ABOUT = {
    "trained_on": '<img src=y onerror="window.__pwned=2">',
    "license": "<script>window.__pwned=3</script>",
    "chosen_on": '<img src=v onerror="window.__pwned=6">',
    "evaluated_on": '<img src=u onerror="window.__pwned=7">',
    "accuracy": 0.5,
}
HOSTILE_FILE = "<img src=z onerror=window.__pwned=4>.tflite"
HOSTILE_SIDECAR = ['<img src=w onerror="window.__pwned=5">', "<b>bold</b>"]


def demo_html() -> str:
    """The page's own HTML elements, as written in book/demo.md (the lines that are raw HTML)."""
    lines = (REPO / "book" / "demo.md").read_text().splitlines()
    return "\n".join(line for line in lines if line.lstrip().startswith("<"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site with book/demo.html and demo-assets/ whose model has a hostile class name and description."""
    import keras

    from fer_utils.models.networks import build_paper_cnn, save_model

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("site")
    model = save_model(
        build_paper_cnn(num_classes=2, input_shape=(48, 48, 1)), root / "run" / "model.keras", [HOSTILE_CLASS, "happy"]
    )
    write_demo_static(root / "html" / DEMO_STATIC_DIR, default_cache(), model, HOSTILE_ABOUT, REPO)
    (root / "html" / "book").mkdir()
    (root / "html" / "book" / "demo.html").write_text(f"<!doctype html><html><body>{demo_html()}</body></html>")
    return root


def test_hostile_names_show_as_text_and_run_no_script(site: Path, tmp_path: Path) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(script: str) -> object:
        try:
            return WebDriverWait(driver, 90, 0.25).until(lambda d: d.execute_script(f"return {script}"))
        except TimeoutException:
            state = driver.execute_script(
                "return {error: window.ferDemo?.error, classes: window.ferDemo?.classes,"
                " files: document.getElementById('fer-demo-model-file').files.length}"
            )
            pytest.fail(f"timed out waiting for {script}; page state {state}; log {driver.get_log('browser')}")

    own_model = tmp_path / HOSTILE_FILE
    shutil.copy(site / "html" / DEMO_STATIC_DIR / PAGE_MODEL_FILE, own_model)
    sidecar = tmp_path / "classes.json"
    sidecar.write_text(json.dumps(HOSTILE_SIDECAR))
    face, other_face = sorted(london_faces_dir().rglob("*.jpg"))[:2]  # a second file: the same one fires no change
    with serve(site / "html") as url, chromium() as driver:
        driver.get(f"{url}/book/demo.html")
        wait("window.ferDemo && (window.ferDemo.ready || window.ferDemo.error)")
        assert driver.execute_script("return window.ferDemo.error") is None
        described = driver.find_element("id", "fer-demo-model").text
        for text in (HOSTILE_CLASS, *(value for value in HOSTILE_ABOUT.values() if isinstance(value, str))):
            assert text in described
        driver.find_element("id", "fer-demo-file").send_keys(str(face))
        wait("window.ferDemo.lastProbs")
        assert HOSTILE_CLASS in driver.find_element("id", "fer-demo-probs").text
        driver.find_element("id", "fer-demo-model-file").send_keys(str(own_model))
        driver.find_element("id", "fer-demo-sidecar").send_keys(str(sidecar))
        driver.find_element("id", "fer-demo-load-model").click()
        wait(f"window.ferDemo.classes[0] === {json.dumps(HOSTILE_SIDECAR[0])} || window.ferDemo.error")
        assert driver.execute_script("return window.ferDemo.error") is None
        driver.find_element("id", "fer-demo-file").send_keys(str(other_face))
        wait(f"document.getElementById('fer-demo-probs').textContent.includes({json.dumps(HOSTILE_SIDECAR[1])})")
        described = driver.find_element("id", "fer-demo-model").text
        assert HOSTILE_FILE in described and all(name in described for name in HOSTILE_SIDECAR)
        page = driver.execute_script(
            "return {pwned: window.__pwned, images: document.querySelectorAll('#fer-demo img').length,"
            " bold: document.querySelectorAll('#fer-demo-probs b').length}"
        )
        assert page == {"pwned": None, "images": 0, "bold": 0}
