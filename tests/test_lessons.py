"""Each chapter's lesson, checked on the executed book (issue 16): the default run must show what the
chapter teaches. The claims and their thresholds are `fer_utils.book.lessons.LESSONS`; the executed chapter
records what it measured in the output metadata (`LESSON_KEY`) of its `show_lesson` cell.

The checks on `_build/stage` need `make book` first (marker `book`); the others show that a lesson
whose threshold is made impossible fails, so these tests can fail.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from fer_utils.book.lessons import LESSON_KEY, LESSONS, Claim, check_lesson, lesson_table, lesson_verdict

REPO = Path(__file__).resolve().parents[1]
STAGE = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build")) / "stage"


def measured_in(chapter: str, stage: Path = STAGE) -> dict[str, float]:
    """The numbers the executed `chapter` embedded with `show_lesson` (exactly one lesson per chapter)."""
    path = stage / "notebooks" / f"{chapter}.ipynb"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book` first (these tests check its output)")
    nb = nbformat.read(path, as_version=4)
    records = [
        out["metadata"][LESSON_KEY]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if LESSON_KEY in out.get("metadata", {})
    ]
    assert len(records) == 1, f"{chapter}: {len(records)} lesson outputs, expected 1 (show_lesson)"
    assert records[0]["chapter"] == chapter
    return records[0]["measured"]


def failures(chapter: str, measured: dict[str, float], lessons=LESSONS) -> list[str]:
    """The claims of `chapter`'s lesson that `measured` does not satisfy, in words."""
    return [
        f"{claim.text}: measured {value:.3g}, required {claim.op} {claim.threshold:g}"
        for claim, value, ok in check_lesson(chapter, measured, lessons)
        if not ok
    ]


@pytest.mark.book
@pytest.mark.parametrize("chapter", sorted(LESSONS))
def test_the_executed_chapter_shows_its_lesson(chapter: str) -> None:
    assert not failures(chapter, measured_in(chapter)), "\n".join(failures(chapter, measured_in(chapter)))


def impossible(claim: Claim) -> Claim:
    """The claim with a threshold no run can meet (accuracy above 1, fewer than no collapses, …)."""
    if claim.op in (">=", ">"):
        return replace(claim, threshold=1e9)
    if claim.op in ("<=", "<"):
        return replace(claim, threshold=-1e9)
    return replace(claim, threshold=-1.0)


@pytest.mark.parametrize("chapter", sorted(LESSONS))
def test_a_lesson_whose_threshold_is_made_impossible_fails(chapter: str) -> None:
    """Every claim of every lesson can fail: with one threshold made impossible, a run that meets all the
    real thresholds fails exactly that claim."""
    claims = LESSONS[chapter]
    # at the threshold (just past it for a strict comparison): every claim holds
    meets = {claim.name: claim.threshold + {">": 1e-3, "<": -1e-3}.get(claim.op, 0.0) for claim in claims}
    assert not failures(chapter, meets)
    for index, claim in enumerate(claims):
        harder = {chapter: (*claims[:index], impossible(claim), *claims[index + 1 :])}
        assert failures(chapter, meets, harder) == [
            f"{claim.text}: measured {meets[claim.name]:.3g}, required {impossible(claim).op} {impossible(claim).threshold:g}"
        ]


def test_a_missing_number_never_satisfies_a_claim_and_the_table_says_so() -> None:
    chapter = sorted(LESSONS)[0]
    assert len(failures(chapter, {})) == len(LESSONS[chapter])
    assert list(lesson_table(chapter, {})["holds"]) == ["❌ no"] * len(LESSONS[chapter])


@pytest.mark.parametrize("chapter", sorted(LESSONS))
def test_a_lesson_that_did_not_show_is_said_in_words_above_the_table(chapter: str) -> None:
    """A run that meets every claim gets no warning; one that misses a claim gets a sentence naming that
    claim, its measured value and what to change (a reader's small dataset, issue 28 item 5)."""
    claims = LESSONS[chapter]
    meets = {claim.name: claim.threshold + {">": 1e-3, "<": -1e-3}.get(claim.op, 0.0) for claim in claims}
    assert lesson_verdict(chapter, meets) is None
    missed = claims[-1]
    verdict = lesson_verdict(chapter, {**meets, missed.name: float("nan")})
    assert verdict is not None and missed.text in verdict and "EPOCHS" in verdict
    assert all(claim.text not in verdict for claim in claims[:-1] if claim.text != missed.text)
