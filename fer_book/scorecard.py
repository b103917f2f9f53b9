"""The paper's claims, scored: the book's appendix page, written at build time from the executed chapters.

Each claim of the paper and its two related works (`CLAIMS`, from `scorecard_claims.toml` beside this module)
names the figure quoted (`fer_utils.book.cited`), the executed chapters' values that measure it (a `Source`),
the protocol, and the `Rule` that makes the verdict: reproduced, not reproduced, or not testable here (an
accuracy on other data than the claim's is no reproduction, and the page shows no number of it), or else the
reason it cannot be tested. `write_scorecard(stage)` writes the verdicts into the staged `book/scorecard.md`;
a value its chapter did not record fails the build (BookError naming the claim, the chapter and the key).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import tomllib

from fer_book.assign import source as cell_source
from fer_book.assign import title_of
from fer_book.markers import between
from fer_book.toc import toc_entries
from fer_utils.book.cited import Cited, cited
from fer_utils.book.claims import LESSON_KEY, checked_as, holds
from fer_utils.book.glue import STATED_MIME
from fer_utils.errors import BookError
from fer_utils.storage.atomic import write_atomic

PAGE = Path("book") / "scorecard.md"
REPO = Path(__file__).resolve().parents[1]  # where the benchmarks' committed records are
MARKERS = (
    "<!-- scorecard: written by `python -m fer_book build` from the executed chapters; do not edit -->",
    "<!-- end of the scorecard -->",
)
VERDICTS = ("reproduced", "not reproduced", "not testable here")
# An accuracy or F1 on the claim's own dataset reproduces the paper's figure when the book's mean over seeds is
# at most this far below it (in accuracy, 0..1): the book's runs differ in budget and details the paper omits.
ACCURACY_MARGIN = 0.05
# The book's readers pass these names to run a chapter on real data (fer_utils.book.artifacts.Dataset).
DATASET_NAMES = {"ravdess": "RAVDESS", "savee": "SAVEE", "mead": "MEAD"}


# --- where a measured value is recorded in an executed chapter -------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A value read from an executed chapter: its number (the mean, for a value over seeds), every number
    behind it and the text the chapter stated."""

    number: float
    values: tuple[float, ...]
    text: str
    over_seeds: bool = True  # False: `text` already says how many runs it counts
    checked: tuple[str, float] | None = None  # a checked claim's (op, threshold), as its chapter checks it

    @property
    def spread(self) -> str:
        """How many runs the value is over, in words ("" for one number)."""
        return f" over {len(self.values)} seeds" if len(self.values) > 1 and self.over_seeds else ""

    def __format__(self, spec: str) -> str:
        return f"{self.text}{self.spread}"


@dataclass(frozen=True)
class Source:
    """Where a measured value is recorded: the chapter, and its `key` in words (the class's KEY, of its fields)."""

    chapter: str
    KEY = ""

    @property
    def key(self) -> str:
        return self.KEY.format(**vars(self))

    def read(self, nb: Mapping) -> Reading | None:
        """The value as the executed chapter `nb` recorded it; None where it recorded none."""
        raise NotImplementedError


@dataclass(frozen=True)
class Glued(Source):
    """A value the chapter glued for its text (`fer.glue(name, value)`): its numbers (their mean, or the one at
    `index`: a Difference glues [diff, spread]) and the text it states."""

    name: str
    index: int | None = None
    KEY = "the value glued as {name!r}"

    def read(self, nb: Mapping) -> Reading | None:
        for out in outputs(nb):
            glued = out.get("metadata", {}).get("scrapbook", {})
            if glued.get("name") != self.name:
                continue
            stated = out.get("data", {}).get(f"{glued.get('mime_prefix', '')}{STATED_MIME}")
            if not isinstance(stated, Mapping) or "numbers" not in stated:
                return None
            values, text = tuple(float(v) for v in stated["numbers"]), str(stated["text"])
            if self.index is None:
                return Reading(sum(values) / len(values) if values else math.nan, values, text)
            if len(values) <= self.index:
                return None
            return Reading(values[self.index], (values[self.index],), text.split(" (")[0])
        return None


