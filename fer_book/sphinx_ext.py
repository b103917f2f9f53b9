"""The book's Sphinx extension (listed in `_config.yml`'s `sphinx.extra_extensions`).

`fer_book.build` runs `jupyter-book build` with the repository root on PYTHONPATH, so Sphinx imports
this module from the checkout without fer_book being installed.
"""

from __future__ import annotations

from fer_book.build import MATHJAX_STATIC_DIR, WIDGETS_STATIC_DIR

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def unique_scripts(scripts: list) -> list:
    """`scripts` without repeats of the same file or inline body (first one kept, order unchanged)."""
    seen, kept = set(), []
    for script in scripts:
        name = getattr(script, "filename", script) or ""  # inline scripts come as None or ""
        key = (str(name), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    return kept


def dedupe_page_scripts(app: object, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """Drop repeated <script> entries from a page: with Sphinx 7.4, sphinx-thebe and myst-nb register
    some twice, and a repeated inline `const THEBE_JS_URL = …` is a JavaScript SyntaxError. Pages
    without a widget view do not load the widgets bundle (Jupyter Book adds every _static .js to every page);
    MathJax is loaded only as Sphinx's math extension loads it, deferred and on pages with equations."""
    if "script_files" in context:
        scripts = unique_scripts(list(context["script_files"]))
        if WIDGET_VIEW_MIME not in context.get("body", ""):  # no widget on this page: skip the 5 MB bundle
            scripts = [s for s in scripts if WIDGETS_STATIC_DIR.name + "/" not in _filename(s)]
        scripts = [s for s in scripts if not _added_by_jupyter_book(s, MATHJAX_STATIC_DIR.as_posix() + "/")]
        context["script_files"][:] = scripts


def _filename(script: object) -> str:
    """A page script's file name ("" for an inline script)."""
    return str(getattr(script, "filename", script) or "")


def _added_by_jupyter_book(script: object, folder: str) -> bool:
    """Whether `script` is a file of `folder` (`_static/…`) that Jupyter Book put on the page as it puts
    every _static .js there: one loaded without `defer` or `async`, unlike Sphinx's own MathJax script."""
    attributes = getattr(script, "attributes", {}) or {}
    return _filename(script).startswith(folder) and not {"defer", "async"} & set(attributes)


def setup(app: object) -> dict:
    """Sphinx extension hook (listed in _config.yml): de-duplicate each page's scripts."""
    app.connect("html-page-context", dedupe_page_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
