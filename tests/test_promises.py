"""Every guarantee a page states names its test.

README.md, book/how_to_use.md and ARCHITECTURE.md each hold a section "What is promised, and the test that
proves it": a table with one promise per row and, beside it, the tests that prove it
(`tests/test_x.py::test_name`). A promise whose test was renamed or deleted, or a row without a test, fails
here. (The grading promises of the teachers' section are among them.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "book/how_to_use.md", "ARCHITECTURE.md")
HEADING = "What is promised, and the test that proves it"
TEST_REFERENCE = re.compile(r"tests/(test_\w+)\.py::(test_\w+)")


def promise_rows(text: str) -> list[str]:
    """The table rows (after the header and its rule) of the page's promises section."""
    section = text.split(f"## {HEADING}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return rows[2:]


def missing_tests(row: str, root: Path = REPO) -> list[str]:
    """The references of `row` to a test file or function that does not exist (a row citing none is one)."""
    found = TEST_REFERENCE.findall(row)
    if not found:
        return [f"no test named in: {row}"]
    missing = []
    for module, function in found:
        path = root / "tests" / f"{module}.py"
        if not path.is_file() or not re.search(rf"^def {function}\(", path.read_text(), re.MULTILINE):
            missing.append(f"tests/{module}.py::{function}")
    return missing


@pytest.mark.parametrize("page", PAGES)
def test_every_promise_of_the_page_names_a_test_that_exists(page: str) -> None:
    rows = promise_rows((REPO / page).read_text())
    assert len(rows) >= 4, f"{page}: its promises table is missing or nearly empty"
    problems = [problem for row in rows for problem in missing_tests(row)]
    assert problems == [], f"{page}: " + "; ".join(problems)


def test_the_promises_cover_nothing_lost_downloads_and_reproducibility() -> None:
    """Nothing lost, verified downloads and reproducibility are among the promises (grading included)."""
    rows = " ".join(promise_rows((REPO / "ARCHITECTURE.md").read_text())).lower()
    for words in ("half", "resum", "verified", "same seed", "typed by hand", "interrupt"):
        assert words in rows, f"no promise about {words!r} in ARCHITECTURE.md"


def test_a_renamed_test_or_a_row_without_one_is_caught() -> None:
    assert missing_tests("| a run folder is written whole | `tests/test_training.py::test_no_such_test` |") == [
        "tests/test_training.py::test_no_such_test"
    ]
    assert missing_tests("| a promise | `tests/test_no_such_file.py::test_x` |") == [
        "tests/test_no_such_file.py::test_x"
    ]
    assert missing_tests("| a promise with no test | none |") == ["no test named in: | a promise with no test | none |"]
    good = "| written whole | `tests/test_training.py::test_a_run_folder_is_written_whole_and_never_over_another` |"
    assert missing_tests(good) == []