@dataclass(frozen=True)
class Lesson(Source):
    """A number of the chapter's checked claims (`fer.check_claims`), with the threshold it is checked against."""

    name: str
    KEY = f"{LESSON_KEY} claim {{name!r}}"

    def read(self, nb: Mapping) -> Reading | None:
        for record in records(nb, LESSON_KEY):
            if self.name in record.get("measured", {}) and self.name in record.get("claims", {}):
                value = float(record["measured"][self.name])
                op, threshold = record["claims"][self.name]
                return Reading(value, (value,), f"{value:.3g}", checked=(op, float(threshold)))
        return None


@dataclass(frozen=True)
class TableCell(Source):
    """A cell of a table the chapter printed (a DataFrame output): the column `column` of the row whose
    `row_column` is `row`."""

    column: str
    row_column: str
    row: str
    KEY = "column {column!r}, row {row_column} = {row!r} of a printed table"

    def read(self, nb: Mapping) -> Reading | None:
        for table in printed_tables(nb):
            if not table or self.column not in table[0] or self.row_column not in table[0]:
                continue
            for row in table[1:]:
                cells = dict(zip(table[0], row))
                if cells.get(self.row_column) == self.row:
                    try:
                        value = float(cells[self.column].replace(",", ""))
                    except (KeyError, ValueError):
                        return None
                    return Reading(value, (value,), f"{value:,.0f}" if value.is_integer() else f"{value:g}")
        return None


@dataclass(frozen=True)
class Benchmark(Source):
    """The count of a benchmark record's `runs` whose `where` equals `value` and whose `flag` is true, for a
    claim no chapter measures; `chapter` is the one that states the result, linked as the run."""

    record: str
    where: str
    value: str
    flag: str
    KEY = "the runs of {record} with {where} = {value!r} whose {flag!r} is true"

    def read(self, nb: Mapping) -> Reading | None:
        path = REPO / self.record
        if not path.is_file():
            return None
        runs = [
            r for r in json.loads(path.read_text(encoding="utf-8")).get("runs", []) if r.get(self.where) == self.value
        ]
        if not runs or any(self.flag not in r for r in runs):
            return None
        flags = tuple(float(bool(r[self.flag])) for r in runs)
        return Reading(sum(flags), flags, f"{sum(flags):.0f} of {len(flags)} seeds", over_seeds=False)


def outputs(nb: Mapping) -> list[dict]:
    """The outputs of the notebook's code cells, in order."""
    return [out for cell in nb.get("cells", []) if cell.get("cell_type") == "code" for out in cell.get("outputs", [])]


def records(nb: Mapping, key: str) -> list[dict]:
    """The records under `key` in the metadata of the notebook's outputs, in order."""
    return [out["metadata"][key] for out in outputs(nb) if key in out.get("metadata", {})]


def printed_tables(nb: Mapping) -> list[list[list[str]]]:
    """Every table the notebook's outputs show as HTML: its header row first (a DataFrame's index column has
    an empty header), then its rows, each as cell texts."""
    from bs4 import BeautifulSoup

    found = []
    for out in outputs(nb):
        for table in BeautifulSoup("".join(out.get("data", {}).get("text/html", "")), "html.parser")("table"):
            rows = ([" ".join(cell.get_text().split()) for cell in tr(["td", "th"])] for tr in table("tr"))
            found.append([row for row in rows if any(row)])
    return found


# --- the run a chapter made: its data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """An executed chapter: its notebook, title, the dataset it ran on and the parameters papermill gave it."""

    chapter: str
    notebook: dict
    title: str
    dataset: str
    label: str | None
    parameters: dict

    def data_words(self) -> str:
        """The data in words: the chapter's own label for it when it states one, and the dataset parameter."""
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(self.parameters.items()))
        data = f"DATASET={self.dataset!r}" + (f"; parameters given: {given}" if given else ", the chapter's default")
        return f"{self.label} ({data})" if self.label else data


