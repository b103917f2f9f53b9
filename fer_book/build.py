"""Building the HTML book from an executed stage (the second step of a book build, after fer_book.execute).

`build_book` stages what the site serves itself (widgets, MathJax, favicon, the demo page), writes the
scorecard's verdicts, points the staged links at `_config.yml`'s repository, and runs `jupyter-book build`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from fer_book import scorecard
from fer_book.demo_page import DEMO_EXTRA_DIR, DEMO_STATIC_DIR, write_demo_static
from fer_book.links import sync_repository
from fer_book.npm import MATHJAX, WIDGETS_HTML_MANAGER, vendor_files
from fer_book.toc import repo_root
from fer_utils.errors import BookError
from fer_utils.storage.atomic import atomic_file, write_atomic

WIDGETS_STATIC_DIR = Path("_static") / "ipywidgets"
# The files a build wrote into OUT/html; a rebuild replaces only those (CONTRACTS.md).
SITE_MANIFEST = ".book-files.json"
WIDGETS_JS_FILES = (".js", ".txt", ".woff", ".woff2", ".ttf", ".eot", ".svg")
# MathJax 3's TeX bundle, fonts and licence, served from _static too (`_config.yml`'s `mathjax_path`).
MATHJAX_STATIC_DIR = Path("_static") / "mathjax"
MATHJAX_BUNDLE = "tex-mml-chtml.js"
MATHJAX_FONTS = PurePosixPath("es5/output/chtml/fonts/woff-v2")
# A shim for MathJax 2's `MathJax.Hub.Queue`, which the widgets bundle calls (MathJax 3 lacks it: a TypeError).
MATHJAX_HUB_JS = Path(__file__).with_name("mathjax_hub.js")


def vendor_widgets_js(stage: Path, cache: Path) -> None:
    """Unpack the widgets embed bundle (embed.js, its licence and fonts) into `<stage>/_static/ipywidgets`."""

    def wanted(inner: PurePosixPath) -> bool:
        return inner.parent == PurePosixPath("dist") and inner.suffix in WIDGETS_JS_FILES and "amd" not in inner.name

    vendor_files(WIDGETS_HTML_MANAGER, cache, stage / WIDGETS_STATIC_DIR, wanted)


def vendor_mathjax(stage: Path, cache: Path) -> None:
    """Unpack MathJax 3's TeX bundle, fonts and licence into `<stage>/_static/mathjax`, and its Hub shim."""
    files = (PurePosixPath("es5", MATHJAX_BUNDLE), PurePosixPath("LICENSE"))

    def place(inner: PurePosixPath) -> PurePosixPath:  # the bundle and its fonts keep their places under es5/
        return inner.relative_to("es5") if inner.parts[0] == "es5" else inner

    target = stage / MATHJAX_STATIC_DIR
    vendor_files(MATHJAX, cache, target, lambda inner: inner in files or inner.parent == MATHJAX_FONTS, place)
    shutil.copyfile(MATHJAX_HUB_JS, stage / WIDGETS_STATIC_DIR / MATHJAX_HUB_JS.name)


FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#F9AB00"/>'
    '<circle cx="11" cy="12" r="2.5"/><circle cx="21" cy="12" r="2.5"/>'
    '<path d="M9 20 q7 7 14 0" stroke="#000" stroke-width="2.5" fill="none"/></svg>'
)


# Printed outputs wrap at the page's width (Jupyter Book includes every .css file of `_static` in every page).
OUTPUT_CSS = """/* fer_book: long printed lines wrap (no horizontal scroll box for a verdict) */
div.cell_output pre, div.cell_output .output pre {
  white-space: pre-wrap;
  overflow-wrap: anywhere;
}
"""


