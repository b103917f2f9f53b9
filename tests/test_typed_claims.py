"""Claims typed into the book's text agree with the files they are about (issue 46).

RAVDESS's licence as chapter 1 states it is the one its stills ship under (their ATTRIBUTION.md); chapter 4's
count of seeds that learn with the book's default is the benchmark's; chapter 9 reads the package's default
learning rate from `TrainConfig` instead of typing it; the demo page's static text does not call one model the
page's default, since the page opens on whichever scores the higher macro F1 (`fer_book.demo_page.opening_slot`).
These read files only (no execution); each check is on the text as the repository holds it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
STILLS_ATTRIBUTION = REPO / "fer_utils" / "assets" / "ravdess_stills" / "ATTRIBUTION.md"


def cells(name: str, kind: str) -> list[str]:
    """The sources of notebooks/<name>.ipynb's cells of type `kind`, whitespace as single spaces."""
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    return [" ".join(cell.source.split()) for cell in nb.cells if cell.cell_type == kind]


def shipped_licence() -> str:
    """The short name of the licence the RAVDESS stills ship under, from their ATTRIBUTION.md's License line."""
    text = " ".join(STILLS_ATTRIBUTION.read_text().split())
    found = re.search(r"License: [^(]*\((CC [^)]+)\)", text)
    assert found, f"{STILLS_ATTRIBUTION} names no CC licence"
    return found.group(1)


def test_chapter1_states_ravdess_licence_as_its_stills_ship_under() -> None:
    licence = shipped_licence()
    assert licence == "CC BY-NC-SA 4.0"
    paragraphs = [p for md in cells("01_dataset_tour", "markdown") for p in md.split("## ") if "RAVDESS" in p]
    about = [p for p in paragraphs if "licence" in p or "license" in p]
    assert about, "chapter 1 says nothing of RAVDESS's licence"
    for paragraph in about:
        assert licence in paragraph and "non-commercial" in paragraph, paragraph[:300]
        assert "ATTRIBUTION.md" in paragraph  # where the shipped stills' credit is
        assert not re.search(r"does not allow|not allowed|cannot be (re)?distributed", paragraph), paragraph[:300]


def test_chapter4_counts_the_seeds_the_benchmark_counts() -> None:
    """The book's dropout at Adam 1e-3 learned for 4 of 5 seeds on the London faces (benchmarks/README.md's
    "Training recipe across seeds"), so chapter 4 cannot say every time."""
    table = (REPO / "benchmarks" / "README.md").read_text()
    row = re.search(r"^\| only the last dropout \(0, 0, 0\.3\) \|.*\| (\d)/(\d) \| \d \| \d \|$", table, re.M)
    assert row, "the benchmark's row of the book's dropout at 1e-3 is gone"
    learnt, seeds = row.groups()
    text = " ".join(cells("04_training", "markdown"))
    assert f"the book's default for {learnt} of {seeds}" in text
    assert "default every time" not in text


def test_chapter9_reads_the_default_learning_rate_from_the_config() -> None:
    markdown = " ".join(cells("09_real_faces", "markdown"))
    assert not re.search(r"default (learning )?rate, \d", markdown), "a default rate typed into the markdown"
    stating = [code for code in cells("09_real_faces", "code") if "default learning rate" in code]
    assert len(stating) == 1 and "TrainConfig().learning_rate" in stating[0]
    assert "prose.paragraph(" in stating[0]


def test_demo_page_text_names_no_fixed_default_model() -> None:
    text = " ".join((REPO / "book" / "demo.md").read_text().split())
    assert "(the default)" not in text and "the default is" not in text
    assert "opens on the one whose macro F1" in text  # the opening is chosen when the book is built