def default_parameter(nb: Mapping, name: str) -> object:
    """The value the notebook's `parameters` cell assigns to `name` (a literal), else None."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.parse(cell_source(cell)).body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                    try:
                        return ast.literal_eval(node.value)
                    except ValueError:
                        return None
    return None


def read_run(stage: Path, chapter: str) -> Run | None:
    """The executed chapter `chapter` of the stage, or None when the stage has no such notebook."""
    path = stage / "notebooks" / f"{chapter}.ipynb"
    if not path.is_file():
        return None
    nb = json.loads(path.read_text(encoding="utf-8"))
    parameters = dict(nb.get("metadata", {}).get("papermill", {}).get("parameters", {}) or {})
    dataset = str(parameters.get("DATASET", default_parameter(nb, "DATASET")))
    label = dataset_label(dataset, parameters.get("DATA_DIR", default_parameter(nb, "DATA_DIR")))
    return Run(chapter, nb, title_of(nb).lstrip("# ").strip(), dataset, label, parameters)


def dataset_label(name: str, data_dir: object) -> str | None:
    """How the chapters name a dataset in their sentences (fer_utils.book.artifacts.Dataset.label); None when
    the parameters name no dataset the book knows."""
    from fer_utils.book.artifacts import Dataset
    from fer_utils.errors import InputError

    try:
        return Dataset(name, Path(str(data_dir)) if data_dir else None).label
    except InputError:
        return None


# --- verdict rules ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict (one of VERDICTS) and why, in words."""

    verdict: str
    why: str
    comparable: bool = True  # False: the run measured other data than the claim's, and its number is not shown

    @classmethod
    def of(cls, ok: bool, why: str) -> Verdict:
        """Reproduced when `ok`, else not reproduced, for the reason `why`."""
        return cls("reproduced" if ok else "not reproduced", why)


class Rule(Protocol):
    """How a claim's measured values become its verdict."""

    def words(self, figure: Cited) -> str:
        """The rule, as the page states it."""

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        """The verdict on these readings (named as the claim names its sources) of this run."""


def figure_number(figure: Cited) -> float:
    """The number a quoted figure states ("542,136" → 542136.0)."""
    return float(figure.text.replace(",", ""))


@dataclass(frozen=True)
class SameCount:
    """Reproduced when the count read as `reading` equals the quoted figure exactly."""

    reading: str

    def words(self, figure: Cited) -> str:
        return f"reproduced when the count equals {figure.text} exactly"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        count = readings[self.reading].number
        ok = count == figure_number(figure)
        return Verdict.of(ok, f"{count:,.0f} {'=' if ok else '≠'} {figure.text}")


@dataclass(frozen=True)
class RoundedRatio:
    """Reproduced when `numerator` / `denominator` rounds to the quoted figure (a whole number)."""

    numerator: str
    denominator: str

    def words(self, figure: Cited) -> str:
        return f"reproduced when the ratio rounds to {figure.text} (within ±0.5)"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        ratio = readings[self.numerator].number / readings[self.denominator].number
        ok = abs(ratio - figure_number(figure)) < 0.5
        return Verdict.of(ok, f"ratio {ratio:.2f}, {'≈' if ok else '≠'} {figure.text}")


