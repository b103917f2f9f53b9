"""A chapter's results in words, written from its run (issue 34): no number typed by hand.

A chapter states what its run showed in a paragraph that a code cell writes from the run's values, with
`paragraph(template, **values)`: the template is the prose, each `{name}` (or `{name:+.3f}`) a value of
this run, so a rerun (another seed, another machine, a reader's dataset) can never contradict its page.
The cell's input is hidden in the HTML book (tag `remove-input`) and folded on Colab (first line
`# @title … { display-mode: "form" }`); its output is Markdown, which both render as text.

Values are formatted the book's way: a float with 3 decimals, an int with thousands separators,
`over_seeds(values)` as mean ± std (one run says so), `difference(a, b)` as a difference with the words
of its verdict against the spread over seeds, `Cited` figures (`fer_utils.book.cited`) as quoted,
a string (a data label, a verdict chosen from the run) as it is. `{#claim}` marks the sentence that a claim
of the chapter's lesson checks (`fer_utils.book.lessons`): an anchor the claims table links to, and, when
this run does not bear that claim out (`lesson`), a warning in front of the sentence.

Each paragraph records in its output's metadata (`PROSE_KEY`) its template, every value it states
(text and number) and its anchors, so that `tests/test_prose.py` can check the executed book: no
number in a chapter's prose is typed by hand, and every claim has its sentence.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fer_utils.book.cited import Cited

# The output metadata key of a generated paragraph in an executed notebook.
PROSE_KEY = "fer_prose"
# The prefix of a claim's anchor in the page (`{#name}` in a template → id="claim-name").
ANCHOR_PREFIX = "claim-"
# Said in front of a sentence whose claim this run does not bear out.
NOT_SHOWN = "**(Not shown by this run: see the claims checked below.)**"


@dataclass(frozen=True)
class Spread:
    """A metric over seeds (or folds), stated as mean ± sample std (ddof=1), as `chapters.mean_std`."""

    values: tuple[float, ...]

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        if not self.values:
            return "no value"
        mean = float(np.mean(self.values))
        if len(self.values) == 1:
            return f"{mean:{spec}} (one run: no spread)"
        return f"{mean:{spec}} ± {float(np.std(self.values, ddof=1)):{spec}}"


def over_seeds(values: Sequence[float]) -> Spread:
    """`values` (one per seed; NaN, a run without that metric, left out) as a `Spread` to state."""
    kept = tuple(float(v) for v in np.asarray(values, dtype=float).ravel() if not math.isnan(float(v)))
    return Spread(kept)


@dataclass(frozen=True)
class Difference:
    """Two settings' means over seeds compared with the spread over seeds (the rule of
    `chapters.difference_note`). Stated as `{d}` ("+0.398, larger than the spread over seeds (std up to
    0.098)"), or in parts: `{d:diff}` (+0.398), `{d:verdict}` (the words), `{d:spread}` (0.098)."""

    diff: float
    spread: float
    seeds: int

    @property
    def beyond(self) -> bool:
        """Whether the difference is larger than the spread (one run each: no verdict, never beyond)."""
        return self.seeds >= 2 and abs(self.diff) > self.spread

    def verdict(self) -> str:
        """The verdict in words, chosen by this run's numbers."""
        if self.seeds < 2:
            return "one run each: no spread measured, so no verdict"
        return "larger than the spread over seeds" if self.beyond else "within the spread over seeds"

    def __format__(self, spec: str) -> str:
        if spec == "diff":
            return f"{self.diff:+.3f}"
        if spec == "verdict":
            return self.verdict()
        if spec == "spread":
            return f"{self.spread:.3f}"
        if spec:
            raise ValueError(
                f"a Difference is stated as {{d}}, {{d:diff}}, {{d:verdict}} or {{d:spread}}, not {spec!r}"
            )
        if self.seeds < 2:
            return f"{self.diff:+.3f} ({self.verdict()})"
        return f"{self.diff:+.3f}, {self.verdict()} (std up to {self.spread:.3f})"


def difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Mean of `a` minus mean of `b` (each over seeds), with the larger of their spreads (`b` may be one
    value, e.g. a baseline)."""
    from fer_utils.book.chapters import seed_spread

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return Difference(float(a.mean() - b.mean()), seed_spread(a, b), int(min(len(a), max(len(b), 2))))


@dataclass(frozen=True)
class Speed:
    """A speed ratio (a baseline's time over this path's), stated in words around its number, to be followed
    by the baseline: "2.10× as fast as", "1.47× slower than", or "about as fast as (1.03×)" within `tie` of 1.
    Recorded as its number (`stated_number`), so a rerun's ratio is never mistaken for a typed one."""

    ratio: float
    tie: float = 0.05

    def __format__(self, spec: str) -> str:
        if 1 / (1 + self.tie) < self.ratio < 1 + self.tie:
            return f"about as fast as ({self.ratio:.2f}×)"
        return f"{self.ratio:.2f}× as fast as" if self.ratio > 1 else f"{1 / self.ratio:.2f}× slower than"


def speed_words(ratio: float, tie: float = 0.05) -> Speed:
    """`ratio` (a baseline's time over this path's) to state as a `Speed`."""
    return Speed(float(ratio), tie)


def stated_number(value: object) -> float | list[float] | None:
    """The number(s) behind a stated value, for the record: a float, a Spread's values, or None for words
    and cited figures."""
    if isinstance(value, Spread):
        return list(value.values)
    if isinstance(value, Difference):
        return [value.diff, value.spread]
    if isinstance(value, Speed):
        return value.ratio
    if isinstance(value, bool | str | Cited):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return None


class _Writer(string.Formatter):
    """`str.format` with the book's defaults, which also records what each field stated."""

    def __init__(self, values: Mapping[str, object], lesson: Mapping[str, bool] | None) -> None:
        self.values, self.lesson = values, lesson
        self.stated: dict[str, dict] = {}
        self.anchors: list[str] = []

    def get_value(self, key: object, args: Sequence, kwargs: Mapping) -> object:
        if isinstance(key, str) and key.startswith("#"):
            return Anchor(key[1:])
        if key not in self.values:
            raise KeyError(f"the paragraph states {{{key}}}, but no value named {key!r} was given")
        return self.values[key]

    def format_field(self, value: object, spec: str) -> str:
        if isinstance(value, Anchor):
            self.anchors.append(value.name)
            shown = self.lesson is None or self.lesson.get(value.name, True)
            return f'<a id="{ANCHOR_PREFIX}{value.name}"></a>' + ("" if shown else NOT_SHOWN + " ")
        if isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        if isinstance(value, bool):
            raise TypeError("state a yes/no result in words (a str chosen from it), not as True/False")
        if isinstance(value, float) and not spec:
            spec = ".3f"
        elif isinstance(value, int) and not spec:
            spec = ","
        return format(value, spec)

    def check_unused_args(self, used_args: set, args: Sequence, kwargs: Mapping) -> None:
        unused = sorted(set(kwargs) - {k for k in used_args if isinstance(k, str)})
        if unused:
            raise KeyError(f"values given but not stated in the paragraph: {unused}")


@dataclass(frozen=True)
class Anchor:
    """`{#name}` in a template: where the sentence that claim `name` checks begins."""

    name: str


def render(template: str, lesson: Mapping[str, bool] | None = None, **values: object) -> tuple[str, dict]:
    """(the Markdown paragraph, its record) for `template` filled with `values` (see the module docstring).

    `lesson` maps each claim name to whether this run bears it out (`lessons.show_lesson`'s result): a
    `{#claim}` sentence whose claim does not hold is marked as not shown. The record holds the template
    (`literal`), the paragraph (`text`), each value stated (`values`: its text and number, or its source
    for a cited figure) and the anchors, in order.
    """
    writer = _Writer(values, lesson)
    text = writer.vformat(template, (), values)
    stated = {}
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is None or name.startswith("#"):
            continue
        value, key = values[name], f"{name}:{spec}" if spec else name
        stated[key] = {"text": writer.format_field(value, spec or ""), "number": stated_number(value)}
        if isinstance(value, Cited):
            stated[key]["cited"] = value.source
        elif isinstance(value, str):
            stated[key]["words"] = True
    record = {"literal": template, "text": text, "values": stated, "anchors": writer.anchors}
    return text, record


def paragraph(template: str, lesson: Mapping[str, bool] | None = None, **values: object) -> None:
    """Display the paragraph `render` writes, as Markdown (the HTML book and Colab render it as text), with
    its record in the output's metadata for the book's prose test."""
    from IPython.display import display

    text, record = render(template, lesson, **values)
    plain = re.sub(r"<a id=[^>]*></a>", "", text)
    display({"text/markdown": text, "text/plain": plain}, metadata={PROSE_KEY: record}, raw=True)
