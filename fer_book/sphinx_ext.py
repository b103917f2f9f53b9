"""The book's Sphinx extension (listed in `_config.yml`): each page's scripts without repeats or unused bundles."""

from __future__ import annotations

from fer_book.build import MATHJAX_STATIC_DIR, WIDGETS_STATIC_DIR

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def page_scripts(scripts: list, body: str) -> list:
    """`scripts` without repeats, an unused widgets bundle, or Jupyter Book's MathJax (without `defer`/`async`)."""
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
    """Drop the page's unwanted <script> entries: a repeated inline `const THEBE_JS_URL` is a SyntaxError."""
    if "script_files" in context:
        context["script_files"][:] = page_scripts(list(context["script_files"]), context.get("body", ""))


def setup(app: object) -> dict:
    """Sphinx extension hook (listed in _config.yml): de-duplicate each page's scripts."""
    app.connect("html-page-context", dedupe_page_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
