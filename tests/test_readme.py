"""The README is a front door: one or two screens, the same Python versions as the package and the book's pages,
the FER-2013 section delimited for the recipe's measurements, and every test it or a book page cites exists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from test_colab_runtime import COLAB_LISTED, COLAB_PYTHON

import fer_utils

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 150
# Where the supported Python versions are written for people: each says fer_utils.SUPPORTED_PYTHONS' range.
VERSION_TEXTS = ("README.md", "book/how_to_use.md", "Makefile", "requirements.txt")
PYTHON_RANGE = re.compile(r"Python (3\.\d+)(?: to | or |–|-)(3\.\d+)")
CITED_TEST = re.compile(r"(?:tests/)?(test_\w+\.py)::(test_\w+)")
FER2013_SECTION = ("<!-- BEGIN FER-2013", "<!-- END FER-2013 -->")


def supported_range() -> tuple[str, str]:
    """fer_utils.SUPPORTED_PYTHONS as ("3.11", "3.13")."""
    oldest, newest = fer_utils.SUPPORTED_PYTHONS
    return ".".join(map(str, oldest)), ".".join(map(str, newest))


def test_the_readme_fits_one_or_two_screens() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move the detail to a book page"


def test_python_versions_agree_everywhere() -> None:
    """README, the book's page, the Makefile and the pins name the range fer_utils.SUPPORTED_PYTHONS holds, and
    pyproject.toml's requires-python is that range (book/how_to_use.md once said 3.11 or 3.12)."""
    for name in VERSION_TEXTS:
        found = set(PYTHON_RANGE.findall((REPO / name).read_text(encoding="utf-8")))
        assert found == {supported_range()}, f"{name} names Python {sorted(found)}, not {supported_range()}"
    (major, oldest), (_, newest) = fer_utils.SUPPORTED_PYTHONS
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == f">={major}.{oldest},<{major}.{newest + 1}"


def test_the_readme_says_which_colab_runtime_the_colab_test_was_shaped_after() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert COLAB_LISTED in readme and f"Python {COLAB_PYTHON}" in readme, "README: the Colab runtime tested"


def test_the_fer2013_section_is_delimited_once() -> None:
    """Its commands and figures are rewritten as the recipe is measured again: between two markers, in order."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    begin, end = FER2013_SECTION
    assert readme.count(begin) == 1 and readme.count(end) == 1
    section = readme[readme.index(begin) : readme.index(end)]
    assert "## Train the book's network on FER-2013" in section and "python -m fer_utils train" in section


def test_every_test_the_docs_cite_exists() -> None:
    """The promise tables of README.md and the book's pages name tests as `tests/file.py::test_name`."""
    docs = [REPO / "README.md", *sorted((REPO / "book").glob("*.md"))]
    cited = {match for doc in docs for match in CITED_TEST.findall(doc.read_text(encoding="utf-8"))}
    assert cited, "no test cited: the pattern no longer matches the tables"
    missing = [
        f"{file}::{name}"
        for file, name in sorted(cited)
        if not (REPO / "tests" / file).is_file()
        or not re.search(rf"^def {name}\(", (REPO / "tests" / file).read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert not missing, f"cited tests that do not exist: {missing}"
