"""The claims a chapter's text makes about its run, checked on that run in one hidden cell.

A claim that does not hold is said in one line and the chapter goes on (a reader's data or settings may not bear the
text out). The chapter's results record keeps them (`fer_utils.book.results`, under `checks`): the book's own run, on
its defaults, fails on a claim that does not hold (`contradicted`, read by fer_book.execute), so the book never
prints a text its run contradicts."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping

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
    """Check `claims` (name → (value, op, threshold)) and add them to the chapter's results record; one that does
    not hold is said in one line."""
    from IPython.display import display

    from fer_utils.book.results import add

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
    add("checks", record)
    display({"text/plain": text}, raw=True)


def failed_claims(record: Mapping) -> list[str]:
    """The claims of one recorded check that do not hold, each as "name: measured …, checked as …"."""
    return [
        f"{name}: measured {value:.4g}, checked as {checked_as(op, threshold)}"
        for name, value in record["measured"].items()
        for op, threshold in [record["claims"][name]]
        if not holds(value, op, threshold)
    ]


def contradicted(results: Mapping) -> list[str]:
    """The claims a chapter's results record holds that its run does not bear out, each with its chapter."""
    return [f"{check['chapter']}: {line}" for check in results.get("checks", []) for line in failed_claims(check)]
