"""The release check (`python -m fer_book release --check`): the version, `_config.yml`, the chapters' install
cells and the changelog agree, and each disagreement is listed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_book.links import book_links, package_version, release_problems
from fer_book.toc import toc_notebooks

# What the release check reads: the version, the configuration, the chapters, the changelog and the linked texts.
RELEASE_FILES = ("_config.yml", "_toc.yml", "fer_utils/__init__.py", "CHANGELOG.md", "README.md", "pyproject.toml")
RELEASE_FOLDERS = ("notebooks", "book")


def release_copy(repo_root: Path, dest: Path) -> Path:
    """A copy of the files the release check reads (the real repository is never edited)."""
    for name in RELEASE_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root / name, dest / name)
    for folder in RELEASE_FOLDERS:
        shutil.copytree(repo_root / folder, dest / folder, ignore=shutil.ignore_patterns("_demo", "*.pyc"))
    return dest


def test_release_check_passes_on_the_repository(repo_root: Path) -> None:
    assert release_problems(repo_root) == []
    assert f"v{package_version(repo_root)}" == book_links(repo_root / "_config.yml").ref
    done = subprocess.run(
        [sys.executable, "-m", "fer_book", "release", "--check"], capture_output=True, text=True, cwd=repo_root
    )
    assert done.returncode == 0 and "ready to release v" in done.stdout, done.stdout + done.stderr


def test_release_check_lists_each_disagreement(repo_root: Path, tmp_path: Path) -> None:
    root = release_copy(repo_root, tmp_path / "repo")
    version = package_version(root)
    assert release_problems(root) == []
    init = root / "fer_utils/__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{version}"', '__version__ = "9.9.9"'))
    problems = release_problems(root, tag=f"v{version}")
    assert problems[0] == (
        f"_config.yml: repository.branch is 'v{version}', but fer_utils.__version__ is '9.9.9': set branch: v9.9.9"
    )
    assert sum("install cell installs the package at" in p for p in problems) == len(toc_notebooks(repo_root))
    (changelog,) = [p for p in problems if p.startswith("CHANGELOG.md: no entry `## [9.9.9]` for this version")]
    assert f"(entries: {version}" in changelog
    assert problems[-1] == f"the tag being published is 'v{version}', but the files say 'v9.9.9'"


def test_release_check_sees_a_stale_install_cell_and_a_missing_changelog(repo_root: Path, tmp_path: Path) -> None:
    root = release_copy(repo_root, tmp_path / "repo")
    version = package_version(root)
    chapter = root / "notebooks/03_architecture.ipynb"
    chapter.write_text(chapter.read_text().replace(f"fer-book@v{version}", "fer-book@v0.0.9", 1))
    (root / "CHANGELOG.md").unlink()
    problems = release_problems(root)
    assert problems[0] == (
        f"notebooks/03_architecture.ipynb: the install cell installs the package at 'v0.0.9', not 'v{version}': "
        "run `python -m fer_book links`"
    )
    assert problems[-1] == f"CHANGELOG.md: no entry `## [{version}]` for this version (entries: none)"


@pytest.mark.parametrize("heading", ["## [0.1.0] - 2026-11-22", "## 0.1.0", "## [v0.1.0]"])
def test_changelog_headings_are_read(tmp_path: Path, heading: str) -> None:
    from fer_book.links import changelog_versions

    (tmp_path / "CHANGELOG.md").write_text(f"# Changelog\n\n## [Unreleased]\n\n{heading}\n\n- first\n")
    assert changelog_versions(tmp_path) == ("0.1.0",)  # [Unreleased] is not a version
