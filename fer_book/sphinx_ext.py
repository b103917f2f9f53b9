"""The book's Sphinx extension (listed in `_config.yml`'s `sphinx.extra_extensions`).

`fer_book.build` runs `jupyter-book build` with the repository root on PYTHONPATH, so Sphinx imports
this module from the checkout without fer_book being installed.
"""

from __future__ import annotations

from fer_book.build import MATHJAX_STATIC_DIR, WIDGETS_STATIC_DIR

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def page_scripts(scripts: list, body: str) -> list:
    """A page's `scripts` without repeats of the same file or inline body (first one kept, order unchanged), without
    the widgets bundle on a page that shows no widget (Jupyter Book adds every _static .js to every page), and
    without the MathJax bundle Jupyter Book adds that way (one loaded without `defer` or `async`, unlike Sphinx's
    math extension's, which loads it on pages with equations)."""
    seen, kept = set(), []
    for script in scripts:
        name = str(getattr(script, "filename", script) or "")  # inline scripts come as None or ""
        attributes = getattr(script, "attributes", {}) or {}
        key = (name, tuple(sorted(attributes.items())))
        unwanted = (WIDGETS_STATIC_DIR.name + "/" in name and WIDGET_VIEW_MIME not in body) or (
            name.startswith(MATHJAX_STATIC_DIR.as_posix() + "/") and not {"defer", "async"} & set(attributes)
        )
        if key not in seen and not unwanted:
            kept.append(script)
        seen.add(key)
    return kept


def dedupe_page_scripts(app: object, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """Drop the page's unwanted <script> entries (`page_scripts`): with Sphinx 7.4, sphinx-thebe and myst-nb
    register some twice, and a repeated inline `const THEBE_JS_URL = …` is a JavaScript SyntaxError."""
    if "script_files" in context:
        context["script_files"][:] = page_scripts(list(context["script_files"]), context.get("body", ""))


def setup(app: object) -> dict:
    """Sphinx extension hook (listed in _config.yml): de-duplicate each page's scripts."""
    app.connect("html-page-context", dedupe_page_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
