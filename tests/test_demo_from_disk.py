"""The live demo page opened from disk (file://) says at once how to serve it.

A browser refuses the page's ES modules and model files from file://, so the page used to say "loading the
runtime and the models…" forever. `book/_demo/from_disk.js`, a classic script, replaces that line with the
command that serves the built book; `demo.js`, where a browser does load it from disk, leaves that line
alone. The page is `book/demo.md` rendered by markdown-it (the parser MyST builds on) beside the page's own
code from `book/_demo`, in headless chromium; no `make book`, no models (over HTTP the page fails on its
missing models, which is what tells its status apart from the hint).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser import chromium, serve, wait_for

from fer_book.demo_page import DEMO_SOURCE_DIR, DEMO_STATIC_DIR

REPO = Path(__file__).resolve().parents[1]
STATUS = "document.getElementById('fer-demo-status').textContent"
LOADING = "loading the runtime and the models"
SERVE_URL = "http://localhost:8000/book/demo.html"
# Stands in for the vendored LiteRT.js, so that demo.js loads: the page then fails on its missing models.
STUB_RUNTIME = """export async function loadLiteRt() { throw new Error('no runtime in this test'); }
export async function loadAndCompile() { throw new Error('no runtime in this test'); }
export class Tensor {}
"""


def build_page(site: Path) -> Path:
    """`site/book/demo.html` from book/demo.md and `site/demo-assets/` from book/_demo, as a build lays them out."""
    from markdown_it import MarkdownIt

    page = site / "book" / "demo.html"
    page.parent.mkdir(parents=True)
    body = MarkdownIt("commonmark").render((REPO / "book" / "demo.md").read_text())
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}</body></html>')
    shutil.copytree(REPO / DEMO_SOURCE_DIR, site / DEMO_STATIC_DIR)
    runtime = site / DEMO_STATIC_DIR / "litert" / "index.js"  # what demo.js imports; a build vendors LiteRT.js
    runtime.parent.mkdir()
    runtime.write_text(STUB_RUNTIME)
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder holding the demo page and its code (a stub runtime, no models)."""
    root = tmp_path_factory.mktemp("site")
    build_page(root)
    return root


def test_opened_from_disk_the_page_says_how_to_serve_it(site: Path) -> None:
    with chromium() as driver:
        driver.get((site / "book" / "demo.html").as_uri())
        status = wait_for(driver, f"!{STATUS}.includes({LOADING!r}) && {STATUS}", timeout=10)
    assert "opened from disk" in status
    assert f'python -m http.server --directory "{site}" 8000' in status, status
    assert SERVE_URL in status


def test_demo_js_loaded_from_disk_leaves_the_hint(site: Path) -> None:
    """Where a browser does run the module from disk (chromium told to allow file access), it must not replace
    the hint with a fetch error."""
    with chromium("--allow-file-access-from-files") as driver:
        driver.get((site / "book" / "demo.html").as_uri())
        error = wait_for(driver, "window.ferDemo && window.ferDemo.error", timeout=20)
        status = driver.execute_script(f"return {STATUS}")
    assert "file://" in error
    assert SERVE_URL in status, status


def test_served_over_http_the_page_shows_no_hint(site: Path) -> None:
    with serve(site) as url, chromium() as driver:
        driver.get(f"{url}/book/demo.html")
        status = wait_for(driver, f"!{STATUS}.includes({LOADING!r}) && {STATUS}", timeout=20)
    assert status.startswith("error:") and "http.server" not in status, status
