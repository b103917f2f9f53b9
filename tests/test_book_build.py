"""Checks of the executed stage and the built HTML book, in a real headless browser (Debian's chromium).

These read what `make book` produced (`_build/stage`, `_build/html`); they never rebuild. Each chapter
page is opened from a local HTTP server on 127.0.0.1: it must load, show its figures, render its
widgets from the saved state, log no browser error, and leave a screenshot in `_build/screenshots/`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from browser import chromium, serve
from selenium.webdriver.support.ui import WebDriverWait

from fer_book.assign import SOLUTION_TAG
from fer_book.execute import SKIP_TAG
from fer_book.links import book_links
from fer_book.toc import toc_entries, toc_notebooks
from fer_utils.book.chapters import NO_SPREAD

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build"))
STAGE, HTML, SHOTS = BUILD / "stage", BUILD / "html", BUILD / "screenshots"
CHAPTERS = [p.with_suffix("") for p in toc_notebooks(REPO)]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def require(path: Path) -> Path:
    """`path`, or a failure telling how to make it (these tests check a finished `make book`)."""
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make book` first (these tests check its output)")
    return path


def executed(chapter: Path) -> nbformat.NotebookNode:
    """The executed notebook of a chapter from the stage."""
    return nbformat.read(require(STAGE / chapter.with_suffix(".ipynb")), as_version=4)


def widget_views(nb: nbformat.NotebookNode) -> int:
    """How many widget views the executed notebook displays."""
    return sum(WIDGET_VIEW in out.get("data", {}) for c in nb.cells if c.cell_type == "code" for out in c.outputs)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_executed_notebook_has_outputs_and_no_errors(chapter: Path) -> None:
    nb = executed(chapter)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [out for c in code for out in c.outputs if out.output_type == "error"]
    assert not errors, f"{chapter.name}: {errors[0].ename}: {errors[0].evalue}"
    # the experiments, left to the reader, unless the stage is the run of record of every cell (EVERY_CELL=1)
    every_cell = json.loads(require(STAGE / "execution_times.json").read_text()).get("every_cell", False)
    left = [] if every_cell else [c for c in code if SKIP_TAG in c.metadata.get("tags", [])]
    assert all(c.execution_count for c in code if c not in left), f"{chapter.name}: a cell was not executed"
    assert not any(c.execution_count or c.outputs for c in left), f"{chapter.name}: a cell left to the reader ran"
    assert any(out.get("data", {}).get("image/png") for c in code for out in c.outputs), "no figure"
    assert nb.metadata["papermill"]["exception"] in (None, False)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_no_table_cell_or_column_is_cut_short(chapter: Path) -> None:
    """Every table a chapter shows is whole: no cell cut to "..." and no column hidden behind one
    (pandas' defaults cut cells at 50 characters and show 20 columns; the kit's style shows them all)."""
    nb = executed(chapter)
    tables = [
        out["data"]["text/html"]
        for c in nb.cells
        if c.cell_type == "code"
        for out in c.outputs
        if 'class="dataframe' in out.get("data", {}).get("text/html", "")
    ]
    cut = [cell for html in tables for cell in re.findall(r"<t[dh][^>]*>([^<]*\.\.\.)</t[dh]>", html)]
    assert not cut, f"{chapter.name}: cells cut short: {cut[:3]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_no_table_repeats_that_one_run_has_no_spread(chapter: Path) -> None:
    """Chapter 10's tables said "(one run: no spread)" in each cell of the peer's columns (24 times);
    a table says it once (a `runs` or `seeds` column), not in its cells."""
    nb = executed(chapter)
    outputs = [out for c in nb.cells if c.cell_type == "code" for out in c.outputs]
    texts = [out.get("text", "") or out.get("data", {}).get("text/plain", "") for out in outputs]
    repeated = [text[:200] for text in texts if str(text).count(NO_SPREAD) > 1]
    assert not repeated, f"{chapter.name}: an output says {NO_SPREAD!r} more than once: {repeated[:2]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_widget_state_is_saved(chapter: Path) -> None:
    nb = executed(chapter)
    views = widget_views(nb)
    if views:
        state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        for c in nb.cells:
            for out in getattr(c, "outputs", []):
                if WIDGET_VIEW in out.get("data", {}):
                    assert out["data"][WIDGET_VIEW]["model_id"] in state, "a displayed widget has no saved state"


def test_six_chapters_or_more_have_widgets() -> None:
    with_widgets = [c.name for c in CHAPTERS if widget_views(executed(c))]
    assert len(with_widgets) >= 6, with_widgets


def test_execution_times_are_recorded() -> None:
    record = json.loads(require(STAGE / "execution_times.json").read_text())
    assert set(record["seconds"]) == {c.name + ".ipynb" for c in CHAPTERS}
    assert record["failed"] == []


def test_index_links_every_page_in_the_toc() -> None:
    index = require(HTML / "index.html").read_text()
    redirect = re.search(r'url=([^"]+)"', index)
    landing = HTML / redirect.group(1) if redirect else HTML / "index.html"
    text = landing.read_text()
    root, *pages = toc_entries(REPO)
    assert landing == HTML / f"{root}.html", "index.html opens the toc's root page"
    for entry in pages:
        target = HTML / f"{entry}.html"
        assert target.is_file(), f"{entry} was not built"
        relative = os.path.relpath(target, landing.parent)
        assert f'href="{relative}"' in text or f'href="{relative}#' in text, f"{landing.name} does not link {entry}"


LAUNCH_LINK = re.compile(r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)/[^"]+)"')


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_badges_and_launch_buttons_agree_with_the_config(chapter: Path) -> None:
    links = book_links(REPO / "_config.yml")
    page = require(HTML / chapter.with_suffix(".html")).read_text()
    notebook = chapter.with_suffix(".ipynb").as_posix()
    found = LAUNCH_LINK.findall(page)
    colab = links.colab_url(notebook)
    binder = f"https://mybinder.org/v2/gh/{links.slug}/{links.ref}?urlpath=tree/{notebook}"
    assert colab in found and binder in found, f"{chapter.name}: {found}"
    assert set(found) <= {colab, binder}, f"{chapter.name} has launch links elsewhere: {set(found) - {colab, binder}}"
    assert f'href="{links.url}"' in page, "the repository button"
    repo_name = links.slug.split("/")[1]
    others = set(re.findall(rf"https://github\.com/([\w.-]+/{re.escape(repo_name)})\b", page)) - {links.slug}
    assert not others, f"{chapter.name} links another copy of the repository: {others}"
    executed_install = "".join(executed(chapter).cells[1].source)
    assert links.install_spec in executed_install, "the staged install cell pins the book's ref"


# What a built page must never show: a number printed as NaN, and TensorFlow's or TFLite's
# runtime logs leaking into outputs. Matched in the text of the page's cell outputs (prose and code may
# speak of "a NaN loss"); "nan" as a whole word, any case.
FORBIDDEN_OUTPUT = {
    "a NaN number": re.compile(r"(?<![\w.])nan(?![\w])", re.IGNORECASE),
    "a TensorFlow warning": re.compile(r"WARNING:tensorflow"),
    "a TFLite runtime log": re.compile(r"XNNPACK"),
    "a TensorFlow or absl C++ log": re.compile(r"\b[EWIF] tensorflow/|\b[EWIF]\d{4} \d\d:\d\d:\d+\.\d+"),
    "a warning from Keras or TensorFlow": re.compile(r"site-packages/(?:keras|tensorflow)/\S+: \w*Warning"),
}


def forbidden_in_outputs(html: str) -> list[str]:
    """What of FORBIDDEN_OUTPUT the cell outputs of a built page show, each with its context."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    found = []
    for output in soup.select("div.cell_output"):
        for shown in output.select("div.highlight-python"):  # the package's code a chapter displays (fer.show)
            shown.decompose()
        text = output.get_text(" ")
        for what, pattern in FORBIDDEN_OUTPUT.items():
            found += [f"{what}: ...{text[max(0, m.start() - 60) : m.end() + 20]!r}..." for m in pattern.finditer(text)]
    return found