@dataclass(frozen=True)
class ScoreOnData:
    """A score the paper reports on `dataset`: comparable only on a run of the chapter on that dataset, then
    reproduced when the book's mean is at least the paper's figure (%) less ACCURACY_MARGIN."""

    reading: str
    dataset: str
    margin: float = ACCURACY_MARGIN

    def words(self, figure: Cited) -> str:
        return (
            f"on {DATASET_NAMES[self.dataset]} only; reproduced when the mean is at least "
            f"{figure_number(figure) / 100 - self.margin:.2f} (the paper's {figure.text} % less {self.margin:.2f})"
        )

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        name = DATASET_NAMES[self.dataset]
        if run.dataset != self.dataset:
            return Verdict(
                "not testable here",
                f"different data: the run used {run.label or run.dataset}, not {name}. A reader with {name} runs "
                f"chapter {run.chapter[:2].lstrip('0')} with DATASET={self.dataset!r} and DATA_DIR set",
                comparable=False,
            )
        mean = readings[self.reading].number
        floor = figure_number(figure) / 100 - self.margin
        ok = mean == mean and mean >= floor
        return Verdict.of(ok, f"mean {mean:.3f} {'≥' if ok else '<'} {floor:.2f} on {name}")


@dataclass(frozen=True)
class LessonHolds:
    """Reproduced when every one of the chapter's checked claims `names` holds on its recorded number, against
    the threshold the chapter checks it with (its `fer.check_claims` record)."""

    names: tuple[str, ...]

    def words(self, figure: Cited) -> str:
        return f"reproduced when each of {' and '.join(self.names)} holds as the chapter checks it"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        checks = [(name, readings[name].number, readings[name].checked) for name in self.names]
        failed = [f"{name} = {v:.3g}, not {checked_as(*c)}" for name, v, c in checks if not holds(v, *c)]
        if failed:
            return Verdict("not reproduced", " and ".join(failed))
        return Verdict("reproduced", " and ".join(f"{name} = {v:.3g} ({checked_as(*c)})" for name, v, c in checks))


@dataclass(frozen=True)
class FasterThan:
    """Reproduced when the speed ratio read as `reading` (a baseline's time over this path's) is above 1 + tie
    (the tie of fer_utils.book.glue.Speed: within it, "about as fast")."""

    reading: str
    tie: float = 0.05

    def words(self, figure: Cited) -> str:
        return f"reproduced when the speed ratio is above {1 + self.tie:.2f}"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        ratio = readings[self.reading].number
        ok = ratio > 1 + self.tie
        return Verdict.of(ok, f"ratio {ratio:.2f} {'>' if ok else '≤'} {1 + self.tie:.2f}")


@dataclass(frozen=True)
class KeepsAccuracy:
    """Reproduced when the accuracy `reading` (after a change) is at most `margin` below `baseline` (before
    it); not testable when `baseline` is at chance (`chance`), where there is no accuracy to keep."""

    reading: str
    baseline: str
    chance: str
    margin: float = 0.02

    def words(self, figure: Cited) -> str:
        return (
            f"reproduced when the accuracy after it is at most {self.margin:.2f} below the accuracy before it; not "
            "testable when the accuracy before it is at chance"
        )

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        before, after = readings[self.baseline].number, readings[self.reading].number
        if not before > readings[self.chance].number:
            return Verdict("not testable here", f"unpruned at chance ({before:.3f}): no accuracy to keep")
        change = after - before
        ok = change >= -self.margin
        return Verdict.of(
            ok,
            f"{after:.3f} against {before:.3f}: {change:+.3f}, {'within' if ok else 'beyond'} the margin of {self.margin:.2f}",
        )


@dataclass(frozen=True)
class AgainstSpread:
    """The difference `reading` (means over seeds) against the spread: `beyond` (a lesson value: |difference|, or
    the difference, − the larger std) is above 0 when it exceeds it. Reproduced when the difference stays within
    the spread; with `rises` (a change in test accuracy, with − without), when it is a rise beyond it."""

    reading: str
    beyond: str
    rises: bool = False

    def words(self, figure: Cited) -> str:
        if self.rises:
            return "reproduced when the test accuracy rises by more than the spread over seeds"
        return "reproduced when the difference is within the spread over seeds"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        change, beyond = readings[self.reading].number, readings[self.beyond].number
        ok = change > 0 and beyond > 0 if self.rises else beyond <= 0
        what = "test accuracy " if self.rises else ""
        where = "beyond" if beyond > 0 else "within"
        return Verdict.of(ok, f"{what}{change:+.3f}, {where} the spread")


