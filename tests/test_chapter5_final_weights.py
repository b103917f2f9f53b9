"""Chapter 5 without its confound: early stopping puts the best epoch's weights back even when it
never stopped a run, so the chapter states the test accuracy of the final (overfit) weights and of the restored
best epoch for both settings, over the seeds, and checks the remedy on the final weights.

Both checks read the executed chapter's results record (`make book` first: marker `book`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fer_book.scorecard import Glued
from fer_utils.book.results import read_results, results_file

REPO = Path(__file__).resolve().parents[1]
STAGE = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build")) / "stage"
CHAPTER = "05_regularization"
# what the chapter's text states (glued): each setting's final and best-epoch test accuracy over the seeds
FINAL_AND_BEST = ("ch5_base_final", "ch5_base_best", "ch5_after_final", "ch5_after_best")


def chapter_results() -> dict:
    """The executed chapter 5's results record; the test fails, saying so, without one."""
    path = results_file(STAGE, CHAPTER)
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book` first (this test reads its record)")
    return read_results(path)


@pytest.mark.book
def test_chapter5_states_final_and_best_epoch_accuracy_for_both_settings() -> None:
    results = chapter_results()
    values = {name: Glued(CHAPTER, name).read(results) for name in FINAL_AND_BEST}
    missing = [name for name, value in values.items() if value is None]
    assert missing == [], f"chapter 5 glues no {missing}"
    for name, value in values.items():  # over the seeds: one number per seed
        assert len(value.values) >= 2, name


@pytest.mark.book
def test_the_remedy_is_judged_on_the_final_weights() -> None:
    """The executed chapter checks the remedy's change in test accuracy on the final weights (the overfit
    network), not on the restored best epoch's, and records that check with its threshold."""
    results = chapter_results()
    records = results["checks"]
    assert len(records) == 1, "chapter 5 checks its claims in one cell"
    assert records[0]["claims"]["remedy_test_change_beyond_spread"] == ["<=", 0.0]
    final = Glued(CHAPTER, "ch5_after_final").read(results).values
    base = Glued(CHAPTER, "ch5_base_final").read(results).values
    change = Glued(CHAPTER, "ch5_remedy_change", index=0).read(results).number
    assert change == pytest.approx(sum(final) / len(final) - sum(base) / len(base), abs=1e-6)