def test_forbidden_output_is_found_in_a_page() -> None:
    page = (
        '<div class="cell_output"><pre>gap 0.21 ± nan</pre></div>'
        '<div class="cell_output"><pre>WARNING:tensorflow:5 out of the last 5 calls</pre></div>'
        '<div class="cell_output"><pre>INFO: Created TensorFlow Lite XNNPACK delegate for CPU.</pre></div>'
        '<div class="cell_output"><table><td>NaN</td></table></div>'
        '<div class="cell_output"><pre>2026-11-23 06:15:27.381095: E tensorflow/core/framework/node_def_util.cc:680]</pre></div>'
        '<div class="cell_output"><pre>W0000 00:00:1795414541.581092   25643 tf_tfl_flatbuffer_helpers.cc:364]</pre></div>'
        '<div class="cell_output"><pre>.venv/lib/python3.11/site-packages/keras/src/models/functional.py:241: UserWarning: The structure</pre></div>'
        "<p>a NaN loss stops the run</p>"
    )
    found = forbidden_in_outputs(page)
    assert [f.split(":")[0] for f in found] == [
        "a NaN number",
        "a TensorFlow warning",
        "a TFLite runtime log",
        "a NaN number",
        "a TensorFlow or absl C++ log",
        "a TensorFlow or absl C++ log",
        "a warning from Keras or TensorFlow",
    ], found
    assert not forbidden_in_outputs('<div class="cell_output"><pre>nano 0.5, financial, TerminateOnNaN</pre></div>')
    shown = '<div class="cell_output"><div class="highlight-python"><pre>stop at a NaN loss</pre></div></div>'
    assert not forbidden_in_outputs(shown)  # code a chapter displays may speak of NaN


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_built_page_shows_no_nan_and_no_runtime_logs(chapter: Path) -> None:
    page = require(HTML / chapter.with_suffix(".html")).read_text()
    assert "cell_output" in page, f"{chapter.name}: no cell outputs in the built page"
    found = forbidden_in_outputs(page)
    assert not found, f"{chapter.name}:\n" + "\n".join(found)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_the_downloadable_notebook_holds_no_runtime_log(chapter: Path) -> None:
    """The executed .ipynb that readers download (not only the page, whose remove-output cells hide
    them) holds no TensorFlow, absl or TFLite runtime log in any output."""
    logs = {what: FORBIDDEN_OUTPUT[what] for what in ("a TensorFlow warning", "a TFLite runtime log")}
    logs["a TensorFlow or absl C++ log"] = FORBIDDEN_OUTPUT["a TensorFlow or absl C++ log"]
    found = [
        f"cell {index}: {what}"
        for index, cell in enumerate(executed(chapter).cells)
        for output in cell.get("outputs", [])
        for what, pattern in logs.items()
        if pattern.search(str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", "")))
    ]
    assert not found, f"{chapter.name}: {found}"


TABLE_CELL = re.compile(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", re.S)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_no_table_of_the_executed_chapter_cuts_a_cell_or_a_column(chapter: Path) -> None:
    """Pandas shortens a cell over 50 characters, and a table over 20 columns, to "..."; chapter 4's
    comparison with the paper lost the words that say its run is not comparable. Every table shows whole."""
    cut = [
        cell.strip()
        for c in executed(chapter).cells
        if c.cell_type == "code"
        for out in c.outputs
        for cell in TABLE_CELL.findall(out.get("data", {}).get("text/html", ""))
        if cell.strip().endswith("...")
    ]
    assert not cut, f"{chapter.name}: table cells cut short: {cut[:3]}"


SCRIPT_SRC = re.compile(r'<script\b[^>]*\bsrc="([^"]+)"[^>]*>')


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_a_page_loads_every_script_from_the_book_and_mathjax_once_where_it_has_equations(chapter: Path) -> None:
    """Regression: chapters 3-6 loaded MathJax from a CDN, which a reader offline or
    the CI's browser cannot reach. The book serves MathJax itself, deferred, only on pages with equations,
    and never twice (Jupyter Book puts every _static .js on every page: fer_book.sphinx_ext drops its copy)."""
    page = require(HTML / chapter.with_suffix(".html")).read_text()
    sources = SCRIPT_SRC.findall(page)
    assert not [src for src in sources if "://" in src], f"{chapter.name}: scripts from elsewhere"
    mathjax = [tag for tag in re.findall(r"<script\b[^>]*>", page) if "mathjax/tex-mml-chtml.js" in tag]
    has_math = 'class="math' in page
    assert len(mathjax) == int(has_math), f"{chapter.name}: {len(mathjax)} MathJax scripts, equations: {has_math}"
    assert all("defer" in tag for tag in mathjax)


def test_some_chapters_have_equations_and_widgets_on_one_page() -> None:
    """The pages the MathJax Hub shim (fer_book/mathjax_hub.js) is for exist, so the browser checks cover it."""
    both = [
        c.name
        for c in CHAPTERS
        if 'class="math' in (page := require(HTML / c.with_suffix(".html")).read_text()) and "mathjax_hub.js" in page
    ]
    assert len(both) >= 2, both


# The browser checks.
@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A local HTTP server on 127.0.0.1 serving the built book; yields its base URL."""
    with serve(require(HTML)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian chromium through its own chromedriver, with a fresh profile and console logging."""
    with chromium() as driver:
        yield driver


def open_page(driver: object, url: str) -> list[dict]:
    """Load `url`, wait until it and its widgets have rendered, return the browser log entries."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop entries of earlier pages
    driver.get(url)
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    expected = driver.execute_script(f"return document.querySelectorAll('script[type=\"{WIDGET_VIEW}\"]').length")
    if expected:
        wait.until(
            lambda d: (
                d.execute_script("return document.querySelectorAll('.widget-subarea .jupyter-widgets').length")
                >= expected
            )
        )
    wait.until(lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)"))
    return driver.get_log("browser")


def screenshot(driver: object, name: str) -> Path:
    """A screenshot of the whole page (window stretched to the page's height) under _build/screenshots."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height, 800), 16000))
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1600)
    return path


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_chapter_page_in_a_real_browser(chapter: Path, server: str, browser: object) -> None:
    nb = executed(chapter)
    require(HTML / chapter.with_suffix(".html"))
    log = open_page(browser, f"{server}/{chapter.as_posix()}.html")
    shot = screenshot(browser, chapter.name)
    assert shot.stat().st_size > 10_000

    severe = [entry for entry in log if entry["level"] == "SEVERE"]
    assert not severe, f"browser errors on {chapter.name}: {severe}"
    if 'class="math' in (HTML / chapter.with_suffix(".html")).read_text():  # MathJax 3, from the book, typeset it
        typeset = "return document.querySelectorAll('mjx-container').length"
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(typeset) > 0)

    title = browser.execute_script("return document.querySelector('main h1, article h1')?.textContent || ''")
    assert nb.cells[0].source.splitlines()[0].lstrip("# ").strip() in title

    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img')).map(i => [i.src.slice(0, 80), i.naturalWidth])"
    )
    figures = [src for src, width in images if "data:image/svg" not in src]
    assert len(figures) >= 2, f"{chapter.name} shows {len(figures)} figures"
    broken = [src for src, width in images if width == 0]
    assert not broken, f"images that did not load: {broken}"

    views = widget_views(nb)
    rendered = browser.execute_script("return document.querySelectorAll('.widget-subarea .jupyter-widgets').length")
    assert rendered >= views, f"{views} widgets saved, {rendered} rendered"
    if views:
        controls = browser.execute_script(
            "return document.querySelectorAll('.widget-dropdown, .widget-slider, .widget-checkbox, "
            ".widget-upload, .widget-toggle-buttons, select, input').length"
        )
        assert controls > 0, "widgets rendered without controls"

    cut = browser.execute_script(
        "return Array.from(document.querySelectorAll('div.cell_output pre'))"
        ".filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent.slice(0, 80))"
    )
    assert not cut, f"{chapter.name}: printed lines cut off by a scroll box: {cut}"

    hidden = browser.execute_script(
        "return Array.from(document.querySelectorAll('details.above-input')).filter(d => !d.open).length"
    )
    solutions = sum(SOLUTION_TAG in c.metadata.get("tags", []) and c.cell_type == "code" for c in nb.cells)
    assert hidden >= solutions >= 2, "solutions must be collapsed behind a toggle"
