"""Chapter 5 without its confound: early stopping puts the best epoch's weights back even when it
never stopped a run, so the chapter states the test accuracy of the final (overfit) weights and of the restored
best epoch for both settings, over the seeds, and checks the remedy on the final weights.

Both checks read the executed chapter (`make book` first: marker `book`).
"""

from __future__ import annotations

import json
import os
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


@pytest.mark.book
def test_the_remedy_is_judged_on_the_final_weights() -> None:
    """The executed chapter checks the remedy's change in test accuracy on the final weights (the overfit
    network), not on the restored best epoch's, and records that check with its threshold."""
    from fer_utils.book.claims import LESSON_KEY

    path = STAGE / "notebooks" / f"{CHAPTER}.ipynb"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book` first (this test reads its output)")
    nb = json.loads(path.read_text(encoding="utf-8"))
    records = [
        out["metadata"][LESSON_KEY]
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if LESSON_KEY in out.get("metadata", {})
    ]
    assert len(records) == 1, "chapter 5 checks its claims in one cell"
    assert records[0]["claims"]["remedy_test_change_beyond_spread"] == ["<=", 0.0]
    final = Glued(CHAPTER, "ch5_after_final").read(nb).values
    base = Glued(CHAPTER, "ch5_base_final").read(nb).values
    change = Glued(CHAPTER, "ch5_remedy_change", index=0).read(nb).number
    assert change == pytest.approx(sum(final) / len(final) - sum(base) / len(base), abs=1e-6)