@dataclass(frozen=True)
class MostOf:
    """Reproduced when the count `reading` (a Benchmark's) is more than half of the runs it counts."""

    reading: str

    def words(self, figure: Cited) -> str:
        return "reproduced when more than half of the seeds learn"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        count, runs = readings[self.reading].number, len(readings[self.reading].values)
        ok = count > runs / 2
        return Verdict.of(ok, f"{count:.0f} of {runs} seeds learnt")


# --- the claims -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A claim's figure: a cited key (fer_utils.book.cited), or words when the book quotes no number."""

    key: str | None = None
    words: str = ""

    def cited(self) -> Cited:
        return cited(self.key) if self.key else Cited(self.words, self.words, r".")


@dataclass(frozen=True)
class ScoredClaim:
    """One claim: who makes it, what it says, the figure quoted; the values that measure it (`sources`, by
    name; the first one's chapter is the run), what the page shows of them (`shown`, a template of their names),
    the protocol in words and the rule; or `not_testable`, the reason."""

    name: str
    by: str
    claim: str
    figure: Figure
    sources: Mapping[str, Source] = field(default_factory=dict)
    shown: str = ""
    protocol: str = ""
    rule: Rule | None = None
    not_testable: str = ""
    data: str = ""  # the data in words, for a value no executed chapter measured (a Benchmark's)

    def __post_init__(self) -> None:
        if bool(self.not_testable) == bool(self.sources and self.rule) or (self.not_testable and self.rule):
            raise ValueError(
                f"claim {self.name!r}: give either sources and a rule, or a reason it is not testable (with "
                "sources shown as information, and no rule)"
            )

    @property
    def chapter(self) -> str | None:
        return next(iter(self.sources.values())).chapter if self.sources else None


CLAIMS_FILE = Path(__file__).with_name("scorecard_claims.toml")  # the claims, as data: its header says how
SOURCES = {  # a source's kind, its table's first key: its class, and the field that key gives
    "glued": (Glued, "name"),
    "lesson": (Lesson, "name"),
    "column": (TableCell, "column"),
    "benchmark": (Benchmark, "record"),
}
RULES = {  # a rule's kind: the name of a rule class above
    name: kind
    for name, kind in globals().items()
    if isinstance(kind, type) and hasattr(kind, "judge") and kind is not Rule
}


