"""Chapter 5 without its confound (issue 34): early stopping puts the best epoch's weights back even when it
never stopped a run, so the chapter states the test accuracy of the final (overfit) weights and of the restored
best epoch for both settings, over the seeds, and checks the remedy on the final weights.

The first check reads the executed chapter (`make book` first: marker `book`); the second reads its source.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from fer_book.scorecard import Glued

REPO = Path(__file__).resolve().parents[1]
STAGE = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build")) / "stage"
CHAPTER = "05_regularization"
# what the chapter's text states (glued): each setting's final and best-epoch test accuracy over the seeds
FINAL_AND_BEST = ("ch5_base_final", "ch5_base_best", "ch5_after_final", "ch5_after_best")


@pytest.mark.book
def test_chapter5_states_final_and_best_epoch_accuracy_for_both_settings() -> None:
    path = STAGE / "notebooks" / f"{CHAPTER}.ipynb"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book` first (this test reads its output)")
    nb = json.loads(path.read_text(encoding="utf-8"))
    values = {name: Glued(CHAPTER, name).read(nb) for name in FINAL_AND_BEST}
    missing = [name for name, value in values.items() if value is None]
    assert missing == [], f"chapter 5 glues no {missing}"
    for name, value in values.items():  # over the seeds: one number per seed
        assert len(value.values) >= 2, name


def test_the_remedy_is_judged_on_the_final_weights() -> None:
    """The claim that the remedy leaves the test accuracy where it was is checked by the chapter, and the
    sentence that states the change it checks (`ch5_remedy_change`) names the final weights, not the restored
    best epoch's (which hid the overfit network)."""
    nb = json.loads((REPO / "notebooks" / f"{CHAPTER}.ipynb").read_text(encoding="utf-8"))
    sources = [("".join(cell["source"]), cell["cell_type"]) for cell in nb["cells"]]
    checks = [text for text, kind in sources if kind == "code" and "check_claims(" in text]
    assert len(checks) == 1 and re.search(r'"remedy_test_change_beyond_spread":\s*\(', checks[0]), checks
    stating = [text for text, kind in sources if kind == "markdown" and "`ch5_remedy_change`" in text]
    assert stating, "chapter 5's text states no ch5_remedy_change"
    for text in stating:
        paragraph = next(p for p in text.split("\n\n") if "`ch5_remedy_change`" in p)
        assert "final weights" in paragraph, paragraph
