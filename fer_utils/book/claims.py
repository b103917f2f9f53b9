"""The claims a chapter's text makes about its run, checked on that run in one hidden cell.

A claim that does not hold is said in one line and the chapter goes on (a reader's data or settings may not bear the
text out). The output's metadata records them (`LESSON_KEY`): the book's own run, on its defaults, fails on a claim
that does not hold (`contradicted`, read by fer_book.execute), so the book never prints a text its run contradicts."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping

# The output metadata key that carries a chapter's claims and numbers in an executed notebook.
LESSON_KEY = "fer_lesson"

COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}
# A strict claim ("> 0") must clear its threshold by more than float32 rounding (equal accuracies differ by ~1e-8).
STRICT_MARGIN = {">": 1e-6, "<": -1e-6}


def holds(value: float, op: str, threshold: float) -> bool:
    """Whether `value <op> threshold` (a missing or NaN value never holds, nor a strict tie within float32)."""
    return not math.isnan(value) and bool(COMPARISONS[op](value, threshold + STRICT_MARGIN.get(op, 0.0)))


def margin(value: float, op: str, threshold: float) -> float:
    """How far `value` clears its threshold (negative: it does not)."""
    return (
        value - threshold if op in (">=", ">") else threshold - value if op in ("<=", "<") else -abs(value - threshold)
    )


def checked_as(op: str, threshold: float) -> str:
    """How a claim is checked, e.g. "≥ 0.9"."""
    return f"{SYMBOLS[op]} {threshold:g}"


def check_claims(chapter: str, claims: Mapping[str, tuple[float, str, float]]) -> None:
    """Check and record `claims` (name → (value, op, threshold)); one that does not hold is said in one line."""
    from IPython.display import display

    for name, (_, op, _) in claims.items():
        if op not in COMPARISONS:
            raise ValueError(f"claim {name!r}: unknown comparison {op!r}; use one of {sorted(COMPARISONS)}")
    record = {
        "chapter": chapter,
        "measured": {name: float(value) for name, (value, _, _) in claims.items()},
        "claims": {name: [op, float(threshold)] for name, (_, op, threshold) in claims.items()},
    }
    lines = [f"On this data the text's claim does not hold: {line}" for line in failed_claims(record)]
    text = "\n".join(lines) or f"{len(claims)} claims of the text hold on this run."
    display({"text/plain": text}, metadata={LESSON_KEY: record}, raw=True)


def failed_claims(record: Mapping) -> list[str]:
    """The claims of one recorded check that do not hold, each as "name: measured …, checked as …"."""
    return [
        f"{name}: measured {value:.4g}, checked as {checked_as(op, threshold)}"
        for name, value in record["measured"].items()
        for op, threshold in [record["claims"][name]]
        if not holds(value, op, threshold)
    ]


def lesson_records(notebook: Mapping) -> list[dict]:
    """The claims records an executed notebook (nbformat JSON) holds, one a `check_claims` call, in order."""
    return [
        out["metadata"][LESSON_KEY]
        for cell in notebook.get("cells", [])
        for out in cell.get("outputs", [])
        if LESSON_KEY in out.get("metadata", {})
    ]


def contradicted(notebook: Mapping) -> list[str]:
    """The claims an executed notebook recorded that its run does not bear out, each with its chapter."""
    return [f"{record['chapter']}: {line}" for record in lesson_records(notebook) for line in failed_claims(record)]
