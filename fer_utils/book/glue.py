"""The numbers a chapter's text states, glued from its run with myst-nb's `glue`.

`glue` writes the value the book's way (`stated`) for the text and adds it, with the numbers behind it, to the
chapter's results record (`fer_utils.book.results`) that `fer_book.scorecard` reads. Without myst-nb (Colab) the
value is displayed instead, so a cell runs everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spread:
    """A metric over seeds (or folds), stated as mean ± sample std (ddof=1)."""

    values: tuple[float, ...]

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        if not self.values:
            return "no value"
        mean = float(np.mean(self.values))
        if len(self.values) == 1:
            from fer_utils.book.chapters import NO_SPREAD

            return f"{mean:{spec}} {NO_SPREAD}"
        return f"{mean:{spec}} ± {float(np.std(self.values, ddof=1)):{spec}}"


def over_seeds(values: Sequence[float]) -> Spread:
    """`values` (one per seed; NaN, a run without that metric, left out) as a `Spread` to state."""
    array = np.asarray(values, dtype=float).ravel()
    return Spread(tuple(float(v) for v in array[~np.isnan(array)]))


@dataclass(frozen=True)
class Difference:
    """Two settings' mean difference over seeds and the larger of their spreads, stated "+0.398 (std up to 0.098)"."""

    diff: float
    spread: float
    seeds: int

    @property
    def beyond(self) -> bool:
        """Whether the difference is larger than the spread (one run each: no spread, never beyond)."""
        return self.seeds >= 2 and abs(self.diff) > self.spread

    def __format__(self, spec: str) -> str:
        if self.seeds < 2:
            return f"{self.diff:+.3f} (one run each: no spread)"
        return f"{self.diff:+.3f} (std up to {self.spread:.3f})"


def difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Mean of `a` minus mean of `b` (each over seeds; `b` may be a baseline), with the larger spread."""
    from fer_utils.book.chapters import seed_spread

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return Difference(float(a.mean() - b.mean()), seed_spread(a, b), int(min(len(a), max(len(b), 2))))


SPEED_TIE = 0.05  # two timings closer than this share are tied: a few percent moves with the machine's load


@dataclass(frozen=True)
class Speed:
    """A speed ratio (baseline time / this path's) in words, e.g. "2.10× as fast as", followed by the baseline."""

    ratio: float
    tie: float = SPEED_TIE

    def __format__(self, spec: str) -> str:
        if 1 / (1 + self.tie) < self.ratio < 1 + self.tie:
            return f"about as fast as ({self.ratio:.2f}×)"
        return f"{self.ratio:.2f}× as fast as" if self.ratio > 1 else f"{1 / self.ratio:.2f}× slower than"


def speed_words(ratio: float, tie: float = SPEED_TIE) -> Speed:
    """`ratio` (a baseline's time over this path's) to state as a `Speed`."""
    return Speed(float(ratio), tie)


def fastest(seconds: Mapping[str, float], tie: float = SPEED_TIE) -> str:
    """The name of the fastest of `seconds` (a time per name), or the names within `tie` of it, said to be tied:
    a gap of a few percent between two timings is noise, not a winner."""
    times = dict(seconds)  # a pandas Series too
    best = min(times.values())
    near = sorted((name for name, time in times.items() if time <= best * (1 + tie)), key=times.get)
    return near[0] if len(near) == 1 else f"{', '.join(near[:-1])} and {near[-1]}, tied within {tie * 100:.0f} %"


def numbers_of(value: object) -> list[float]:
    """The numbers behind a stated value: a Spread's values, a Difference's [diff, spread], a number."""
    if isinstance(value, Spread):
        return list(value.values)
    if isinstance(value, Difference):
        return [value.diff, value.spread]
    if isinstance(value, Speed):
        return [value.ratio]
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return [float(value)]
    return []


def stated(value: object, spec: str = "") -> str:
    """`value` as the page states it: floats .3f, ints with thousands separators; a bool is a TypeError."""
    if isinstance(value, bool | np.bool_):
        raise TypeError("state a yes/no result in words (a str chosen from it), not as True/False")
    if isinstance(value, np.integer):
        value = int(value)
    elif isinstance(value, np.floating):
        value = float(value)
    if not spec:
        spec = ".3f" if isinstance(value, float) else "," if isinstance(value, int) else ""
    return format(value, spec)


def glue(name: str, value: object, spec: str = "") -> None:
    """Glue `value`, stated the book's way, under `name` for the text, and add it to the chapter's results record;
    returns nothing, so the cell shows nothing."""
    from fer_utils.book.results import add

    text = stated(value, spec)
    add("glued", {"text": text, "numbers": numbers_of(value)}, name)
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab: no myst-nb; the value is shown where it was glued
        from IPython.display import display

        display({"text/plain": f"{name}: {text}"}, raw=True)
        return
    myst_glue(name, text, display=False)
