"""The book's links to its repository, generated from one place, `_config.yml`'s `repository`; the release check.

`sync_repository` (`python -m fer_book links`) points badges, install cells and texts at `repository`;
`release_problems` (`release --check`) lists where the files disagree. Contract: CONTRACTS.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

from fer_book.toc import toc_notebooks
from fer_utils.errors import BookError

COLAB = "https://colab.research.google.com"
# The install cell, folded to one line: in the HTML book (myst-nb's `code_prompt_show`) and on Colab (a form).
INSTALL_PROMPT = "Install the book's package on Colab (does nothing elsewhere)"
# Colab's form title, the cell's first line: shorter, so that the line fits the book's 88 columns.
INSTALL_TITLE = "Install the book's package on Colab"
INSTALL_METADATA = {
    "tags": ["hide-input"],
    "mystnb": {"code_prompt_show": INSTALL_PROMPT, "code_prompt_hide": "Hide the install cell"},
    "cellView": "form",
}
BADGE_ALT = 'alt="Open In Colab"'
# The "Open in Colab" badge, inline so that the page needs no image from elsewhere.
BADGE_SVG = (
    "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHdpZHRoPSIxMTciIGhlaWdodD0iMjAiPjxy"
    "ZWN0IHJ4PSIzIiB3aWR0aD0iMTE3IiBoZWlnaHQ9IjIwIiBmaWxsPSIjNTU1Ii8+PHJlY3Qgcng9IjMiIHg9IjM3IiB3aWR0aD0iODAiIGhlaWdodD0i"
    "MjAiIGZpbGw9IiNGOUFCMDAiLz48dGV4dCB4PSI2IiB5PSIxNCIgZmlsbD0iI2ZmZiIgZm9udC1mYW1pbHk9IlZlcmRhbmEsc2Fucy1zZXJpZiIgZm9u"
    "dC1zaXplPSIxMSI+T3BlbjwvdGV4dD48dGV4dCB4PSI0MyIgeT0iMTQiIGZpbGw9IiMwMDAiIGZvbnQtZmFtaWx5PSJWZXJkYW5hLHNhbnMtc2VyaWYi"
    "IGZvbnQtc2l6ZT0iMTEiPmluIENvbGFiPC90ZXh0Pjwvc3ZnPg=="
)
# The book's own links: only GitHub links to the repositories these name are rewritten (others' stay).
BOOK_SLUG = re.compile(
    r"(?:git\+https://github\.com/|colab\.research\.google\.com/github/)([\w.-]+/[\w.-]+?)(?:@|/blob/)"
    r"|Homepage\s*=\s*\"https://github\.com/([\w.-]+/[\w.-]+)\""
)
INSTALL_SPEC = re.compile(r"fer-utils @ git\+https://github\.com/[\w.-]+/[\w.-]+?@[\w.-]+")
VERSION_LINE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)
# Keep a Changelog headings: `## [0.1.0] - 2026-11-22` (or `## 0.1.0 …`); `[Unreleased]` is not a version.
CHANGELOG_HEADING = re.compile(r"^##\s+\[?v?(\d[\w.+-]*)\]?", re.MULTILINE)
COLAB_PREFIX = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/")


class BookLinks(NamedTuple):
    """The repository address and the ref (tag or branch) that every link of the book points at."""

    url: str
    ref: str

    @property
    def slug(self) -> str:
        """`owner/name` of the GitHub repository."""
        return self.url.removeprefix("https://github.com/")

    @property
    def pages_url(self) -> str:
        """Where GitHub Pages publishes the book (`.github/workflows/book.yml`)."""
        owner, name = self.slug.split("/")
        return f"https://{owner}.github.io/{name}/"

    @property
    def install_spec(self) -> str:
        """The pip requirement that installs the package at the book's ref."""
        return f"fer-utils @ git+{self.url}@{self.ref}"

    def colab_url(self, notebook: str) -> str:
        """Where Colab opens `notebook` (a path relative to the repository root)."""
        return f"{COLAB}/github/{self.slug}/blob/{self.ref}/{notebook}"

    def badge(self, notebook: str) -> str:
        """The Open-in-Colab badge line of a chapter's first cell."""
        return f'<a href="{self.colab_url(notebook)}"><img src="{BADGE_SVG}" {BADGE_ALT} width="117" height="20"/></a>'

    def install_cell(self) -> list[str]:
        """The source lines of each chapter's second cell: on Colab only, install the package at the book's ref, then
        check the runtime before anything imports TensorFlow (`fer_utils.book.colab`)."""
        return [
            f'# @title {INSTALL_TITLE} {{ display-mode: "form" }}\n',
            'if "google.colab" in str(get_ipython()):\n',
            f'    %pip install -q "{self.install_spec}"\n',
            "    from fer_utils.book.colab import require_fresh_runtime\n",
            "\n",
            "    require_fresh_runtime()  # stops here, saying to restart, if pip replaced the loaded numpy",
        ]


def book_links(config: Path) -> BookLinks:
    """The repository links set in a `_config.yml`."""
    import yaml

    repository = (yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}).get("repository") or {}
    url, ref = str(repository.get("url", "")).rstrip("/"), str(repository.get("branch", ""))
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url) or not ref:
        raise BookError(
            f"{config}: repository.url must be https://github.com/OWNER/NAME and repository.branch "
            f"a tag or branch (got {url!r}, {ref!r})"
        )
    return BookLinks(url, ref)


def book_slugs(text: str) -> set[str]:
    """The repositories (`owner/name`) that install specs, Colab links and the Homepage in `text` name."""
    return {a or b for a, b in BOOK_SLUG.findall(text)}


