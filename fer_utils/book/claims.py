"""The claims a chapter's text makes about its run, checked on that run in one hidden cell.

On the book's own data (`strict`) a claim that does not hold is an AssertionError, so the book never prints a text
its run contradicts; on a reader's data it is said in one line. The output's metadata records them (`LESSON_KEY`)."""

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


def check_claims(chapter: str, claims: Mapping[str, tuple[float, str, float]], strict: bool = True) -> None:
    """Check and record `claims` (name → (value, op, threshold)); one that does not hold raises when `strict`."""
    from IPython.display import display

    for name, (_, op, _) in claims.items():
        if op not in COMPARISONS:
            raise ValueError(f"claim {name!r}: unknown comparison {op!r}; use one of {sorted(COMPARISONS)}")
    failed = [
        f"{name}: measured {float(value):.4g}, checked as {checked_as(op, threshold)}"
        for name, (value, op, threshold) in claims.items()
        if not holds(float(value), op, threshold)
    ]
    record = {
        "chapter": chapter,
        "measured": {name: float(value) for name, (value, _, _) in claims.items()},
        "claims": {name: [op, float(threshold)] for name, (_, op, threshold) in claims.items()},
    }
    lines = [f"On this data the text's claim does not hold: {line}" for line in failed]
    text = "\n".join(lines) or f"{len(claims)} claims of the text hold on this run."
    display({"text/plain": text}, metadata={LESSON_KEY: record}, raw=True)  # kept also when it fails
    if failed and strict:
        raise AssertionError(f"{chapter}: the run does not bear out the text: " + "; ".join(failed))
