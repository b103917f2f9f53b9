"""Same seed, same numbers (issue 34): a chapter executed twice on one machine states identical values.

`make book` executes every chapter into `_build/stage` with the cache in `FER_CACHE`; this executes one
training chapter once more, from nothing (a fresh, empty cache: its crops made and its runs trained
again), and compares what the two executions state: the numbers behind the claims (`LESSON_KEY`) and
every generated paragraph (`PROSE_KEY`), to the last bit. Chapter 4 is the cheapest chapter that trains
the runs it states (its reference run over three seeds and a short run). What differs between machines
is said in book/how_to_use.md ("Same seed, same numbers"), measured by benchmarks/determinism.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from fer_book.execute import execute_notebook
from fer_utils.book.lessons import LESSON_KEY
from fer_utils.book.prose import PROSE_KEY

REPO = Path(__file__).resolve().parents[1]
STAGE = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build")) / "stage"
CHAPTER = "04_training"


def stated_values(nb: nbformat.NotebookNode) -> list[tuple[int, str, object]]:
    """What an executed notebook states from its run: (cell, key, record) of every lesson and paragraph output."""
    return [
        (index, key, out["metadata"][key])
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        for key in (LESSON_KEY, PROSE_KEY)
        if key in out.get("metadata", {})
    ]


def differences(first: list, second: list) -> list[str]:
    """Where two executions' stated values differ (exact equality: floats to the last bit), in words."""
    if [(i, k) for i, k, _ in first] != [(i, k) for i, k, _ in second]:
        return [f"the outputs differ: {[(i, k) for i, k, _ in first]} against {[(i, k) for i, k, _ in second]}"]
    found = []
    for (index, key, a), (_, _, b) in zip(first, second):
        if key == LESSON_KEY:
            found += [
                f"cell {index}: {name} = {a['measured'].get(name)!r} then {b['measured'].get(name)!r}"
                for name in sorted(set(a["measured"]) | set(b["measured"]))
                if a["measured"].get(name) != b["measured"].get(name)
            ]
        elif a["values"] != b["values"]:
            found.append(f"cell {index}: the paragraph states {a['text']!r} then {b['text']!r}")
    return found


def test_a_difference_in_the_last_bit_is_caught() -> None:
    """The comparison is exact: one ulp apart in a lesson value, or one value of a paragraph, is a difference."""
    lesson = {"chapter": CHAPTER, "measured": {"short_loss_over_chance": 0.46618973139437214}}
    nudged = {"chapter": CHAPTER, "measured": {"short_loss_over_chance": 0.4661897313943722}}
    said = {"text": "0.923", "values": {"acc": {"text": "0.923", "number": [0.9, 0.95]}}}
    resaid = {"text": "0.923", "values": {"acc": {"text": "0.923", "number": [0.9, 0.9500001]}}}
    assert differences([(3, LESSON_KEY, lesson)], [(3, LESSON_KEY, lesson)]) == []
    assert differences([(3, LESSON_KEY, lesson)], [(3, LESSON_KEY, nudged)]) == [
        "cell 3: short_loss_over_chance = 0.46618973139437214 then 0.4661897313943722"
    ]
    assert differences([(5, PROSE_KEY, said)], [(5, PROSE_KEY, resaid)]) == [
        "cell 5: the paragraph states '0.923' then '0.923'"
    ]
    assert differences([(5, PROSE_KEY, said)], []) != []


@pytest.mark.book
def test_a_chapter_executed_again_from_an_empty_cache_states_the_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = STAGE / "notebooks" / f"{CHAPTER}.ipynb"
    if not staged.is_file():
        pytest.fail(f"{staged} is missing: run `make book` first (this test compares with its output)")
    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))  # the kernel inherits it: nothing cached
    again = tmp_path / "notebooks" / f"{CHAPTER}.ipynb"
    run = execute_notebook(REPO / "notebooks" / f"{CHAPTER}.ipynb", again)
    assert run.error is None, run.error
    first = stated_values(nbformat.read(staged, as_version=4))
    assert any(key == LESSON_KEY for _, key, _ in first), f"{CHAPTER} states no lesson values"
    assert differences(first, stated_values(nbformat.read(again, as_version=4))) == []