def sync_notebook(nb: dict, notebook: str, links: BookLinks, old_slugs: frozenset[str] = frozenset()) -> dict:
    """The notebook JSON with its badge line (first cell), install cell (second) and markdown links from `links`."""
    for cell in nb["cells"]:
        if isinstance(cell["source"], str):
            cell["source"] = cell["source"].splitlines(keepends=True)
    first, second = nb["cells"][0], nb["cells"][1]
    badge_lines = [i for i, line in enumerate(first["source"]) if BADGE_ALT in line]
    if first["cell_type"] != "markdown" or not badge_lines or second["cell_type"] != "code":
        raise BookError(f"{notebook}: the first cell must hold the Colab badge and the second the install cell")
    i = badge_lines[0]
    ending = "\n" if first["source"][i].endswith("\n") else ""
    first["source"][i] = links.badge(notebook) + ending
    second["source"] = links.install_cell()
    second["metadata"] = {**second.get("metadata", {}), **INSTALL_METADATA}
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = [sync_text(line, links, old_slugs) for line in cell["source"]]
    return nb


def notebook_text(nb: dict) -> str:
    """A notebook as Jupyter writes it (indent 1, sorted keys), so that git diffs stay small."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def sync_text(text: str, links: BookLinks, old_slugs: frozenset[str] = frozenset()) -> str:
    """`text` with its install specs, Colab, GitHub and GitHub Pages links to the book's repositories pointed at
    `links`."""
    slugs = (set(old_slugs) | book_slugs(text)) - {links.slug}
    text = INSTALL_SPEC.sub(links.install_spec, text)
    text = COLAB_PREFIX.sub(f"{COLAB}/github/{links.slug}/blob/{links.ref}/", text)
    for slug in sorted(slugs):
        text = re.sub(rf"https://github\.com/{re.escape(slug)}(?![\w-]|\.\w)", links.url, text)
        text = text.replace(BookLinks(f"https://github.com/{slug}", links.ref).pages_url, links.pages_url)
    return text


LINKED_TEXT_FILES = ("README.md", "pyproject.toml")
LINKED_TEXT_GLOBS = (*LINKED_TEXT_FILES, "book/*.md")


def sync_repository(root: Path, check: bool = False) -> list[str]:
    """Point every link of `root` at its `_config.yml`'s repository (`check`: change nothing); what disagreed."""
    links = book_links(root / "_config.yml")
    texts = sorted({p for pattern in LINKED_TEXT_GLOBS for p in root.glob(pattern)})
    paths = [*(root / notebook for notebook in toc_notebooks(root)), *texts]
    old = frozenset().union(*(book_slugs(path.read_text(encoding="utf-8")) for path in paths))
    stale = []
    for path in paths:
        text, name = path.read_text(encoding="utf-8"), path.relative_to(root).as_posix()
        if path.suffix == ".ipynb":
            new = notebook_text(sync_notebook(json.loads(text), name, links, old))
        else:
            new = sync_text(text, links, old)
        if new != text:
            stale.append(name)
            if not check:
                path.write_text(new, encoding="utf-8")
    return stale


def package_version(root: Path) -> str:
    """`__version__` as written in `<root>/fer_utils/__init__.py` (read, not imported: `root` may be a copy)."""
    path = root / "fer_utils" / "__init__.py"
    found = VERSION_LINE.search(path.read_text(encoding="utf-8")) if path.is_file() else None
    if not found:
        raise BookError(f'{path}: no `__version__ = "..."` line')
    return found.group(1)


def changelog_versions(root: Path) -> tuple[str, ...]:
    """The versions CHANGELOG.md has an entry (a `## [x.y.z]` heading) for; empty when it has none or is missing."""
    path = root / "CHANGELOG.md"
    return tuple(CHANGELOG_HEADING.findall(path.read_text(encoding="utf-8"))) if path.is_file() else ()


def release_problems(root: Path, tag: str | None = None) -> list[str]:
    """Every disagreement between the version's tag and what the files (and `tag`, the one being pushed) say."""
    version = package_version(root)
    expected, config_ref = f"v{version}", book_links(root / "_config.yml").ref
    problems = []
    if config_ref != expected:
        problems.append(
            f"_config.yml: repository.branch is {config_ref!r}, but fer_utils.__version__ is {version!r}: "
            f"set branch: {expected}"
        )
    notebooks = [notebook.as_posix() for notebook in toc_notebooks(root)]
    for notebook in notebooks:
        cells = json.loads((root / notebook).read_text(encoding="utf-8"))["cells"]
        found = INSTALL_SPEC.search("".join(cells[1]["source"]) if len(cells) > 1 else "")
        ref = found.group(0).rsplit("@", 1)[1] if found else None
        if ref != expected:
            what = "has no install spec" if ref is None else f"installs the package at {ref!r}"
            problems.append(f"{notebook}: the install cell {what}, not {expected!r}: run `python -m fer_book links`")
    problems += [
        f"{name}: a link disagrees with _config.yml's repository: run `python -m fer_book links`"
        for name in sorted(set(sync_repository(root, check=True)) - set(notebooks))
    ]
    if version not in (versions := changelog_versions(root)):
        problems.append(
            f"CHANGELOG.md: no entry `## [{version}]` for this version (entries: {', '.join(versions) or 'none'})"
        )
    if tag is not None and tag != expected:
        problems.append(f"the tag being published is {tag!r}, but the files say {expected!r}")
    return problems
