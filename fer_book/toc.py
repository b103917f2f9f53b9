"""The book's table of contents: the repository it lives in and the files `_toc.yml` lists, in order."""

from __future__ import annotations

from pathlib import Path

from fer_utils.errors import BookError


def repo_root() -> Path:
    """The repository checkout: the folder holding `_toc.yml` and this package (fer_book is never installed)."""
    return Path(__file__).resolve().parents[1]


def read_toc(root: Path) -> dict:
    """Parse `<root>/_toc.yml`; a missing file is a clear error."""
    import yaml

    toc = root / "_toc.yml"
    if not toc.is_file():
        raise BookError(f"no _toc.yml in {root}")
    return yaml.safe_load(toc.read_text())


def toc_entries(root: Path) -> list[str]:
    """Every file listed in `_toc.yml` (root first), as written there, without extension."""
    toc = read_toc(root)
    entries = [toc["root"]]
    stack = list(toc.get("parts", [])) + [{"chapters": toc.get("chapters", [])}]
    for part in stack:
        for chapter in part.get("chapters", []) or []:
            if "file" in chapter:
                entries.append(chapter["file"])
            stack.extend([{"chapters": chapter.get("sections", [])}])
    return entries


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks listed in `_toc.yml`, in book order, as paths relative to `root`."""
    found = []
    for entry in toc_entries(root):
        path = Path(entry).with_suffix(".ipynb")
        if (root / path).is_file():
            found.append(path)
    return found