def made(kind: type, values: object, where: str) -> Any:
    """A `kind` (a dataclass) of a data file's table `values` (its lists as tuples); BookError naming the row and
    the field when a field is unknown or missing."""
    if not isinstance(values, Mapping):
        raise BookError(f"{where}: expected a table of a {kind.__name__}'s fields, not {values!r}")
    known = {f.name: f for f in fields(kind)}
    unknown = [name for name in values if name not in known]
    if unknown:
        raise BookError(f"{where}: a {kind.__name__} has no field {unknown[0]!r} (its fields: {', '.join(known)})")
    required = {name for name, f in known.items() if f.default is MISSING and f.default_factory is MISSING}
    missing = [name for name in known if name in required - set(values)]
    if missing:
        raise BookError(f"{where}: the field {missing[0]!r} of a {kind.__name__} is missing")
    return kind(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


def source_of(table: Mapping, where: str) -> Source:
    """The source a row's `sources.<name>` table gives: its kind named by its first key (SOURCES)."""
    kind = next(iter(table), None) if isinstance(table, Mapping) else None
    if kind not in SOURCES:
        raise BookError(f"{where}: a source's first key names its kind, one of {', '.join(SOURCES)}; not {kind!r}")
    cls, first = SOURCES[kind]
    return made(cls, {first if name == kind else name: v for name, v in table.items()}, where)


def rule_of(table: Mapping, where: str) -> Rule:
    """The rule a row's `rule` table gives: its `kind` (a name of RULES) and that rule's fields."""
    kind = table.get("kind") if isinstance(table, Mapping) else None
    if kind not in RULES:
        raise BookError(f"{where}: a rule's kind is one of {', '.join(RULES)}, not {kind!r}")
    return made(RULES[kind], {name: v for name, v in table.items() if name != "kind"}, where)


def claims_from(data: Mapping, origin: str = CLAIMS_FILE.name) -> tuple[ScoredClaim, ...]:
    """The claims of a data file's [[claim]] rows (`data`, as tomllib reads it; its header says how they read)."""
    claims = []
    for number, given in enumerate(data.get("claim", []), start=1):
        row, where = dict(given), f"{origin}: claim {repr(given['name']) if 'name' in given else f'#{number}'}"
        for shared in ("by", "protocol"):  # a name of the file's [by] or [protocol] table stands for its text
            if shared in row:
                row[shared] = data.get(shared, {}).get(row[shared], row[shared])
        if "figure" in row:
            row["figure"] = made(Figure, row["figure"], f"{where}, field 'figure'")
        if "rule" in row:
            row["rule"] = rule_of(row["rule"], f"{where}, field 'rule'")
        sources = row.get("sources", {}).items()
        row["sources"] = {name: source_of(table, f"{where}, field 'sources.{name}'") for name, table in sources}
        claims.append(made(ScoredClaim, row, where))
    return tuple(claims)


CLAIMS = claims_from(tomllib.loads(CLAIMS_FILE.read_text(encoding="utf-8")))


# --- the page ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """A claim scored on a stage: its verdict, the readings and the run (None for a claim not testable)."""

    claim: ScoredClaim
    verdict: Verdict
    readings: Mapping[str, Reading]
    run: Run | None


def score_claim(claim: ScoredClaim, runs: Mapping[str, Run | None]) -> Score:
    """The claim scored on the executed chapters `runs` (by chapter); BookError when its run is missing or
    recorded no value the claim reads."""
    readings = {}
    for name, source in claim.sources.items():
        run = runs.get(source.chapter)
        if run is None:
            raise BookError(
                f"claim {claim.name!r} reads {source.key} in chapter {source.chapter}, but the stage has no executed "
                f"notebooks/{source.chapter}.ipynb"
            )
        reading = source.read(run.notebook)
        if reading is None:
            raise BookError(
                f"claim {claim.name!r} found no recorded value in the executed chapter {source.chapter}: it looked for "
                f"{source.key}. Rerun the chapter, or correct the claim in fer_book/scorecard_claims.toml"
            )
        readings[name] = reading
    run = runs.get(claim.chapter)  # None for a claim with no sources
    if claim.not_testable:  # any values shown as information, no verdict computed from them
        return Score(claim, Verdict("not testable here", claim.not_testable), readings, run)
    assert claim.rule is not None
    return Score(claim, claim.rule.judge(readings, claim.figure.cited(), run), readings, run)


def score_stage(stage: Path, claims: Sequence[ScoredClaim] = CLAIMS) -> list[Score]:
    """Every claim scored on the executed chapters of `stage`."""
    chapters = {source.chapter for claim in claims for source in claim.sources.values()}
    runs = {chapter: read_run(stage, chapter) for chapter in sorted(chapters)}
    return [score_claim(claim, runs) for claim in claims]


def cell(text: str) -> str:
    """`text` as one cell of a Markdown table (one line, `|` escaped)."""
    return " ".join(text.split()).replace("|", "\\|")


def chapter_link(run: Run) -> str:
    """A short link to the executed chapter that made a run."""
    return f"{{doc}}`chapter {run.chapter[:2].lstrip('0')} </notebooks/{run.chapter}>`"


def measured_words(score: Score) -> str:
    """What the book measured for the claim, short, with a link to the run that made it; a run on other data
    than the claim's shows no number, only which data it used."""
    claim, run = score.claim, score.run
    if run is None:
        return "—"
    if not score.verdict.comparable:
        return f"no measurement on the claim's data: {chapter_link(run)} ran on {run.label or run.dataset}"
    return f"**{claim.shown.format(**score.readings)}** ({chapter_link(run)})"


def short(why: str) -> str:
    """A verdict's reason, cut at its first clause for the table (the whole of it is in the row's note)."""
    return why.split("; ")[0].split(". ")[0]


def note_words(score: Score) -> str:
    """A row's note: the whole reason, the rule, the run's title and data, the protocol and the keys."""
    claim, run, why = score.claim, score.run, score.verdict.why
    if run is None:
        return f"Not testable here: {why}."
    rule = f"Rule: {claim.rule.words(claim.figure.cited())}. " if claim.rule else ""
    if short(why) != why:
        rule = f"{score.verdict.verdict.capitalize()}: {why}. {rule}"
    keys = "; ".join(
        source.key if isinstance(source, Benchmark) else f"{source.key} in chapter {source.chapter[:2].lstrip('0')}"
        for source in claim.sources.values()
    )
    data = claim.data or run.data_words()
    return f"{rule}Run: {run.title}, on {data}. Protocol: {claim.protocol}. Read from {keys}."


def page_table(scores: Sequence[Score]) -> str:
    """The scorecard: a summary line, one short row per claim (claim, quoted figure, measured values, verdict)
    and, below the table, one numbered note per row with its rule, data, protocol and keys."""
    counts = {verdict: sum(s.verdict.verdict == verdict for s in scores) for verdict in VERDICTS}
    summary = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    rows = [
        "| # | claim | quoted | what the book measured | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    notes = []
    for number, score in enumerate(scores, start=1):
        claim, figure = score.claim, score.claim.figure.cited()
        quoted = f"{figure.text} ({figure.source})" if claim.figure.key else figure.text
        why = short(score.verdict.why)
        verdict = f"**{score.verdict.verdict}**: {why}" + (f" (note {number})" if why != score.verdict.why else "")
        texts = (str(number), f"{claim.claim} ({claim.by})", quoted, measured_words(score), verdict)
        rows.append(f"| {' | '.join(cell(text) for text in texts)} |")
        notes.append(f"{number}. **{cell(claim.claim)}**: {' '.join(note_words(score).split())}")
    return (
        f"Of {len(scores)} claims: {summary}. An accuracy or F1 is scored only on a run of its chapter on the claim's "
        f"own dataset, where it is reproduced when the book's mean is at least the paper's figure less "
        f"{ACCURACY_MARGIN:.2f}; on any other data the verdict is *not testable here*, the row shows no number "
        "beside the claim's figure and says which data the run used. Each row's rule, data, protocol and the "
        "records it reads are in its note below the table.\n\n"
        + "\n".join(rows)
        + "\n\n**Notes**\n\n"
        + "\n".join(notes)
    )


def write_scorecard(stage: Path, claims: Sequence[ScoredClaim] = CLAIMS, page: Path | None = None) -> list[Score]:
    """Score every claim on the stage's executed chapters and write the table into the staged page (or `page`),
    between MARKERS; BookError when a claim's value is missing or the page lacks its markers."""
    scores = score_stage(stage, claims)
    page = page or stage / PAGE
    if not page.is_file():
        raise BookError(f"{page} is missing: the stage holds no scorecard page to write")
    write_atomic(page, between(page.read_text(encoding="utf-8"), MARKERS, page_table(scores), page).encode("utf-8"))
    return scores


def listed(stage: Path) -> bool:
    """Whether the stage's table of contents lists the scorecard page (a stage of a few pages may not)."""
    return PAGE.with_suffix("").as_posix() in toc_entries(stage)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the staged page and print each verdict; exit 2 when a claim's value is missing."""
    parser = argparse.ArgumentParser(prog="python -m fer_book scorecard", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=Path, default=Path("_build") / "stage", help="an executed stage")
    args = parser.parse_args(argv)
    try:
        scores = write_scorecard(args.stage)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for score in scores:
        print(f"{score.claim.name}: {score.verdict.verdict} ({score.verdict.why})")
    print(f"wrote {args.stage / PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
