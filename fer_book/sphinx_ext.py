"""The book's Sphinx extension (listed in `_config.yml`): each page's scripts without repeats or
unused bundles. Sphinx imports it from the checkout (`fer_book.build.sphinx_environment`).
"""

from __future__ import annotations

from fer_book.build import MATHJAX_STATIC_DIR, WIDGETS_STATIC_DIR

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def page_scripts(scripts: list, body: str) -> list:
    """`scripts` without repeats (first kept, order unchanged), without the widgets bundle on a page with no
    widget, and without the MathJax bundle Jupyter Book adds to every page (the one without `defer` or `async`;
    Sphinx's math extension loads its own on pages with equations)."""
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