def jupyter_book_executable() -> str:
    """The `jupyter-book` script installed next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "jupyter-book"
    found = str(beside) if beside.is_file() else shutil.which("jupyter-book")
    if not found:
        raise BookError("jupyter-book is not installed (pip install -r requirements.txt)")
    return found


def sphinx_environment() -> dict[str, str]:
    """This environment with the repository root first on PYTHONPATH, where Sphinx imports `fer_book.sphinx_ext`."""
    paths = [str(repo_root()), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def build_book(
    stage: Path, out: Path, cache: Path, demo_model: Path | None = None, demo_about: Mapping[str, object] | None = None
) -> Path:
    """Build the executed `stage` into `<out>/html` with jupyter-book (warnings as errors)."""
    if not (stage / "_config.yml").is_file():
        raise BookError(f"{stage} is not an executed stage (run `python -m fer_book execute --out {stage}` first)")
    html = out / "html"
    if scorecard.listed(stage):  # the claims scored on the executed chapters: a missing record fails at once
        scorecard.write_scorecard(stage)
    vendor_widgets_js(stage, cache)  # what the HTML build serves from `_static`
    vendor_mathjax(stage, cache)
    (stage / "_static" / "favicon.svg").write_text(FAVICON_SVG, encoding="utf-8")
    (stage / "_static" / "fer_outputs.css").write_text(OUTPUT_CSS, encoding="utf-8")
    write_demo_assets(stage, cache, demo_model, demo_about)
    sync_repository(stage)  # the staged links follow the stage's _config.yml: a fork's build links to the fork
    work = out / ".jupyter-book"
    build = ["build", str(stage), "--path-output", str(work), "--builder", "html", "-W", "--keep-going"]
    result = subprocess.run(
        [jupyter_book_executable(), *build], capture_output=True, text=True, env=sphinx_environment()
    )
    sys.stdout.write(result.stdout[-4000:])
    if result.returncode != 0:
        raise BookError(f"jupyter-book build failed (exit {result.returncode}):\n{result.stderr[-6000:]}")
    install_site(work / "_build" / "html", html)
    shutil.rmtree(work / "_build" / "html")
    return html / "index.html"


def write_demo_assets(stage: Path, cache: Path, model: Path | None, about: Mapping[str, object] | None) -> Path:
    """The demo page's static folder in the stage: `model` with `about` (default: the package's pretrained model,
    described by its card) and the peer, described by the same card's measurements of it."""
    from fer_book.demo_page import pretrained_abouts
    from fer_utils.deploy.pretrained import pretrained_card, pretrained_model_file
    from fer_utils.models.peer import export_peer

    pretrained, peer_about = pretrained_abouts(pretrained_card())
    model, about = (
        (model, about or {"trained_on": Path(model).name}) if model else (pretrained_model_file(), pretrained)
    )
    static = stage / DEMO_EXTRA_DIR / DEMO_STATIC_DIR
    with tempfile.TemporaryDirectory(prefix="fer-demo-peer-") as scratch:
        peer = (export_peer(Path(scratch) / "peer"), peer_about)
        return write_demo_static(static, cache, Path(model), about, stage, peer=peer)


def install_site(built: Path, html: Path) -> None:
    """Copy the built site into `html`, changing only the files a build wrote; BookError when it would overwrite one."""
    new = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    manifest = html / SITE_MANIFEST  # the files the previous build wrote
    old = set(json.loads(manifest.read_text(encoding="utf-8"))) if manifest.is_file() else set()
    clashes = sorted(p for p in new if (html / p).exists() and p not in old)
    if clashes:
        raise BookError(
            f"{html} holds files that no book build wrote and the build would overwrite: "
            f"{clashes[:5]}{' …' if len(clashes) > 5 else ''}; nothing was changed. Move them, or choose "
            "another --out (a site built before this check has no manifest: `make clean`)"
        )
    for stale in sorted(old - new):
        (html / stale).unlink(missing_ok=True)
    for name in sorted(new):
        with atomic_file(html / name) as tmp:
            shutil.copy2(built / name, tmp)
    write_atomic(html / SITE_MANIFEST, json.dumps(sorted(new), indent=0) + "\n")
