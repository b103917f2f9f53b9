"""The book's table of contents: the repository it lives in and the files `_toc.yml` lists, in order."""

from __future__ import annotations

from pathlib import Path

from fer_utils.errors import BookError


def repo_root() -> Path:
    """The repository checkout: the folder holding `_toc.yml` and this package (fer_book is never installed)."""
    return Path(__file__).resolve().parents[1]


def toc_entries(root: Path) -> list[str]:
    """Every file `_toc.yml` lists (root first, without extension), parsed as Jupyter Book parses it."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    toc = root / "_toc.yml"
    if not toc.is_file():
        raise BookError(f"no _toc.yml in {root}")
    return list(parse_toc_yaml(toc))


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks listed in `_toc.yml`, in book order, as paths relative to `root`."""
    paths = (Path(entry).with_suffix(".ipynb") for entry in toc_entries(root))
    return [path for path in paths if (root / path).is_file()]
