"""The release check: everything that names the book's version agrees before a tag `v<version>` is pushed.

A published book is one commit, tagged `v<fer_utils.__version__>`: `_config.yml`'s `repository.branch`
points the Colab badges, launch buttons and every chapter's install cell at that tag, and
CHANGELOG.md says what the version holds. `release_problems` lists each disagreement (an empty list:
ready to tag); `python -m fer_book release --check` prints them and exits 1 when there are any. The
files are read from the given root as text, so a copy of the repository can be checked too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from fer_book.links import INSTALL_SPEC, book_links, sync_repository
from fer_book.toc import toc_notebooks
from fer_utils.errors import BookError

VERSION_FILE = Path("fer_utils/__init__.py")
CHANGELOG = Path("CHANGELOG.md")
VERSION_LINE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)
# Keep a Changelog headings: `## [0.1.0] - 2026-11-22` (or `## 0.1.0 …`); `[Unreleased]` is not a version.
CHANGELOG_HEADING = re.compile(r"^##\s+\[?v?(\d[\w.+-]*)\]?", re.MULTILINE)


@dataclass(frozen=True)
class ReleaseState:
    """What each file says about the version: the package, `_config.yml`, the install cells, the changelog."""

    version: str
    config_ref: str
    install_refs: dict[str, str | None]  # notebook -> the ref its install cell installs (None: no install spec)
    changelog_versions: tuple[str, ...]

    @property
    def tag(self) -> str:
        """The tag this version is published under."""
        return f"v{self.version}"


def package_version(root: Path) -> str:
    """`__version__` as written in `<root>/fer_utils/__init__.py` (read, not imported: `root` may be a copy)."""
    path = root / VERSION_FILE
    found = VERSION_LINE.search(path.read_text()) if path.is_file() else None
    if not found:
        raise BookError(f'{path}: no `__version__ = "..."` line')
    return found.group(1)


def install_ref(notebook: dict) -> str | None:
    """The ref (tag or branch) a chapter's install cell (its second cell) installs the package at."""
    cells = notebook.get("cells", [])
    source = "".join(cells[1].get("source", [])) if len(cells) > 1 else ""
    found = INSTALL_SPEC.search(source)
    return found.group(0).rsplit("@", 1)[1] if found else None


def changelog_versions(root: Path) -> tuple[str, ...]:
    """The versions CHANGELOG.md has an entry (a `## [x.y.z]` heading) for; empty when it has none or is missing."""
    path = root / CHANGELOG
    return tuple(CHANGELOG_HEADING.findall(path.read_text())) if path.is_file() else ()


def read_release_state(root: Path) -> ReleaseState:
    """Read what the package, `_config.yml`, the notebooks and the changelog of `root` say."""
    refs = {nb.as_posix(): install_ref(json.loads((root / nb).read_text())) for nb in toc_notebooks(root)}
    return ReleaseState(
        version=package_version(root),
        config_ref=book_links(root / "_config.yml").ref,
        install_refs=refs,
        changelog_versions=changelog_versions(root),
    )


def release_problems(root: Path, tag: str | None = None) -> list[str]:
    """Every disagreement between the version's tag and what the files (and `tag`, the one being pushed) say."""
    state = read_release_state(root)
    expected = state.tag
    problems = []
    if state.config_ref != expected:
        problems.append(
            f"_config.yml: repository.branch is {state.config_ref!r}, but fer_utils.__version__ is "
            f"{state.version!r}: set branch: {expected}"
        )
    for notebook, ref in state.install_refs.items():
        if ref != expected:
            what = "has no install spec" if ref is None else f"installs the package at {ref!r}"
            problems.append(f"{notebook}: the install cell {what}, not {expected!r}: run `python -m fer_book links`")
    stale = sorted(set(sync_repository(root, check=True)) - set(state.install_refs))
    problems += [
        f"{name}: a link disagrees with _config.yml's repository: run `python -m fer_book links`" for name in stale
    ]
    if state.version not in state.changelog_versions:
        have = ", ".join(state.changelog_versions) or "none"
        problems.append(f"{CHANGELOG}: no entry `## [{state.version}]` for this version (entries: {have})")
    if tag is not None and tag != expected:
        problems.append(f"the tag being published is {tag!r}, but the files say {expected!r}")
    return problems
